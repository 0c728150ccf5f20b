"""Tests of the conv blocks: sampling modes, normalisations and their parameter counts."""

import keras
import numpy as np
import pytest

from kerastrans.nets.blocks import DOWN_SAMPLING, UP_SAMPLING, ConvBlocks, check_choice
from kerastrans.nets.layers import SpectralNormalization


def _block_model(build, shape=(16, 16, 8)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, build(inputs))


@pytest.mark.parametrize("mode", DOWN_SAMPLING)
def test_every_down_sampling_mode_halves_height_and_width(mode):
    model = _block_model(lambda x: ConvBlocks().down(x, 12, mode))
    assert tuple(model.output.shape) == (None, 8, 8, 12)


@pytest.mark.parametrize("mode", UP_SAMPLING)
def test_every_up_sampling_mode_doubles_height_and_width(mode):
    model = _block_model(lambda x: ConvBlocks().up(x, 4, mode))
    assert tuple(model.output.shape) == (None, 32, 32, 4)


def test_conv_block_parameters_counted_by_hand():
    # 3x3 conv 8 -> 16 without bias (batch norm follows) + 4 batch-norm values per channel.
    model = _block_model(lambda x: ConvBlocks(norm="batch").conv_block(x, 16))
    assert model.count_params() == 3 * 3 * 8 * 16 + 4 * 16
    # Without normalisation the convolution keeps its bias.
    model = _block_model(lambda x: ConvBlocks(norm="none").conv_block(x, 16))
    assert model.count_params() == 3 * 3 * 8 * 16 + 16


@pytest.mark.parametrize(
    ("norm", "extra"), [("instance", 2 * 16), ("layer", 2 * 16), ("group", 2 * 16), ("none", 16)]
)
def test_normalisations_add_a_scale_and_offset_per_channel(norm, extra):
    model = _block_model(lambda x: ConvBlocks(norm=norm).conv_block(x, 16))
    assert model.count_params() == 3 * 3 * 8 * 16 + extra


def test_squeeze_excitation_and_spectral_norm_wrap_the_blocks():
    model = _block_model(
        lambda x: ConvBlocks(squeeze_excitation=True, spectral_norm=True).conv_block(x, 16)
    )
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"SqueezeExcitation", "SpectralNormalization"} <= kinds


def test_group_norm_needs_channels_divisible_by_the_groups():
    with pytest.raises(ValueError, match="divisible by norm_groups=8, got 12 channels"):
        _block_model(lambda x: ConvBlocks(norm="group").conv_block(x, 12))


def test_unknown_options_are_refused_with_the_accepted_values():
    with pytest.raises(ValueError, match=r"norm must be one of \('batch'.*got 'bn'"):
        ConvBlocks(norm="bn")
    with pytest.raises(ValueError, match=r"up must be one of .*got 'deconv'"):
        _block_model(lambda x: ConvBlocks().up(x, 4, "deconv"))
    assert check_choice("skip", "add", ("add",)) == "add"


def test_seeded_spectral_normalization_draws_u_from_its_seed_and_round_trips():
    def layer(seed):
        wrapped = SpectralNormalization(keras.layers.Dense(4), seed=seed)
        wrapped.build((None, 3))
        return wrapped

    first, again, other = layer(3), layer(3), layer(4)
    np.testing.assert_array_equal(first.vector_u.numpy(), again.vector_u.numpy())
    assert not np.array_equal(first.vector_u.numpy(), other.vector_u.numpy())
    assert 0 < np.abs(first.vector_u.numpy()).max() <= 0.04  # truncated normal, stddev 0.02
    restored = SpectralNormalization.from_config(first.get_config())
    assert restored.seed == 3
