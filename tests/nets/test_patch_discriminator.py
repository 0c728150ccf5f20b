"""Tests of the PatchGAN discriminator."""

import keras
import numpy as np
import pytest

from kerastrans.nets import PatchDiscriminator
from kerastrans.precision import precision_scope


def test_default_discriminator_sees_70_by_70_patches_and_returns_one_logit_per_patch():
    net = PatchDiscriminator((64, 64, 2), base_channels=8)
    assert net.receptive_field == 70
    assert tuple(net(np.zeros((3, 64, 64, 2), "float32")).shape) == (3, 8, 8, 1)


def test_parameter_count_counted_by_hand():
    net = PatchDiscriminator((32, 32, 2), base_channels=4, depth=2, norm="none")
    expected = (
        (4 * 4 * 2 * 4 + 4)  # stride 2, 2 -> 4
        + (4 * 4 * 4 * 8 + 8)  # stride 2, 4 -> 8
        + (4 * 4 * 8 * 16 + 16)  # stride 1, 8 -> 16
        + (4 * 4 * 16 * 1 + 1)  # logits
    )
    assert net.count_params() == expected == 2973
    assert net.receptive_field == 1 + 3 * (1 + 2 + 4 + 4)


@pytest.mark.parametrize(
    "options",
    [
        {"norm": "instance", "dropout": 0.3, "kernel_size": 3},
        {"norm": "group", "spectral_norm": True, "attention": True},
        {"norm": "layer", "squeeze_excitation": True, "depth": 1},
        {"depth": 0, "kernel_size": 3, "norm": "none"},
    ],
)
def test_options_keep_the_patch_grid(options):
    net = PatchDiscriminator((32, 32, 1), base_channels=16, **options)
    out = net(np.zeros((2, 32, 32, 1), "float32"), training=True)
    depth = options.get("depth", 3)
    assert tuple(out.shape) == (2, 32 // 2**depth, 32 // 2**depth, 1)


def test_logits_are_float32_under_mixed_precision_and_config_round_trips():
    with precision_scope("mixed_bfloat16"):
        net = PatchDiscriminator((32, 32, 1), base_channels=8, depth=2)
    out = net(np.zeros((1, 32, 32, 1), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert PatchDiscriminator.from_config(net.get_config()).get_config() == net.get_config()


def test_bad_shapes_are_refused_with_the_rule():
    with pytest.raises(ValueError, match="smaller than 2\\*\\*depth = 16"):
        PatchDiscriminator((8, 8, 1), depth=4)
    with pytest.raises(ValueError, match="input_shape must be \\(height, width, channels\\)"):
        PatchDiscriminator((8, 8), depth=1)
    with pytest.raises(ValueError, match="depth must be an integer >= 0, got -1"):
        PatchDiscriminator((8, 8, 1), depth=-1)
