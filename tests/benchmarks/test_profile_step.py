"""``benchmarks/profile_step.py``: oneDNN verbose lines summed per group and per step."""

import pytest


@pytest.fixture(scope="module")
def profile(benchmark):
    return benchmark("profile_step")


CONV = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx10_1_512_amx,"
        "forward_training,src:bf16 wei:bf16,attr-scratchpad:user,alg:convolution_direct,"
        "mb1_ic2oc8_ih256oh128kh4sh2,{ms}")  # fmt: skip
REORDER = "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src dst,,,8x1x4x4,{ms}"
CREATE = "onednn_verbose,v1,primitive,create:cache_miss,cpu,reorder,jit:uni,undef,src,,,8x1,0.9"


def _log(profile, steps):
    lines = [CONV.format(ms=50.0), "startup noise"]  # before the first step: not counted
    for wall, convs, reorders in steps:
        lines.append(profile.BEGIN)
        lines += [CONV.format(ms=ms) for ms in convs] + [REORDER.format(ms=ms) for ms in reorders]
        lines += [CREATE, "a line of the program"]
        lines.append(f"{profile.END} {wall}")
    return lines


def test_parse_sums_the_exec_lines_between_the_markers_per_group(profile):
    walls, groups = profile.parse(_log(profile, [(20.0, [4.0, 6.0], [1.0]), (30.0, [5.0], [])]))
    assert walls == [20.0, 30.0]
    assert groups == {
        "convolution/forward_training/brg_conv_fwd:avx10_1_512_amx": [4.0, 6.0, 5.0],
        "reorder/-/jit:uni": [1.0],
    }


def test_rows_give_per_step_means_shares_and_the_time_outside_onednn(profile):
    walls, groups = profile.parse(_log(profile, [(20.0, [4.0, 6.0], [1.0]), (20.0, [5.0], [])]))
    rows = {row["method"]: row for row in profile.profile_rows(walls, groups)}
    conv = rows["convolution/forward_training/brg_conv_fwd:avx10_1_512_amx"]
    assert (conv["ms"], conv["calls"], conv["share"]) == (7.5, 1.5, 0.375)
    assert rows["reorder/-/jit:uni"]["ms"] == 0.5
    assert rows["outside-onednn"]["ms"] == 12.0
    assert rows["step"] == {"method": "step", "ms": 20.0, "steps": 2}
