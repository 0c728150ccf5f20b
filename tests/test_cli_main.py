"""The command-line surface: subcommands, version, one-line errors."""

import subprocess
import sys

import pytest

from kerastrans import __version__
from kerastrans.cli.main import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("fit", "convert", "export", "evaluate", "simulate", "records", "benchmark"):
        assert name in COMMANDS
        assert f"    {name}" in out


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"kerastrans {__version__}"
    assert __version__.count(".") >= 2


def test_unknown_subcommand_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "invalid choice: 'fitt'" in err


def test_console_script_runs_without_importing_tensorflow():
    code = (
        "import sys; from kerastrans.cli.main import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
