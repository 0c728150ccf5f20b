"""``benchmarks/train_step.py``: rows, ratios and peak fractions from fake timings."""

import pytest


@pytest.fixture(scope="module")
def train_step(benchmark):
    return benchmark("train_step")


def _run_rows():
    """One run's rows as the subprocesses return them (fake timings, 80 GFLOP steps)."""
    return [
        {"method": "peak-matmul-float32", "gflop_per_s": 200.0, "size": 4096},
        {"method": "peak-matmul-bfloat16", "gflop_per_s": 800.0, "size": 4096},
        {"method": "peak-conv-float32", "gflop_per_s": 150.0, "size": 64},
        {"method": "peak-conv-bfloat16", "gflop_per_s": 1600.0, "size": 64},
        {"method": "pix2pix-1ch", "gflops": 80.0, "ms": 500.0, "plain_ms": 520.0},
        {"method": "pytorch-pix2pix-1ch", "gflops": 80.0, "threads": 2, "ms": 800.0},
        {"method": "pix2pix-3ch", "gflops": 80.0, "ms": 640.0, "plain_ms": 650.0},
        {"method": "pix2pix-1ch-bf16", "gflops": 80.0, "ms": 400.0, "plain_ms": 410.0},
        {"method": "pytorch-pix2pix-1ch-bf16", "gflops": 80.0, "threads": 2, "ms": 500.0},
    ]


def test_finish_rows_divides_by_the_peak_of_the_rows_precision(train_step):
    rows = {row["method"]: row for row in train_step.finish_rows(_run_rows())}
    assert rows["pix2pix-1ch"]["peak_fraction"] == 0.8  # 80 GFLOP / 0.5 s / 200
    assert rows["pix2pix-3ch"]["peak_fraction"] == 0.625  # 80 / 0.64 / 200
    assert rows["pytorch-pix2pix-1ch"]["peak_fraction"] == 0.5  # 80 / 0.8 / 200
    # bfloat16: the convolution probe (1600) beat the matmul (800), so it is the peak
    assert rows["pix2pix-1ch-bf16"]["peak_fraction"] == 0.125  # 80 / 0.4 / 1600
    assert rows["pytorch-pix2pix-1ch-bf16"]["peak_fraction"] == 0.1  # 80 / 0.5 / 1600
    assert "peak_fraction" not in rows["peak-matmul-float32"]
    assert "peak_fraction" not in rows["peak-conv-bfloat16"]


def test_finish_rows_gives_ratios_to_pytorch_of_the_same_run(train_step):
    rows = {row["method"]: row for row in train_step.finish_rows(_run_rows())}
    assert rows["pix2pix-1ch"]["pytorch_ratio"] == 0.625  # 500 / 800
    assert "pytorch_float32_ratio" not in rows["pix2pix-1ch"]
    assert rows["pix2pix-1ch-bf16"]["pytorch_ratio"] == 0.8  # 400 / 500 (bfloat16)
    assert rows["pix2pix-1ch-bf16"]["pytorch_float32_ratio"] == 0.5  # 400 / 800
    assert not {"pytorch_ratio", "pytorch_float32_ratio"} & set(rows["pix2pix-3ch"])
    assert "pytorch_ratio" not in rows["pytorch-pix2pix-1ch"]


def test_finish_rows_without_peaks_or_pytorch_adds_nothing(train_step):
    rows = [row for row in _run_rows() if row["method"].startswith("pix2pix")]
    assert train_step.finish_rows(rows) == rows


def test_summary_states_the_goals_of_the_bfloat16_rows(train_step):
    lines = train_step.summary(train_step.finish_rows(_run_rows()))
    assert lines == [
        "pix2pix-1ch-bf16: 400 ms, 0.50 x PyTorch float32 (goal <= 0.5), "
        "0.80 x PyTorch bfloat16 (goal <= 0.8), 12.5 % of the bfloat16 peak"
    ]


def test_interleaved_ms_alternates_the_steps_and_takes_medians(train_step, monkeypatch):
    clock, calls = [0.0], []

    def fake_step(name, seconds):
        def step():
            calls.append(name)
            clock[0] += seconds.pop(0) if isinstance(seconds, list) else seconds

        return step

    monkeypatch.setattr(train_step.time, "perf_counter", lambda: clock[0])
    steps = {
        "ours": fake_step("ours", [9.0, 0.010, 0.030, 0.020]),
        "pytorch": fake_step("pytorch", 0.040),
    }
    medians = train_step.interleaved_ms(steps, warmup=1, repeats=3)
    assert calls == ["ours", "pytorch"] * 4
    assert medians == pytest.approx({"ours": 20.0, "pytorch": 40.0})


def test_row_names_and_architectures(train_step):
    assert (
        train_step.method("cyclegan", 1, "mixed_bfloat16", "pytorch") == "pytorch-cyclegan-1ch-bf16"
    )
    assert train_step.method("pix2pix", 3, "float32") == "pix2pix-3ch"
    levels, widths = train_step.architecture("pix2pix", 8)
    assert levels == (8, 16, 32, 64, 64, 64, 64, 64)
    assert widths == (8, 16, 32, 64)


@pytest.mark.parametrize("kind", ["pix2pix", "cyclegan"])
def test_pytorch_reference_does_the_arithmetic_of_our_networks(train_step, kind):
    pytest.importorskip("torch")
    import numpy as np
    from _torch_reference import make_step

    images = [np.zeros((1, train_step.SIZE, train_step.SIZE, 1), "float32")] * 2
    levels, widths = train_step.architecture(kind, 2)
    step, generator_macs, discriminator_macs = make_step(kind, images, levels, widths, False)
    assert (generator_macs, discriminator_macs) == train_step.ours_macs(kind, 1, 2)
    assert np.isfinite(step())
