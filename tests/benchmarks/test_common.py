"""``benchmarks/_common.py``: how the results JSON describes the machine; merged re-runs."""

import json

import pytest


@pytest.fixture(scope="module")
def common(benchmark):
    return benchmark("_common")


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    block = f"processor\t: {{}}\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 {flags}\n\n"
    path.write_text(block.format(0) + block.format(1))
    return path


def test_machine_names_the_cpu_model_and_its_native_bfloat16(common, tmp_path):
    described = common.machine(_cpuinfo(tmp_path, "avx512f avx512_bf16 amx_bf16"))
    assert "CPU (Example CPU 9000, AVX512-BF16+AMX-BF16), " in described


def test_machine_says_when_bfloat16_is_not_native(common, tmp_path):
    described = common.machine(_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert "(Example CPU 9000, no native bfloat16)" in described


def test_machine_without_cpuinfo_leaves_the_model_out(common, tmp_path):
    described = common.machine(tmp_path / "missing")
    assert " CPU, " in described
    assert "(" not in described


def test_merge_rows_keeps_the_previous_rows_of_methods_not_run_in_order(common, tmp_path):
    previous = tmp_path / "x.json"
    old = [{"method": "a", "psnr": 1.0}, {"method": "b", "psnr": 2.0}, {"method": "c", "psnr": 3.0}]
    previous.write_text(json.dumps({"name": "x", "rows": old}))
    merged, kept = common.merge_rows([{"method": "b", "psnr": 9.0}], previous, ["c", "b", "a"])
    assert merged == [{"method": "c", "psnr": 3.0}, {"method": "b", "psnr": 9.0},
                      {"method": "a", "psnr": 1.0}]  # fmt: skip
    assert kept == ["a", "c"]
    assert common.merge_rows(old, tmp_path / "absent.json", []) == (old, [])


def test_kept_rows_name_the_run_that_made_them_through_later_merges(common, tmp_path):
    path = tmp_path / "x.json"
    common.write_results("x", "python x.py --methods a", [{"method": "a"}], folder=tmp_path)
    first = json.loads(path.read_text())
    first.update(date="2026-01-01", machine="CPU one")  # the first run was on another day/CPU
    path.write_text(json.dumps(first))
    merged, _ = common.merge_rows([{"method": "b"}], path, ["a", "b"])
    common.write_results("x", "python x.py --methods b", merged, folder=tmp_path)
    merged, _ = common.merge_rows([{"method": "c"}], path, ["a", "b", "c"])
    a, b, c = merged
    assert {k: a[k] for k in common.PROVENANCE} == {
        "date": "2026-01-01", "machine": "CPU one", "command": "python x.py --methods a"
    }  # fmt: skip
    assert b["command"] == "python x.py --methods b" and b["machine"] == common.machine()
    assert c == {"method": "c"}  # this run's row: the JSON's own fields name its run


def test_paired_methods_option_picks_runs_in_script_order(benchmark):
    paired, lowdose = benchmark("_paired"), benchmark("lowdose")
    names = list(lowdose.RUNS)
    *_, methods = paired.parse_arguments(
        "x", "", lowdose.FULL, lowdose.QUICK, ["--methods", names[2], names[0]], names
    )
    assert methods == [names[0], names[2]]
    *_, everything = paired.parse_arguments("x", "", lowdose.FULL, lowdose.QUICK, [], names)
    assert everything == names
