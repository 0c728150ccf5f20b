"""``benchmarks/_common.py``: how the results JSON describes the machine."""

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
