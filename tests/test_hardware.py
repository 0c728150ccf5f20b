"""`kerastrans.hardware` and ``precision="auto"``: the machine picks the precision."""

import pytest

from kerastrans import precision
from kerastrans.hardware import CpuInfo, native_bfloat16, read_cpuinfo


def _cpuinfo(tmp_path, flags, name="cpuinfo"):
    path = tmp_path / name
    block = f"processor\t: {{}}\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 {flags}\n\n"
    path.write_text(block.format(0) + block.format(1))
    return path


def test_read_cpuinfo_takes_the_first_processors_model_and_flags(tmp_path):
    info = read_cpuinfo(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert info.model == "Example CPU 9000"
    assert {"fpu", "avx512f", "avx512_bf16"} <= info.flags
    assert info.bfloat16_features == ("AVX512-BF16",)


def test_missing_cpuinfo_claims_nothing(tmp_path):
    assert read_cpuinfo(tmp_path / "missing") == CpuInfo()
    assert not native_bfloat16(tmp_path / "missing")


@pytest.mark.parametrize(
    ("flags", "native"),
    [("avx512f avx512_bf16", True), ("amx_tile amx_bf16", True), ("avx512f avx512_vnni", False)],
)
def test_native_bfloat16_follows_the_cpu_flags(tmp_path, flags, native):
    assert native_bfloat16(_cpuinfo(tmp_path, flags)) is native  # no GPU on the test machine


@pytest.mark.parametrize(("native", "chosen"), [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_precision_is_mixed_bfloat16_only_where_native(monkeypatch, native, chosen):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: native)
    assert precision.resolve_precision("auto") == chosen
    assert precision.resolve_precision("mixed_float16") == "mixed_float16"  # asked: kept
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("bfloat16")
