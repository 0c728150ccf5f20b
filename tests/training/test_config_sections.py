"""The model, losses and training sections of the config: presets, checks, differences."""

import pytest

from kerastrans.config import (
    Config,
    GeneratorConfig,
    ModelConfig,
    config_differences,
    from_dict,
    to_dict,
    with_overrides,
)


def test_model_kind_presets_fill_what_is_not_given():
    config = from_dict(Config, {"model": {"kind": "cyclegan", "generator": {"depth": 4}}})
    assert config.model.generator.depth == 4  # given
    assert config.model.generator.residual_blocks == 6  # CycleGAN preset
    assert config.model.generator.norm == "instance"
    assert config.model.pool_size == 50
    assert (config.losses.cycle, config.losses.identity, config.losses.l1) == (10.0, 5.0, 0.0)
    assert config.losses.adversarial_loss == "lsgan"
    pix2pix = Config()
    assert (pix2pix.losses.l1, pix2pix.losses.adversarial_loss, pix2pix.model.pool_size) == (
        100.0,
        "vanilla",
        0,
    )


def test_resolved_config_round_trips_through_dicts():
    config = with_overrides(Config(model=ModelConfig(kind="automap")), ["losses.tv=0.5"])
    assert from_dict(Config, to_dict(config)) == config
    assert config.losses.l2 == 1.0 and config.losses.tv == 0.5


def test_generator_channel_plan_and_size_multiple():
    generator = GeneratorConfig(depth=5, base_channels=16, max_channels=64)
    assert generator.channels == (16, 32, 64, 64, 64)
    assert generator.size_multiple == 16
    assert GeneratorConfig(depth=3, stem_kernel=None).size_multiple == 8


def test_losses_of_another_model_are_rejected():
    with pytest.raises(
        ValueError, match=r"losses.cycle applies to cyclegan, got cycle=1.0 for model pix2pix"
    ):
        from_dict(Config, {"losses": {"cycle": 1}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.kind=unet",
            r"model.kind must be one of \['pix2pix', 'cyclegan', 'automap', 'lpd', 'lgd', "
            r"'fbp-unet'\]",
        ),
        ("model.generator.depth=0", "generator.depth must be >= 1, got 0"),
        ("model.generator.up=deconv", "up must be one of"),
        ("losses.l1=-1", "losses.l1 must be >= 0, got -1.0"),
        ("losses.air=1", "losses.air > 0 needs losses.air_threshold"),
        ("training.g_learning_rate=0", "training.g_learning_rate must be > 0, got 0.0"),
        ("training.schedule.decay_start=2", r"schedule.decay_start must be in \[0, 1\], got 2.0"),
        ("model.input_shape=[0, 8, 1]", r"model.input_shape must be \(height, width, channels\)"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        with_overrides(Config(), [override])


def test_exponent_notation_overrides_are_numbers():
    assert (
        with_overrides(Config(), ["training.d_learning_rate=5e-5"]).training.d_learning_rate == 5e-5
    )


def test_config_differences_name_each_differing_key():
    old = Config()
    new = with_overrides(old, ["model.generator.depth=5", "training.epochs=7", "losses.l1=10"])
    assert config_differences(old, new) == [
        "model.generator.depth: 4 -> 5",
        "losses.l1: 100.0 -> 10.0",
        "training.epochs: 100 -> 7",
    ]
    assert config_differences(old, new, ignore=["training.epochs", "model"]) == [
        "losses.l1: 100.0 -> 10.0"
    ]
