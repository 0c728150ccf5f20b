"""Tests of the reconstruction models: they learn, round-trip their config, refuse bad options."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastrans.config import Window
from kerastrans.models.reconstruction import (
    FBPUNetModel,
    LearnedGradientDescent,
    LearnedPrimalDual,
)
from kerastrans.nets.reconstruction_layers import PReLU as SelectPReLU
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import apply_batch, fbp_reconstruct, ray_transform
from kerastrans.tomo.phantoms import random_ellipses

SPEC = GeometrySpec((32, 32), num_angles=10)
FAN = GeometrySpec((32, 32), beam="fan", src_radius=150.0, det_radius=50.0, num_angles=12)
SINOGRAMS = Window(0.0, 30.0)
IMAGES = Window(0.0, 1.0)
TINY = {
    "lpd": (LearnedPrimalDual, {"iterations": 3, "channels": 8, "primal_memory": 3}),
    "lgd": (LearnedGradientDescent, {"iterations": 3, "channels": 8, "initial": "fbp"}),
    "fbp-unet": (FBPUNetModel, {"unet": {"channels": [4, 8]}, "filter_type": "Shepp-Logan"}),
}


def windowed_pairs(count, seed, spec=SPEC):
    """Noisy sinograms of random ellipses and the phantoms, both windowed to [-1, 1]."""
    images = np.stack(list(random_ellipses(count, seed, shape=spec.image_shape)))
    sinograms = apply_batch(ray_transform(spec, impl="astra_cpu"), images.astype(np.float32))
    sinograms += np.random.default_rng(seed).normal(0, 0.2, sinograms.shape)
    scale = lambda x, w: (2 * (x - w.base) / w.range - 1)[..., None].astype(np.float32)  # noqa: E731
    return scale(sinograms, SINOGRAMS), scale(images, IMAGES)


def make(kind, **kwargs):
    cls, network = TINY[kind]
    return cls(SPEC, SINOGRAMS, IMAGES, network, seed=0, **kwargs)


@pytest.mark.parametrize("kind", ["lpd", "lgd"])
def test_a_few_steps_lower_the_validation_loss(kind):
    train = tf.data.Dataset.from_tensor_slices(windowed_pairs(32, 0)).batch(4).repeat()
    validation = tf.data.Dataset.from_tensor_slices(windowed_pairs(8, 1)).batch(8)
    model = make(kind)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
    before = model.evaluate(validation, verbose=0, return_dict=True)["l2"]
    model.fit(train, steps_per_epoch=30, epochs=1, verbose=0)
    after = model.evaluate(validation, verbose=0, return_dict=True)["l2"]
    assert after < 0.7 * before


@pytest.mark.parametrize("kind", sorted(TINY))
def test_model_saves_reloads_and_keeps_its_config(kind, tmp_path):
    model = make(kind)
    model.compile()
    sinograms = windowed_pairs(2, 2)[0]
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert reloaded.get_config() == model.get_config()
    assert type(reloaded).from_config(model.get_config()).get_config() == model.get_config()
    np.testing.assert_allclose(
        reloaded.predict(sinograms, verbose=0), model.predict(sinograms, verbose=0), atol=1e-6
    )
    assert GeometrySpec.from_dict(model.get_config()["geometry"]) == SPEC
    assert model.generator.output_shape == (None, 32, 32, 1)


@pytest.mark.parametrize(("policy", "tolerance"), [("float32", 1e-6), ("mixed_bfloat16", 2e-2)])
def test_select_prelu_computes_keras_prelu_and_its_gradients(policy, tolerance):
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(2, 5, 6, 4)), "float32")
    weights = tf.constant(rng.normal(size=(2, 5, 6, 4)), "float32")
    alpha = np.array([[[0.25, -0.5, 0.0, 2.0]]], np.float32)
    results = []
    for prelu in (SelectPReLU, keras.layers.PReLU):
        layer = prelu(shared_axes=[1, 2], dtype=policy)
        layer.build(inputs.shape)
        layer.set_weights([alpha])
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            loss = tf.reduce_sum(tf.cast(outputs, "float32") * weights)
        results.append([outputs, *tape.gradient(loss, [inputs, layer.alpha])])
    for ours, theirs in zip(*results, strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(
            tf.cast(ours, "float32"), tf.cast(theirs, "float32"), rtol=tolerance, atol=tolerance
        )


def test_unrolled_runs_saved_with_keras_prelu_load_and_predict_the_same(tmp_path, monkeypatch):
    from kerastrans.nets import reconstruction_layers

    sinograms, _ = windowed_pairs(2, 0)
    with monkeypatch.context() as patch:  # the unrolled nets as saved before the select PReLU
        patch.setattr(reconstruction_layers, "PReLU", keras.layers.PReLU)
        old = make("lpd")
        old.compile()
    prelus = [layer for layer in _cnn_layers(old) if isinstance(layer, keras.layers.PReLU)]
    assert prelus and all(type(layer) is keras.layers.PReLU for layer in prelus)
    rng = np.random.default_rng(1)
    for layer in prelus:  # alpha starts at 0: give each its own values
        layer.alpha.assign(rng.uniform(-1, 1, layer.alpha.shape))
    old.save(tmp_path / "old.keras")
    reloaded = keras.models.load_model(tmp_path / "old.keras")
    assert sum(type(layer) is SelectPReLU for layer in _cnn_layers(reloaded)) == len(prelus)
    np.testing.assert_allclose(
        reloaded.predict(sinograms, verbose=0), old.predict(sinograms, verbose=0), atol=1e-5
    )


def _cnn_layers(model):
    """The layers of the per-iteration CNNs of an unrolled model."""
    core = model.generator.get_layer("unrolled")
    return [layer for net in [*core.primal_nets, *core.dual_nets] for layer in net.layers]


def test_lpd_has_the_papers_architecture_by_default():
    model = LearnedPrimalDual(SPEC, SINOGRAMS, IMAGES)
    core = model.generator.get_layer("unrolled")
    assert (core.iterations, core.channels, core.primal_memory, core.dual_memory) == (10, 32, 5, 5)
    # Per iteration two CNNs of three 3 x 3 convolutions: (6+1)->32->32->5 and (5+2)->32->32->5.
    conv = lambda i, o: 9 * i * o + o  # noqa: E731
    per_iteration = conv(6, 32) + conv(7, 32) + 2 * conv(32, 32) + 2 * conv(32, 5) + 4 * 32
    assert model.generator.count_params() == 10 * per_iteration


@pytest.mark.parametrize("spec", [SPEC, FAN], ids=["parallel", "fan"])
def test_fbp_initial_image_is_the_windowed_fbp(spec):
    model = LearnedGradientDescent(spec, SINOGRAMS, IMAGES, {"iterations": 1, "initial": "fbp"})
    core = model.generator.get_layer("unrolled")
    for variable in core.trainable_variables:  # zero updates: the output is the start
        variable.assign(tf.zeros_like(variable))
    sinograms = windowed_pairs(2, 3, spec)[0]
    assert sinograms.shape[1:3] == spec.sinogram_shape
    recon = fbp_reconstruct((sinograms[..., 0] + 1) * 15.0, spec, impl="astra_cpu")
    out = model.predict(sinograms, verbose=0)[..., 0]
    np.testing.assert_allclose(out, 2 * recon - 1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_weight": 1.0}, "latent_weight applies to encoder-decoder generators"),
        ({"network": {"method": "lgd"}}, "network options ['method'] are fixed by"),
        ({"network": {"initial": "ones"}}, "initial must be one of ('zeros', 'fbp'), got 'ones'"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        LearnedPrimalDual(SPEC, SINOGRAMS, IMAGES, **kwargs)
