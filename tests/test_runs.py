"""`load_run`: a trained run directory back as a model and translators in physical units."""

import shutil

import keras
import numpy as np
import pytest

from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig, Window
from kerastrans.data import write_dataset
from kerastrans.errors import DataError
from kerastrans.runs import Run, load_run, model_source
from kerastrans.training import fit


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """A CycleGAN trained for one step between 16 x 16 domains in HU-like units."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    domains = {
        split: [{"image": rng.normal(center, 100.0, (16, 16, 1)).astype(np.float32), "id": str(i)}
                for i in range(2)]
        for split, center in (("trainA", -500.0), ("trainB", 0.0))
    }  # fmt: skip
    write_dataset(root / "data", domains, progress=False)
    config = Config(
        data=DataConfig(dataset=str(root / "data"), batch_size=2, seed=0,
                        input_window=Window(-1000, 1000), target_window=Window(-500, 1000)),
        model=ModelConfig(kind="cyclegan", pool_size=0, precision="float32",
                          generator={"depth": 2, "base_channels": 4, "residual_blocks": 1},
                          discriminator={"base_channels": 4, "depth": 1}),
        training=TrainingConfig(epochs=1, grid_images=0),
    )  # fmt: skip
    return fit(config, root / "run", strategy="default", progress=False)


def test_load_run_gives_the_config_and_the_trained_model(cyclegan_run):
    run = load_run(cyclegan_run.run_dir)
    assert run.config == cyclegan_run.config
    assert run.finished["global_step"] == 1
    for ours, theirs in zip(run.model.weights, cyclegan_run.model.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_translators_map_physical_units_with_the_run_windows(cyclegan_run):
    run = load_run(cyclegan_run.run_dir)
    images = np.random.default_rng(1).normal(-400.0, 200.0, (2, 12, 20, 1)).astype(np.float32)
    forward, backward = run.translator("AtoB"), run.translator("BtoA")
    assert (forward.input_window, forward.output_window) == (
        Window(-1000, 1000),
        Window(-500, 1000),
    )
    assert (backward.input_window, backward.output_window) == (
        Window(-500, 1000),
        Window(-1000, 1000),
    )
    assert forward.size_multiple == 2
    output = forward(images).numpy()  # 12 x 20 is padded to multiples of 2 and cropped back
    assert output.shape == images.shape
    windowed = np.clip((images + 1000.0) / 500.0 - 1.0, -1.0, 1.0)
    expected = (run.model.generator_g(windowed, training=False).numpy() + 1.0) * 500.0 - 500.0
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-2)


def test_run_without_model_keras_is_rebuilt_from_its_checkpoint(cyclegan_run, tmp_path):
    shutil.copytree(cyclegan_run.run_dir, tmp_path / "run")
    (tmp_path / "run" / "model.keras").unlink()
    run = load_run(tmp_path / "run")
    for ours, theirs in zip(run.model.weights, cyclegan_run.model.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    where, description = model_source(tmp_path / "run").split(" ", 1)
    assert (tmp_path / "run" / where).is_dir()  # the checkpoint folder, not a sentence
    assert description.startswith("(epoch ") and description.endswith(", latest)")


def test_model_keras_is_loaded_in_safe_mode(cyclegan_run, monkeypatch):
    calls = []
    original = keras.saving.load_model

    def load_model(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", load_model)
    load_run(cyclegan_run.run_dir)
    assert calls == [{"safe_mode": True}]


def test_folders_that_are_not_runs_are_refused(tmp_path):
    with pytest.raises(DataError, match="not a run directory of kerastrans fit"):
        load_run(tmp_path)
    (tmp_path / "config.yaml").write_text("data: {}\n")
    with pytest.raises(DataError, match="holds no trained model yet"):
        load_run(tmp_path)


def test_directions_are_checked(cyclegan_run, tmp_path):
    run = load_run(cyclegan_run.run_dir)
    with pytest.raises(ValueError, match=r"direction must be one of \('AtoB', 'BtoA'\), got 'AB'"):
        run.translator("AB")
    pix2pix = Run(tmp_path, Config(model=ModelConfig(kind="pix2pix")), run.model)
    with pytest.raises(
        ValueError, match="direction 'BtoA' needs a CycleGAN run, got a pix2pix run"
    ):
        pix2pix.translator("BtoA")


def test_a_run_trained_in_bfloat16_translates_in_float32_with_its_weights(cyclegan_run, tmp_path):
    import dataclasses

    config = cyclegan_run.config
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, precision="mixed_bfloat16")
    )
    run = fit(config, tmp_path / "run", strategy="default", progress=False)
    assert run.model.generator_g.get_config()["dtype"] == "mixed_bfloat16"
    loaded = load_run(tmp_path / "run")
    assert loaded.config.model.precision == "mixed_bfloat16"  # the record of training
    assert loaded.model.generator_g.get_config()["dtype"] == "mixed_bfloat16"
    twin = loaded.inference_model
    assert twin.generator_g.get_config()["dtype"] == "float32"
    for ours, theirs in zip(twin.weights, run.model.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for direction in ("AtoB", "BtoA"):
        generator = loaded.translator(direction).generator
        assert generator.get_config()["dtype"] == "float32"


def test_every_model_kind_names_its_class():
    import kerastrans.models
    from kerastrans.config.model import MODEL_PRESETS
    from kerastrans.runs import _MODEL_CLASSES

    assert set(_MODEL_CLASSES) == set(MODEL_PRESETS)
    for name in _MODEL_CLASSES.values():
        assert issubclass(getattr(kerastrans.models, name), keras.Model)
