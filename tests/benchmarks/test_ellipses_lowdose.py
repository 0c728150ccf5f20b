"""Verdicts of ``benchmarks/ellipses.py`` and ``benchmarks/lowdose.py`` from made-up rows."""

import pytest


@pytest.fixture(scope="module")
def ellipses(benchmark):
    return benchmark("ellipses")


@pytest.fixture(scope="module")
def lowdose(benchmark):
    return benchmark("lowdose")


def _row(method, psnr):
    return {"method": method, "psnr_first100": psnr, "ssim_first100": 0.9, "psnr": psnr - 0.1,
            "ssim": 0.9, "n_test": 1000}  # fmt: skip


@pytest.mark.parametrize(
    ("psnr", "state"),
    [(31.2, "goal: at least 31.0 dB: met"), (30.9, "goal: at least 31.0 dB: NOT met")],
)
def test_lpd_is_judged_against_31_db_not_the_published_32_27(ellipses, psnr, state):
    (line,) = ellipses.verdicts([_row("lpd", psnr)])
    assert f"vs published learned primal-dual 32.27 dB / 0.940 ({psnr - 32.27:+.2f} dB" in line
    assert line.endswith(f"{state})")


@pytest.mark.parametrize(("psnr", "state"), [(30.31, "met"), (30.29, "NOT met")])
def test_lgd_must_beat_the_published_figure_whose_ssim_is_not_given(ellipses, psnr, state):
    (line,) = ellipses.verdicts([_row("lgd", psnr)])
    assert "vs published learned gradient descent 30.30 dB (" in line
    assert line.endswith(f"goal: above learned gradient descent: {state})")


def test_rows_without_a_published_figure_get_no_verdict(ellipses):
    assert ellipses.verdicts([_row("fbp+unet+adv", 28.0)]) == []


def _lowdose_rows(auto_psnr, float32_psnr):
    return [
        {"method": "low-dose input", "psnr": 27.8},
        {"method": "pix2pix-l1", "psnr": auto_psnr, "precision": "mixed_bfloat16",
         "ms_per_step": 300.0},
        {"method": "pix2pix-l1-float32", "psnr": float32_psnr, "precision": "float32",
         "ms_per_step": 450.0},
    ]  # fmt: skip


@pytest.mark.parametrize(("gap", "state"), [(0.15, "met"), (-0.19, "met"), (0.25, "NOT met")])
def test_float32_row_must_land_within_0_2_db_of_the_auto_row(lowdose, gap, state):
    line = lowdose.precision_verdict(_lowdose_rows(31.0 + gap, 31.0))
    assert line.startswith("precision: pix2pix-l1 in mixed_bfloat16 ")
    assert f"vs float32 31.00 dB (450 ms/step): {gap:+.2f} dB; goal within 0.2 dB: {state}" in line


@pytest.mark.parametrize(("own", "expected"), [(None, (4, 100)), (250, (2, 250))])
def test_a_budget_may_validate_and_checkpoint_less_often_than_the_settings(
    benchmark, tmp_path, own, expected
):
    """AUTOMAP's 1.1-GB checkpoints come every 250 steps, the other runs' every 100."""
    methods = benchmark("_ellipses_methods")
    budget = methods.Budget(steps=400, batch_size=2, learning_rate=1e-3, steps_per_epoch=own)
    settings = methods.Settings(tmp_path, 16, {"lgd": budget})
    model = methods.ModelConfig(kind="lgd")
    window = methods.Window(0.0, 1.0)
    training = methods._config("lgd", tmp_path, settings, model, {}, window, {}).training
    assert (training.epochs, training.steps_per_epoch) == expected
    assert training.checkpoint_every == expected[1]


def test_paired_runs_are_scored_with_their_best_validation_epoch(benchmark, tmp_path):
    paired = benchmark("_paired")
    settings = paired.TrainSettings(1, 3, batch_size=2, crop=32)
    config = paired.pix2pix_config(tmp_path, settings, {"l1": 100.0, "adversarial": 1.0})
    assert config.training.keep_best == "val_psnr"
    assert config.data.eval_split == "validation"  # never a test split


def test_a_partial_rerun_plots_the_kept_rows_beside_the_new_ones(benchmark, tmp_path, monkeypatch):
    """``--methods`` re-runs one model: the bar chart must still show every row of the JSON."""
    import json

    paired = benchmark("_paired")
    previous = [
        {"method": "low-dose input", "psnr": 27.0},
        {"method": "l1", "psnr": 32.0},
        {"method": "adv", "psnr": 20.0},
        {"method": "real-ct low-dose input", "psnr": 26.0},
        {"method": "real-ct l1", "psnr": 31.0},
        {"method": "real-ct adv", "psnr": 21.0},
    ]
    (tmp_path / "x.json").write_text(json.dumps({"name": "x", "rows": previous}))
    monkeypatch.setattr(paired, "RESULTS", tmp_path)
    plotted = {}
    monkeypatch.setattr(paired, "_plot", lambda path, panels, bars, title: plotted.update(bars))
    monkeypatch.setattr(paired, "write_results", lambda name, command, rows: tmp_path / "x.json")
    scores = paired.Scores(
        phantom_rows=[{"method": "low-dose input", "psnr": 27.0}, {"method": "adv", "psnr": 31.0}],
        real_rows=[{"method": "real-ct low-dose input", "psnr": 26.0},
                   {"method": "real-ct adv", "psnr": 30.0}],
        panels=[],
    )  # fmt: skip
    order = ["low-dose input", "l1", "adv", "real-ct low-dose input", "real-ct l1", "real-ct adv"]
    rows = paired.finish("x", [scores], {}, "t", work=tmp_path, quick=False, argv=[], order=order)
    assert [row["method"] for row in rows] == order
    assert plotted == {
        "held-out phantoms": {"low-dose input": 27.0, "l1": 32.0, "adv": 31.0},
        "real CT": {"low-dose input": 26.0, "l1": 31.0, "adv": 30.0},
    }
