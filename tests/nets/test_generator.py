"""Tests of the encoder-decoder Generator: shapes, parameter counts, sizes, modes."""

import keras
import numpy as np
import pytest
from keras import ops

from kerastrans.nets import Generator
from kerastrans.precision import precision_scope

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, (2, 32, 32, 1)).astype("float32")


def test_parameter_count_of_a_small_unet_counted_by_hand():
    net = Generator((8, 8, 1), 1, channels=(4, 8), stem_kernel=3, up="transpose", norm="none")
    stem = 3 * 3 * 1 * 4 + 4  # 3x3 conv 1 -> 4 with bias
    down = 3 * 3 * 4 * 8 + 8  # strided 3x3 conv 4 -> 8
    up = 3 * 3 * 8 * 4 + 4  # transposed 3x3 conv 8 -> 4
    head = 3 * 3 * (4 + 4) * 1 + 1  # 3x3 conv on the concatenated skip
    assert net.count_params() == stem + down + up + head == 701
    # With batch norm: no conv bias before a norm, 4 values per normalised channel.
    net = Generator((8, 8, 1), 1, channels=(4, 8), stem_kernel=3, up="transpose", norm="batch")
    assert net.count_params() == 701 - (4 + 8 + 4) + 4 * (4 + 8 + 4)


@pytest.mark.parametrize(
    "options",
    [
        {"skip": "concat"},
        {"skip": "add", "down": "maxpool", "up": "unpool"},
        {"skip": "conv", "skip_channels": 2, "down": "avgpool_conv", "up": "pixel_shuffle"},
        {"skip": "none", "residual_blocks": 3, "norm": "instance", "up": "transpose"},
        {"down": "maxpool_res", "norm": "layer", "attention": True, "squeeze_excitation": True},
        {"norm": "group", "spectral_norm": True, "dropout": 0.5, "dropout_levels": 1},
        {"stem_kernel": None, "kernel_size": 4, "encoder_activation": "leaky_relu"},
        {"bottleneck_fc": 16, "input_noise": 0.1, "latent_noise": 0.1, "norm": "none"},
    ],
)
def test_options_keep_the_image_size_and_set_the_output_channels(options):
    net = Generator((32, 32, 1), 3, channels=(8, 16, 16), **options)
    out = net(IMAGES, training=True)
    assert tuple(out.shape) == (2, 32, 32, 3)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_u_net_of_pix2pix_has_eight_levels_and_dropout_in_three():
    net = Generator(
        (256, 256, 3),
        3,
        channels=(64, 128, 256, 512, 512, 512, 512, 512),
        stem_kernel=None,
        kernel_size=4,
        up="transpose",
        dropout=0.5,
        dropout_levels=3,
    )
    assert net.size_multiple == 256
    dropouts = [layer for layer in net.decoder.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == 3
    # Encoder: the bottleneck is 1 x 1 x 512 for a 256 x 256 input.
    assert tuple(net.encoder.outputs[-1].shape[1:]) == (None, None, 512)


def test_size_that_the_depth_does_not_allow_is_refused_at_build_and_at_call():
    with pytest.raises(ValueError, match="input height 30 is not a multiple of 4"):
        Generator((30, 32, 1), 1, channels=(8, 16, 16))
    net = Generator((None, None, 1), 1, channels=(8, 16, 16))
    with pytest.raises(ValueError, match="input width 34 is not a multiple of 4"):
        net(np.zeros((1, 32, 34, 1), "float32"))
    assert tuple(net(np.zeros((1, 40, 24, 1), "float32")).shape) == (1, 40, 24, 1)


def test_fc_layers_before_the_convolutions_map_the_input_onto_fc_shape():
    net = Generator(
        (6, 10, 1), 1, channels=(4,), stem_kernel=3, input_fc_layers=2, fc_shape=(8, 8, 1)
    )
    assert tuple(net(np.zeros((2, 6, 10, 1), "float32")).shape) == (2, 8, 8, 1)
    fc = (60 * 64 + 64) + (64 * 64 + 64)
    convs = (3 * 3 * 1 * 4) + 4 * 4 + (3 * 3 * 4 * 1 + 1)  # stem, its batch norm, head
    assert net.count_params() == fc + convs
    with pytest.raises(ValueError, match="fc_shape needs input_fc_layers > 0"):
        Generator((8, 8, 1), 1, channels=(4,), fc_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"input_shape \(with input_fc_layers\) must be"):
        Generator((None, None, 1), 1, channels=(4,), input_fc_layers=1)


def test_residual_output_adds_the_fc_image_to_the_convolutions_output():
    net = Generator(
        (6, 10, 1), 1, channels=(4, 8), stem_kernel=3, input_fc_layers=1, fc_shape=(8, 8, 1),
        out_activation="none", residual_output=True, norm="none",
    )  # fmt: skip
    inputs = np.random.default_rng(0).normal(size=(2, 6, 10, 1)).astype("float32")
    features = net.encode(inputs)
    fc_image = keras.Model(net.encoder.input, net.encoder.get_layer("fc_reshape").output)
    np.testing.assert_allclose(features[0], fc_image(inputs), rtol=1e-6)
    # The correction starts at zero: the untrained network outputs the FC image.
    np.testing.assert_allclose(ops.convert_to_numpy(net(inputs)), features[0], rtol=1e-6)
    head = net.decoder.get_layer("head_conv")
    rng = np.random.default_rng(1)
    head.set_weights([rng.normal(size=w.shape).astype("float32") for w in head.get_weights()])
    corrected = ops.convert_to_numpy(net(inputs))
    assert np.abs(corrected - features[0]).max() > 1e-3
    # Output = FC image + the last convolution's output (the same network without the add).
    plain_head = keras.Model(net.decoder.inputs, net.decoder.get_layer("head_conv").output)
    np.testing.assert_allclose(corrected, features[0] + plain_head(features), rtol=1e-5, atol=1e-5)
    assert Generator.from_config(net.get_config()).get_config()["residual_output"] is True


@pytest.mark.parametrize("stem_kernel", [3, None])
def test_residual_output_adds_the_float32_input_under_mixed_precision(stem_kernel):
    with precision_scope("mixed_bfloat16"):
        net = Generator(
            (16, 16, 1), 1, channels=(4, 8), stem_kernel=stem_kernel, out_activation="none",
            residual_output=True,
        )  # fmt: skip
    # The correction starts at zero. bfloat16 (8 significant bits) would round 1 + 2**-12.
    inputs = np.full((1, 16, 16, 1), 1.0 + 2.0**-12, np.float32)
    outputs = ops.convert_to_numpy(net(inputs))
    assert outputs.dtype == np.float32
    np.testing.assert_array_equal(outputs, inputs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_fc_layers": 1, "fc_shape": (8, 8, 2)}, "adds the FC image to the output, so it"),
        ({"input_shape": (8, 8, 3)}, "adds the input to the output, so it needs 1 channels"),
    ],
)
def test_residual_output_needs_as_many_channels_as_the_output(options, message):
    options = {"input_shape": (8, 8, 1), "channels": (4,), "residual_output": True, **options}
    with pytest.raises(ValueError, match=message):
        Generator(output_channels=1, **options)


def test_noise_and_dropout_act_in_training_only():
    net = Generator((32, 32, 1), 1, channels=(8, 16), input_noise=0.2, dropout=0.5, seed=1)
    inference = [ops.convert_to_numpy(net(IMAGES, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    np.testing.assert_array_equal(inference[0], net.predict(IMAGES, verbose=0))
    training = ops.convert_to_numpy(net(IMAGES, training=True))
    assert not np.allclose(training, inference[0])


def test_encode_then_decode_is_the_whole_network():
    net = Generator((32, 32, 1), 1, channels=(8, 16, 16), skip="conv")
    features = net.encode(IMAGES)
    assert len(features) == 3  # two skips and the latent code
    np.testing.assert_allclose(
        ops.convert_to_numpy(net.decode(features)), ops.convert_to_numpy(net(IMAGES)), atol=1e-6
    )
    shared = Generator((32, 32, 1), 1, channels=(8, 16, 16), skip="conv", encoder=net.encoder)
    assert shared.encoder is net.encoder


def test_config_round_trip_rebuilds_the_same_network():
    net = Generator((32, 32, 1), 2, channels=(8, 16), up="pixel_shuffle", seed=4)
    clone = Generator.from_config(net.get_config())
    clone.set_weights(net.get_weights())
    assert clone.get_config() == net.get_config()
    np.testing.assert_allclose(
        ops.convert_to_numpy(clone(IMAGES)), ops.convert_to_numpy(net(IMAGES))
    )


def test_mixed_precision_computes_in_bfloat16_and_returns_float32():
    with precision_scope("mixed_bfloat16"):
        net = Generator((32, 32, 1), 1, channels=(8, 16))
    assert net.get_config()["dtype"] == "mixed_bfloat16"
    convs = [layer for layer in net.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "bfloat16"
    assert keras.backend.standardize_dtype(net(IMAGES).dtype) == "float32"


@pytest.mark.parametrize("up", ["transpose", "resize", "pixel_shuffle"])
def test_mixed_precision_output_convolution_is_not_rounded_to_bfloat16(up):
    # bfloat16 keeps 8 significant bits: 4-8 HU steps in the full CT window (-1024..3071).
    with precision_scope("mixed_bfloat16"):
        net = Generator((32, 32, 1), 1, channels=(8, 16), up=up, out_activation="none")
    head = [layer for layer in net.decoder.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    assert head.compute_dtype == "float32"
    output = ops.convert_to_numpy(net(IMAGES))
    as_bfloat16 = ops.convert_to_numpy(ops.cast(ops.cast(output, "bfloat16"), "float32"))
    assert np.mean(output != as_bfloat16) > 0.9  # float32 values, not bfloat16 ones


def test_bad_options_name_the_argument_and_the_value():
    with pytest.raises(ValueError, match=r"skip must be one of .*got 'unet'"):
        Generator((32, 32, 1), 1, skip="unet")
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        Generator((32, 32, 1), 1, dropout=1.5)
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, channels\)"):
        Generator((32, 32), 1)


def test_a_seed_fixes_the_initial_weights():
    def weights(seed):
        net = Generator(
            (32, 32, 1), 1, channels=(8, 16), attention=True, spectral_norm=True, seed=seed
        )
        return np.concatenate([np.ravel(w) for w in net.get_weights()])

    np.testing.assert_array_equal(weights(7), weights(7))
    assert not np.array_equal(weights(7), weights(8))
