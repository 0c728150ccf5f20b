"""``--epoch`` of ``export``, ``convert`` and ``evaluate``: which model of a run they use."""

import json

import keras
import numpy as np
import pytest

from kerastrans.cli.main import main
from kerastrans.config import (
    Config,
    DataConfig,
    GeneratorConfig,
    ModelConfig,
    TrainingConfig,
    Window,
    save_config,
)
from kerastrans.convert import convert
from kerastrans.export import load_exported, read_export_info
from kerastrans.loading import load_translator
from kerastrans.runs import load_run

CT = Window.from_center_width(40, 400)
BEST = {"epoch": 2, "metric": "val_psnr", "value": 30.5, "file": "best-epoch_0002.keras"}


def _run(folder, keep_best: str | None):
    """A run directory whose latest and best models have different (random) weights."""
    from kerastrans.training import build_model

    generator = GeneratorConfig(depth=2, base_channels=4, max_channels=8, up="transpose")
    config = Config(
        data=DataConfig(input_window=Window(-1000, 2000), target_window=CT),
        model=ModelConfig(input_shape=(16, 16, 1), output_shape=(16, 16, 1), generator=generator),
        training=TrainingConfig(keep_best=keep_best),
    )
    folder.mkdir()
    keras.utils.set_random_seed(1)
    build_model(config).save(folder / "model.keras")
    if keep_best:
        keras.utils.set_random_seed(2)
        build_model(config).save(folder / BEST["file"])
        (folder / "best.json").write_text(json.dumps(BEST))
    save_config(config, folder / "config.yaml")
    return folder


@pytest.fixture(scope="module")
def best_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("epoch") / "run", "val_psnr")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("epoch") / "in"
    folder.mkdir()
    values = np.random.default_rng(0).uniform(-500, 500, (16, 16)).astype(np.float32)
    np.save(folder / "slice.npy", values)
    return folder


def _translated(run_dir, which: str, image: np.ndarray) -> np.ndarray:
    translator = load_run(run_dir, which).translator()
    return translator(image[None, ..., None]).numpy()[0, ..., 0]


@pytest.mark.parametrize(
    ("args", "recorded"),
    [([], "best-epoch_0002.keras (best val_psnr 30.5)"),
     (["--epoch", "best"], "best-epoch_0002.keras (best val_psnr 30.5)"),
     (["--epoch", "latest"], "model.keras (latest)")],
)  # fmt: skip
def test_export_takes_the_asked_epoch_says_so_and_records_it(
    best_run, images, tmp_path, capsys, args, recorded
):
    assert main(["export", str(best_run), "--out", str(tmp_path / "model"), *args]) == 0
    assert f"model: {best_run / recorded}" in capsys.readouterr().out
    assert read_export_info(tmp_path / "model")["model"] == recorded
    image = np.load(images / "slice.npy")
    which = "latest" if "latest" in recorded else "best"
    served = load_exported(tmp_path / "model")(image[None, ..., None]).numpy()[0, ..., 0]
    np.testing.assert_allclose(served, _translated(best_run, which, image), atol=1e-3)
    other = "best" if which == "latest" else "latest"
    assert np.abs(served - _translated(best_run, other, image)).max() > 1.0  # not the other one


@pytest.mark.parametrize("tile", [[], ["--tile", "8"]])
@pytest.mark.parametrize("which", ["best", "latest"])
def test_convert_translates_with_the_asked_epoch(best_run, images, tmp_path, tile, which):
    out = tmp_path / "out"
    args = ["convert", str(best_run), str(images), str(out), "--no-progress", "--epoch", which]
    assert main([*args, *tile]) == 0
    image = np.load(images / "slice.npy")
    written = np.load(out / "slice.npy")[..., 0]
    if not tile:  # tiles blend at their seams: compare untiled conversions exactly
        np.testing.assert_allclose(written, _translated(best_run, which, image), atol=1e-3)
    other = "latest" if which == "best" else "best"
    mine = np.abs(written - _translated(best_run, which, image)).mean()
    theirs = np.abs(written - _translated(best_run, other, image)).mean()
    assert mine < theirs


def test_evaluate_of_a_run_without_a_best_model_refuses_epoch_best(tmp_path, capsys):
    run_dir = _run(tmp_path / "plain", keep_best=None)
    code = main(["evaluate", str(run_dir), str(tmp_path / "data"), "--epoch", "best"])
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"kerastrans evaluate: error: {run_dir}: keeps no best model "
        "(train with training.keep_best)"
    ]


def test_a_saved_model_refuses_an_epoch(best_run, images, tmp_path, capsys):
    assert main(["export", str(best_run), "--out", str(tmp_path / "model")]) == 0
    capsys.readouterr()
    args = ["convert", str(tmp_path / "model"), str(images), str(tmp_path / "out")]
    assert main([*args, "--epoch", "latest"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "is an exported SavedModel, which holds one model: 'latest' picks an epoch" in line
    assert not (tmp_path / "out").exists()


def test_the_library_refuses_an_epoch_for_a_model_it_was_given_loaded(best_run, images, tmp_path):
    translator = load_translator(best_run)
    with pytest.raises(ValueError, match="which='latest' picks the model of a run directory"):
        convert(translator, images, tmp_path / "out", which="latest", progress=False)
