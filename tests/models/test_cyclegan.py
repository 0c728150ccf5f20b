"""Tests of the CycleGAN model."""

import json
import zipfile

import keras
import numpy as np
import pytest
from model_helpers import constructor_arguments

from kerastrans.config import Window
from kerastrans.models import CycleGAN

GENERATOR = {"channels": (8, 16), "residual_blocks": 1}
DISCRIMINATOR = {"base_channels": 8, "depth": 1}


@pytest.fixture(scope="module")
def trained(pair):
    """A CycleGAN with an image pool trained 4 steps on one batch; its logs per step."""
    model = CycleGAN((32, 32, 1), 1, GENERATOR, DISCRIMINATOR, pool_size=4, seed=0)
    model.compile(g_optimizer=keras.optimizers.Adam(2e-3), d_optimizer=keras.optimizers.Adam(2e-4))
    logs = [model.train_on_batch(*pair, return_dict=True) for _ in range(4)]
    return model, logs


def test_train_steps_reduce_the_cycle_and_generator_losses(trained):
    _, logs = trained
    assert logs[-1]["g_loss"] < logs[0]["g_loss"]
    assert logs[-1]["cycle"] < logs[0]["cycle"]
    assert set(logs[0]) == {"g_loss", "cycle", "identity", "adversarial", "d_loss", "d_a", "d_b"}
    assert logs[0]["d_loss"] == pytest.approx(logs[0]["d_a"] + logs[0]["d_b"], rel=1e-5)


def test_save_load_predict_and_test_metrics(trained, pair, tmp_path):
    model, _ = trained
    predicted = model.predict(pair[0], verbose=0)
    path = tmp_path / "cyclegan.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(pair[0], verbose=0), predicted)
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config(), default=list)
    assert int(loaded.pool_b.count.numpy()) == 4
    logs = model.test_on_batch(*pair, return_dict=True)
    assert set(logs) == {"cycle", "psnr_a2b", "ssim_a2b", "psnr_b2a", "ssim_b2a"}


def test_config_holds_exactly_the_constructor_arguments(trained):
    model, _ = trained
    assert set(model.get_config()) == constructor_arguments(CycleGAN)


def test_shared_encoder_with_latent_discriminator_and_the_ct_extras(pair):
    model = CycleGAN(
        (32, 32, 1),
        1,
        GENERATOR,
        DISCRIMINATOR,
        shared_encoder=True,
        latent_adversarial_weight=1.0,
        latent_weight=0.1,
        air_weight=1.0,
        air_threshold=-900,
        window_a=Window.from_bounds(-1000, 1000),
        window_b=Window.from_bounds(-1000, 500),
        gradient_weight=1.0,
        tv_weight=0.1,
        pool_size=0,
        seed=1,
    )
    assert model.generator_f.encoder is model.generator_g.encoder
    model.compile()
    logs = model.train_on_batch(*pair, return_dict=True)
    for key in ("air", "gradient", "tv", "latent", "adversarial_latent", "d_latent"):
        assert np.isfinite(logs[key]) and logs[key] > 0, key
    assert logs["d_loss"] == pytest.approx(logs["d_a"] + logs["d_b"] + logs["d_latent"], rel=1e-5)
    # One encoder is counted once among the generators' variables.
    encoder = len(model.generator_g.encoder.trainable_variables)
    decoders = sum(len(g.decoder.trainable_variables) for g in model._generators())
    assert len(model.g_variables) == encoder + decoders


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"output_channels": 2}, "identity_weight > 0 needs domains with equal channels"),
        (
            {"output_channels": 2, "identity_weight": 0, "shared_encoder": True},
            "shared_encoder needs domains with equal channels, got 1 \\(A\\) and 2 \\(B\\)",
        ),
        ({"latent_adversarial_weight": 1.0}, "latent_adversarial_weight > 0 needs shared_encoder"),
        (
            {"air_weight": 1.0, "air_threshold": -900},
            "air_weight > 0 needs air_threshold \\(HU\\), window_a and window_b",
        ),
        ({"pool_size": 4, "input_shape": (None, None, 1)}, "image_shape must be"),
    ],
)
def test_inconsistent_options_are_refused_with_the_reason(options, message):
    arguments = {"input_shape": (32, 32, 1), "output_channels": 1, **options}
    with pytest.raises(ValueError, match=message):
        CycleGAN(generator=GENERATOR, discriminator=DISCRIMINATOR, **arguments)


def test_a_bare_pair_is_not_taken_for_a_window():
    with pytest.raises(TypeError, match=r"window_a must be a Window or .*, got \(-1000, 1000\)"):
        CycleGAN((32, 32, 1), 1, GENERATOR, DISCRIMINATOR, window_a=(-1000, 1000))


def test_windows_are_saved_as_dicts_and_old_low_high_lists_still_load(tmp_path):
    model = CycleGAN(
        (32, 32, 1), 1, GENERATOR, DISCRIMINATOR, pool_size=0, seed=0,
        window_a=Window(-1000, 2000), window_b={"base": -1024, "range": 4095},
    )  # fmt: skip
    config = model.get_config()
    assert (config["window_a"], config["window_b"]) == (
        {"base": -1000.0, "range": 2000.0},
        {"base": -1024.0, "range": 4095.0},
    )
    path = tmp_path / "old.keras"
    model.save(path)
    # A model saved before windows were Windows held them as (low, high) lists.
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(files["config.json"])
    saved["config"].update(window_a=[-1000.0, 1000.0], window_b=[-1024.0, 3071.0])
    files["config.json"] = json.dumps(saved).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    loaded = keras.models.load_model(path)
    assert loaded.windows == (Window(-1000, 2000), Window(-1024, 4095))
    with pytest.raises(ValueError, match=r"window needs low < high, got \(500, -500\)"):
        CycleGAN.from_config({**config, "window_a": [500, -500]})
