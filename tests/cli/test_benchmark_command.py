"""``kerastrans benchmark`` lists and runs the repository's benchmark scripts."""

import pytest

from kerastrans.cli.main import main


def _benchmarks(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "_common.py").write_text("")
    (folder / "echo.py").write_text(
        "import sys, pathlib\npathlib.Path('ran.txt').write_text(' '.join(sys.argv[1:]))\n"
    )
    return folder


def test_benchmark_lists_scripts_without_private_helpers(tmp_path, capsys):
    folder = _benchmarks(tmp_path)
    assert main(["benchmark", "--dir", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == "benchmarks: echo"


def test_benchmark_runs_script_from_the_repository_root_with_its_arguments(tmp_path):
    folder = _benchmarks(tmp_path)
    assert main(["benchmark", "--dir", str(folder), "echo", "--quick", "--n", "3"]) == 0
    assert (tmp_path / "ran.txt").read_text() == "--quick --n 3"


def test_benchmark_unknown_name_is_a_one_line_error(tmp_path, capsys):
    folder = _benchmarks(tmp_path)
    assert main(["benchmark", "--dir", str(folder), "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "nope.py: no such benchmark (have: echo)" in err


def test_repository_benchmarks_folder_is_found_from_the_checkout():
    from kerastrans.cli.benchmark import find_benchmarks

    folder = find_benchmarks()
    assert (folder / "_common.py").is_file()
    with pytest.raises(ValueError, match="no benchmarks folder"):
        find_benchmarks(folder / "missing")
