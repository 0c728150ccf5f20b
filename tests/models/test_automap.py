"""Tests of the AUTOMAP model: memory estimate and refusal, training, saving."""

import logging

import keras
import numpy as np
import pytest
from model_helpers import constructor_arguments, losses_over_steps

from kerastrans.models import Automap, Pix2Pix, automap_memory_estimate
from kerastrans.nets import ScaledDense

SINOGRAM, IMAGE = (6, 10, 1), (8, 8, 1)


def test_memory_estimate_counted_by_hand():
    estimate = automap_memory_estimate(SINOGRAM, IMAGE, fc_layers=2, batch_size=1)
    parameters = (60 * 64 + 64) + (64 * 64 + 64)
    assert estimate.parameters == parameters
    assert estimate.bytes == 28 * parameters + 4 * 2 * (60 + 2 * 64) + 64 * 2**20
    # 128 x 128 images: 268 M weights per image-to-image layer, as the mission says.
    assert automap_memory_estimate((128, 128, 1), (128, 128, 1), 1).parameters == 128**4 + 128**2


def test_a_configuration_that_does_not_fit_is_refused_with_the_estimate():
    with pytest.raises(
        ValueError,
        match=r"AUTOMAP FC layers: 8,064 parameters, about 0\.06 GiB "
        r"to train, but only 0\.00 GiB are available "
        r"\(memory_limit\)",
    ):
        Automap(SINOGRAM, IMAGE, memory_limit=1000)
    with pytest.raises(
        ValueError,
        match=r"AUTOMAP FC layers: 358,416,384 parameters.* GiB are "
        r"available",
    ):
        Automap((30, 183, 1), (128, 128, 1), memory_limit=2**30)


@pytest.fixture(scope="module")
def trained():
    """An AUTOMAP learning a fixed linear map on 4 images; its L2 loss per step."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (4, *IMAGE)).astype("float32")
    operator = rng.normal(size=(64, 60)).astype("float32") / 8
    sinograms = (images.reshape(4, 64) @ operator).reshape(4, *SINOGRAM)
    model = Automap(SINOGRAM, IMAGE, refinement={"channels": (8,)}, seed=0)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
    return model, sinograms, images, losses_over_steps(model, sinograms, images, 8, key="l2")


def test_automap_logs_its_estimate_before_building(caplog):
    with caplog.at_level(logging.INFO, logger="kerastrans.models.automap"):
        model = Automap(SINOGRAM, IMAGE, refinement={"channels": (8,)})
    assert "AUTOMAP FC layers: 8,064 parameters" in caplog.text
    assert str(model.memory_estimate) in caplog.text


def test_automap_trains_to_reconstruct_images_of_the_image_shape(trained):
    model, sinograms, _, losses = trained
    assert losses[-1] < losses[0]
    assert model.predict(sinograms, verbose=0).shape == (4, *IMAGE)
    assert model.discriminator is None and isinstance(model, Pix2Pix)


def test_automap_saves_and_loads_from_its_own_config(trained, tmp_path):
    model, sinograms, _, _ = trained
    # Automap builds the generator itself and its discriminator is never conditional.
    expected = constructor_arguments(Automap) - {"generator", "output_channels", "conditional"}
    assert set(model.get_config()) == expected
    model.save(tmp_path / "automap.keras")
    loaded = keras.models.load_model(tmp_path / "automap.keras")
    assert type(loaded) is Automap
    np.testing.assert_array_equal(
        loaded.predict(sinograms, verbose=0), model.predict(sinograms, verbose=0)
    )


@pytest.mark.parametrize("frequency_scaling", [None, 0.6])
def test_fbp_init_starts_the_domain_transform_at_windowed_fbp(frequency_scaling):
    from kerastrans.tomo.geometry import GeometrySpec
    from kerastrans.tomo.operators import apply_batch, fbp_reconstruct, ray_transform
    from kerastrans.tomo.phantoms import shepp_logan

    spec = GeometrySpec((16, 16), num_angles=6)
    windows = {"sinogram_window": {"base": 0.0, "range": 20.0},
               "image_window": {"base": -0.5, "range": 2.0}}  # fmt: skip
    model = Automap(
        (6, 25, 1),
        (16, 16, 1),
        fc_layers=2,
        fc_activation="none",
        fbp_init={"geometry": spec.to_dict(), **windows}
        | ({} if frequency_scaling is None else {"frequency_scaling": frequency_scaling}),
        refinement={"channels": (4,)},
    )
    sinogram = apply_batch(ray_transform(spec, impl="astra_cpu"), shepp_logan((16, 16)))
    encoder = model.generator.encoder
    transform = keras.Model(encoder.input, encoder.get_layer("fc_reshape").output)
    got = transform(((sinogram / 10.0) - 1.0)[None, ..., None]).numpy()[0, ..., 0]
    scaling = 1.0 if frequency_scaling is None else frequency_scaling
    want = fbp_reconstruct(sinogram, spec, filter_type="Hann", frequency_scaling=scaling) - 0.5
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert model.get_config()["fbp_init"]["geometry"] == spec.to_dict()
    # The convolutions add a correction that starts at zero: the untrained model is FBP.
    whole = model.generator(((sinogram / 10.0) - 1.0)[None, ..., None]).numpy()[0, ..., 0]
    np.testing.assert_allclose(whole, want, atol=1e-4)


def test_fbp_init_without_the_residual_correction_is_not_fbp_until_trained():
    from kerastrans.tomo.geometry import GeometrySpec

    spec = GeometrySpec((16, 16), num_angles=6)
    windows = {"sinogram_window": {"base": 0.0, "range": 20.0},
               "image_window": {"base": -0.5, "range": 2.0}}  # fmt: skip
    fbp_init = {"geometry": spec.to_dict(), **windows}
    models = {
        residual: Automap(
            (6, 25, 1), (16, 16, 1), fc_layers=1, fc_activation="none", fbp_init=fbp_init,
            refinement={"channels": (4,), "residual_output": residual},
        )
        for residual in (True, False)
    }  # fmt: skip
    sinogram = np.random.default_rng(0).uniform(-1, 1, (1, 6, 25, 1)).astype("float32")
    outputs = {}
    for residual, model in models.items():
        encoder = model.generator.encoder
        transform = keras.Model(encoder.input, encoder.get_layer("fc_reshape").output)
        outputs[residual] = (transform(sinogram).numpy(), model.generator(sinogram).numpy())
    np.testing.assert_allclose(outputs[True][1], outputs[True][0], atol=1e-5)
    assert np.abs(outputs[False][1] - outputs[False][0]).max() > 1e-2
    restored = Automap.from_config(models[True].get_config())
    assert restored.generator.get_config()["residual_output"] is True


def test_fbp_init_needs_a_linear_domain_transform():
    with pytest.raises(ValueError, match="fbp_init needs fc_activation='none'"):
        Automap((6, 25, 1), (16, 16, 1), fbp_init={"geometry": {}})


@pytest.mark.parametrize("scale", [0.0, float("inf"), float("nan")])
def test_fc_learning_rate_scale_must_be_finite_and_positive(scale):
    with pytest.raises(ValueError, match="fc_learning_rate_scale must be finite and > 0"):
        Automap((6, 25, 1), (16, 16, 1), fc_learning_rate_scale=scale)


def test_fc_learning_rate_scale_slows_the_fbp_started_fc_layer_alone():
    from kerastrans.tomo.geometry import GeometrySpec

    spec = GeometrySpec((16, 16), num_angles=6)
    windows = {"sinogram_window": {"base": 0.0, "range": 20.0},
               "image_window": {"base": -0.5, "range": 2.0}}  # fmt: skip
    rng = np.random.default_rng(1)
    sinograms = rng.uniform(-1, 1, (4, 6, 25, 1)).astype("float32")
    images = rng.uniform(-1, 1, (4, 16, 16, 1)).astype("float32")

    def fc_kernel(layer) -> np.ndarray:
        """The kernel the FC layer applies (a `ScaledDense` stores it divided by its scale)."""
        return (layer.effective_weights() if isinstance(layer, ScaledDense)
                else layer.get_weights())[0]  # fmt: skip

    moved, starts = {}, []
    for scale in (1.0, 0.01):
        model = Automap(
            (6, 25, 1), (16, 16, 1), fc_layers=1, fc_activation="none", seed=0,
            fc_learning_rate_scale=scale, refinement={"channels": (4,)},
            fbp_init={"geometry": spec.to_dict(), **windows},
        )  # fmt: skip
        fc = model.generator.encoder.get_layer("fc0")
        starts.append(start := fc_kernel(fc))
        conv = model.generator.trainable_weights[-2].numpy()
        model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
        model.fit(sinograms, images, batch_size=4, epochs=1, verbose=0)
        moved[scale] = (np.abs(fc_kernel(fc) - start).max(), np.abs(
            model.generator.trainable_weights[-2].numpy() - conv).max())  # fmt: skip
    np.testing.assert_allclose(starts[1], starts[0], rtol=1e-6, atol=1e-9)  # the same FBP start
    # One Adam step moves a weight by about the rate (less where epsilon rivals the gradient).
    assert moved[1.0][0] == pytest.approx(1e-3, rel=0.05)
    assert moved[0.01][0] == pytest.approx(1e-5, rel=0.05)
    assert moved[0.01][1] == pytest.approx(moved[1.0][1], rel=1e-2)  # convolutions: full rate
    restored = Automap.from_config(model.get_config())
    assert restored.generator.encoder.get_layer("fc0").learning_rate_scale == 0.01
