"""Building a compiled model from a config alone."""

import random

import numpy as np
import pytest

from kerastrans.config import Config, ModelConfig, with_overrides
from kerastrans.training import build_model

SMALL = {
    "model.generator.depth": 2,
    "model.generator.base_channels": 4,
    "model.discriminator.base_channels": 4,
    "model.discriminator.depth": 1,
}


def _config(kind="pix2pix", **overrides) -> Config:
    shapes = {"input_shape": (16, 16, 1), "output_shape": (16, 16, 1), "seed": 7}
    return with_overrides(Config(model=ModelConfig(kind=kind, **shapes)), {**SMALL, **overrides})


def test_same_seed_gives_same_initial_weights_and_leaves_random_alone():
    state = random.getstate()
    first, second = build_model(_config()), build_model(_config())
    assert random.getstate() == state
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = build_model(_config(**{"model.seed": 8}))
    assert not np.array_equal(
        first.generator.weights[0].numpy(), other.generator.weights[0].numpy()
    )


def test_pix2pix_gets_the_loss_weights_and_optimizers_of_the_config():
    model = build_model(
        _config(**{"losses.l1": 10, "losses.tv": 0.5, "training.g_learning_rate": 1e-3})
    )
    config = model.get_config()
    assert (config["l1_weight"], config["tv_weight"], config["adversarial"]) == (
        10.0,
        0.5,
        "vanilla",
    )
    assert config["generator"]["channels"] == (4, 8)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.g_optimizer.beta_1 == 0.5


def test_cyclegan_gets_both_windows_and_its_losses():
    config = with_overrides(
        _config(
            "cyclegan", **{"model.pool_size": 2, "losses.air": 1, "losses.air_threshold": -900}
        ),
        {"data.input_window": {"base": -160, "range": 400}},
    )
    with pytest.raises(ValueError, match=r"data.target_window is None \(chosen from the dataset"):
        build_model(config)
    config = with_overrides(config, {"data.target_window": {"base": -1024, "range": 4095}})
    model = build_model(config).get_config()
    assert model["window_a"] == {"base": -160.0, "range": 400.0}
    assert model["window_b"] == {"base": -1024.0, "range": 4095.0}
    assert (model["cycle_weight"], model["identity_weight"], model["air_weight"]) == (
        10.0,
        5.0,
        1.0,
    )


def test_automap_maps_fixed_shapes_with_its_refinement():
    config = _config("automap", **{"model.input_shape": [6, 9, 1], "model.fc_layers": 1})
    model = build_model(config)
    assert model.get_config()["image_shape"] == (16, 16, 1)
    assert tuple(model.generator.input_shape) == (None, 6, 9, 1)


def test_shapes_are_required():
    with pytest.raises(ValueError, match=r"model.input_shape and model.output_shape must be set"):
        build_model(Config())


@pytest.mark.parametrize(
    ("kind", "overrides", "residual"),
    [
        ("pix2pix", {}, False),
        ("pix2pix", {"model.generator.residual_output": True}, True),
        ("automap", {"model.fc_layers": 1}, False),
    ],
)
def test_residual_output_reaches_the_generator_only_when_asked(kind, overrides, residual):
    config = _config(kind, **{"model.generator.out_activation": "none", **overrides})
    assert build_model(config).generator.get_config()["residual_output"] is residual
