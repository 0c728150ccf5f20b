"""One name per setting: each config field feeds the model argument its table names."""

import dataclasses
import inspect

import pytest
from model_helpers import constructor_arguments

from kerastrans.config import (
    LOSS_ARGUMENTS,
    MODEL_ARGUMENTS,
    MODEL_KINDS,
    TRAINING_ARGUMENTS,
    WEIGHTS,
    Config,
    LossesConfig,
    ModelConfig,
    TrainingConfig,
)
from kerastrans.models import (
    Automap,
    CycleGAN,
    FBPUNetModel,
    LearnedGradientDescent,
    LearnedPrimalDual,
    Pix2Pix,
)
from kerastrans.training.build import model_arguments

MODELS = {
    "pix2pix": Pix2Pix,
    "cyclegan": CycleGAN,
    "automap": Automap,
    "lpd": LearnedPrimalDual,
    "lgd": LearnedGradientDescent,
    "fbp-unet": FBPUNetModel,
}
TABLES = {
    "losses": (LossesConfig, LOSS_ARGUMENTS),
    "model": (ModelConfig, MODEL_ARGUMENTS),
    "training": (TrainingConfig, TRAINING_ARGUMENTS),
}
#: Arguments `build_model` assembles from shapes, networks, geometry and windows.
ASSEMBLED = {"input_shape", "output_channels", "image_shape", "generator", "discriminator",
             "refinement", "fbp_init", "geometry", "sinogram_window", "image_window", "network",
             "window_a", "window_b"}  # fmt: skip
#: Arguments no setting gives: the model's name, CycleGAN's latent-code discriminator (its
#: defaults); the reconstruction models fix pix2pix's ``conditional`` (``*args`` are theirs).
NOT_SETTINGS = {"name", "latent_discriminator", "args", "conditional"}


def _fed() -> dict[str, dict[str, str]]:
    """``{kind: {argument: "section.field"}}`` over the three tables."""
    fed = {kind: {} for kind in MODEL_KINDS}
    for section, (_, table) in TABLES.items():
        for field, (argument, kinds) in table.items():
            for kind in kinds or MODEL_KINDS:
                fed[kind][argument] = f"{section}.{field}"
    return fed


def test_every_field_of_a_table_feeds_an_argument_of_each_model_it_names():
    assert list(LOSS_ARGUMENTS) == [field.name for field in dataclasses.fields(LossesConfig)]
    for section, (cls, table) in TABLES.items():
        fields = {field.name for field in dataclasses.fields(cls)}
        for field, (argument, kinds) in table.items():
            assert field in fields, f"{section}.{field} is not a config field"
            for kind in kinds or MODEL_KINDS:
                assert argument in constructor_arguments(MODELS[kind]), (field, kind)


def test_every_model_argument_comes_from_a_setting_or_is_assembled():
    fed = _fed()
    every = set().union(*(constructor_arguments(model) for model in MODELS.values()))
    assert every >= ASSEMBLED | NOT_SETTINGS  # the lists name no argument that is gone
    for kind, model in MODELS.items():
        unfed = constructor_arguments(model) - set(fed[kind]) - ASSEMBLED - NOT_SETTINGS
        # A loss the table leaves out for this kind (refused by the config) stays off.
        off = {LOSS_ARGUMENTS[name][0] for name in WEIGHTS} & unfed
        assert {argument: _default(model, argument) for argument in off} == dict.fromkeys(off, 0)
        assert not unfed - off, f"{kind} takes {sorted(unfed - off)}, which no config field feeds"


def _default(model: type, argument: str):
    """The default of ``argument`` of ``model(...)``, following ``**kwargs`` up the bases."""
    for klass in model.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(argument)
        if parameter is not None:
            return parameter.default
    raise KeyError(argument)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_build_passes_each_weight_under_its_argument_name(kind):
    weights = [name for name in WEIGHTS if kind in (LOSS_ARGUMENTS[name][1] or MODEL_KINDS)]
    losses = {name: 0.25 + i for i, name in enumerate(weights)}
    if "air" in losses:
        losses["air_threshold"] = -900.0
    if "perceptual" in losses:
        losses["perceptual_weights"] = "vgg.weights.h5"
    arguments = model_arguments(Config(model=ModelConfig(kind=kind), losses=losses))
    assert {LOSS_ARGUMENTS[name][0]: arguments[LOSS_ARGUMENTS[name][0]] for name in weights} == {
        LOSS_ARGUMENTS[name][0]: value for name, value in losses.items() if name in weights
    }
    assert set(arguments) == set(_fed()[kind])
    assert arguments["perceptual"] == {"weights_path": "vgg.weights.h5", "network": "vgg16"}
