"""Tests of the custom layers: instance norm, pixel shuffle, squeeze-excitation, attention."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerastrans.nets import (
    FusedBatchNormalization,
    InstanceNormalization,
    PixelShuffle,
    ScaledDense,
    SelfAttention2D,
    SqueezeExcitation,
)
from kerastrans.precision import precision_scope

RNG = np.random.default_rng(0)


def test_instance_norm_gives_each_channel_of_each_image_zero_mean_unit_variance():
    x = RNG.normal(3.0, 5.0, (2, 8, 8, 3)).astype("float32")
    y = ops.convert_to_numpy(InstanceNormalization()(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, atol=1e-3)


def test_instance_norm_computes_statistics_in_float32_under_mixed_precision():
    # A constant offset of 300 loses the variation in bfloat16 (8 bits of mantissa)
    # unless the mean is subtracted in float32.
    x = 300.0 + RNG.normal(0.0, 1.0, (1, 16, 16, 2)).astype("float32")
    with precision_scope("mixed_bfloat16"):
        layer = InstanceNormalization()
        y = layer(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    std = ops.convert_to_numpy(ops.cast(y, "float32")).std(axis=(1, 2))
    np.testing.assert_allclose(std, 1.0, atol=0.1)


def test_instance_norm_round_trips_its_config_and_rejects_bad_epsilon():
    layer = InstanceNormalization(epsilon=1e-3, center=False)
    assert InstanceNormalization.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="epsilon must be > 0, got 0"):
        InstanceNormalization(epsilon=0)


def _instance_norm_pair(**arguments):
    """A layer on the fused kernel and one on the formula, with the same random weights."""
    fused, formula = InstanceNormalization(**arguments), InstanceNormalization(**arguments)
    formula.use_fused_kernel = False
    for layer in (fused, formula):
        layer.build((None, 6, 5, 3))
    weights = [RNG.normal(1.0, 0.5, w.shape).astype("float32") for w in fused.get_weights()]
    fused.set_weights(weights)
    formula.set_weights(weights)
    return fused, formula


def _training_output_and_gradients(layer, x, cotangent):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") * cotangent)
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "arguments", [{}, {"center": False}, {"scale": False}, {"epsilon": 1e-3}], ids=str
)
def test_instance_norm_fused_training_path_gives_the_formula_and_its_gradients(batch, arguments):
    fused, formula = _instance_norm_pair(**arguments)
    x = RNG.normal(2.0, 3.0, (batch, 6, 5, 3)).astype("float32")
    cotangent = RNG.normal(size=x.shape).astype("float32")
    got = _training_output_and_gradients(fused, x, cotangent)
    expected = _training_output_and_gradients(formula, x, cotangent)
    assert len(got) == 2 + len(fused.trainable_weights)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=2e-5)


def test_instance_norm_fused_path_handles_an_unknown_batch_and_second_derivatives():
    fused, formula = _instance_norm_pair()
    x = tf.constant(RNG.normal(size=(2, 6, 5, 3)).astype("float32"))

    def penalty_gradient(layer):
        # A gradient penalty: the gradient of the input gradient's norm.
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(tf.tanh(layer(x, training=True)) * tf.range(3.0))
            penalty = tf.reduce_sum(tf.square(inner.gradient(score, x)))
        return outer.gradient(penalty, x)

    np.testing.assert_allclose(penalty_gradient(fused), penalty_gradient(formula), atol=1e-4)
    traced = tf.function(
        lambda images: fused(images, training=True),
        input_signature=[tf.TensorSpec((None, 6, 5, 3))],
    )
    np.testing.assert_allclose(traced(x), formula(x, training=True), atol=2e-5)


def test_instance_norm_keeps_float32_weights_and_the_fused_path_under_mixed_precision():
    x = RNG.normal(size=(2, 6, 5, 3)).astype("float32")
    with precision_scope("mixed_bfloat16"):
        mixed = InstanceNormalization()
        y = mixed(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(mixed.gamma.dtype) == "float32"
    reference = InstanceNormalization()(x)
    np.testing.assert_allclose(ops.convert_to_numpy(ops.cast(y, "float32")), reference, atol=3e-2)


def test_pixel_shuffle_moves_channels_into_space_like_depth_to_space():
    x = RNG.normal(size=(2, 3, 5, 8)).astype("float32")
    y = PixelShuffle(2)(x)
    assert tuple(y.shape) == (2, 6, 10, 2)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(y), ops.convert_to_numpy(ops.depth_to_space(x, 2))
    )


def test_pixel_shuffle_rejects_channels_not_divisible_by_the_factor_squared():
    with pytest.raises(ValueError, match=r"channels divisible by 4, got 6"):
        PixelShuffle(2)(np.zeros((1, 4, 4, 6), "float32"))


def test_squeeze_excitation_scales_channels_by_a_gate_in_zero_one_with_hand_counted_weights():
    layer = SqueezeExcitation(ratio=4)
    x = RNG.uniform(0.5, 1.0, (2, 4, 4, 16)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    gate = y / x
    assert np.all((gate > 0) & (gate < 1))
    np.testing.assert_allclose(gate, gate[:, :1, :1, :].repeat(4, 1).repeat(4, 2), rtol=1e-5)
    assert layer.count_params() == (16 * 4 + 4) + (4 * 16 + 16)


def test_self_attention_starts_as_the_identity_and_needs_eight_channels():
    x = RNG.normal(size=(1, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(SelfAttention2D()(x)), x, atol=1e-6)
    with pytest.raises(ValueError, match="at least 8 channels, got 4"):
        SelfAttention2D()(np.zeros((1, 4, 4, 4), "float32"))


def test_fused_batch_norm_trains_like_the_keras_layer_and_infers_exactly_like_it():
    x = RNG.normal(2.0, 3.0, (4, 8, 8, 5)).astype("float32")
    fused, plain = (
        FusedBatchNormalization(momentum=0.5),
        keras.layers.BatchNormalization(momentum=0.5),
    )
    y_fused, y_plain = fused(x, training=True), plain(x, training=True)
    np.testing.assert_allclose(
        ops.convert_to_numpy(y_fused), ops.convert_to_numpy(y_plain), atol=1e-4
    )
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5)
    # The moving variance takes the unbiased batch variance (n = 4 * 8 * 8 values).
    n = 4 * 8 * 8
    unbiased = 0.5 + 0.5 * x.var(axis=(0, 1, 2)) * n / (n - 1)
    np.testing.assert_allclose(fused.moving_variance.numpy(), unbiased, rtol=1e-4)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(fused(x, training=False)),
        ops.convert_to_numpy(keras.layers.BatchNormalization.call(fused, x, training=False)),
    )
    assert FusedBatchNormalization.from_config(fused.get_config()).momentum == 0.5


def test_fused_batch_norm_takes_bfloat16_activations_and_keeps_float32_statistics():
    with precision_scope("mixed_bfloat16"):
        layer = FusedBatchNormalization()
        y = layer(RNG.normal(size=(2, 4, 4, 3)).astype("float32"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert layer.moving_mean.dtype == "float32"


def test_scaled_dense_applies_its_effective_weights_and_round_trips_its_config():
    layer = ScaledDense(5, "tanh", learning_rate_scale=0.25, kernel_initializer="ones")
    x = RNG.normal(size=(3, 4)).astype("float32")
    layer(x)
    kernel, bias = layer.effective_weights()
    np.testing.assert_allclose(kernel, np.ones((4, 5)), rtol=1e-6)  # initialised effective
    np.testing.assert_allclose(layer.kernel.numpy(), 4 * np.ones((4, 5)), rtol=1e-6)  # stored
    kernel, bias = RNG.normal(size=(4, 5)), RNG.normal(size=5)
    layer.set_effective_weights([kernel, bias])
    np.testing.assert_allclose(layer(x).numpy(), np.tanh(x @ kernel + bias), rtol=1e-5)
    restored = ScaledDense.from_config(layer.get_config())
    restored(x)
    restored.set_weights(layer.get_weights())
    np.testing.assert_array_equal(restored(x).numpy(), layer(x).numpy())
    with pytest.raises(ValueError, match="learning_rate_scale must be > 0, got 0"):
        ScaledDense(5, learning_rate_scale=0)


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_scaled_dense_moves_its_effective_weights_by_scale_times_the_adam_rate(scale):
    # Adam's first step moves every weight by the rate (sign of the gradient), so the
    # effective weights of the scaled layer move by scale x rate.
    layer = ScaledDense(3, learning_rate_scale=scale)
    x = RNG.normal(size=(8, 6)).astype("float32")
    layer(x)
    before = layer.effective_weights()
    optimizer = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:
        loss = ops.sum((layer(x) - 1.0) ** 2)
    optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights),
                                  layer.trainable_weights, strict=True))  # fmt: skip
    for old, new in zip(before, layer.effective_weights(), strict=True):
        # (within 5 %: Adam's epsilon shrinks the steps of the smallest gradients)
        np.testing.assert_allclose(np.abs(new - old), 1e-2 * scale, rtol=0.05)
