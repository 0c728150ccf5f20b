"""Build a compiled model from a `kerastrans.config.Config` alone.

The config's model section names the model and its networks, the losses
section its loss weights, the training section its optimizers (Adam with the
learning-rate schedule of the run) and the data section the windows that some
losses need (CycleGAN's air loss works in HU). A model built twice from one
config has the same architecture and, with a seed, the same initial weights,
so a checkpoint's weights can be loaded into it.

>>> from kerastrans.config import Config, ModelConfig
>>> config = Config(model=ModelConfig(input_shape=(32, 32, 1), output_shape=(32, 32, 1), seed=0))
>>> type(build_model(config, total_steps=10)).__name__
'Pix2Pix'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from kerastrans.config import (
    LOSS_ARGUMENTS,
    MODEL_ARGUMENTS,
    RECONSTRUCTION_KINDS,
    TRAINING_ARGUMENTS,
    Config,
    DiscriminatorConfig,
    GeneratorConfig,
)
from kerastrans.optimizers import FusedAdam
from kerastrans.precision import resolve_precision
from kerastrans.training.schedules import make_schedule

__all__ = [
    "build_model",
    "discriminator_options",
    "generator_options",
    "make_optimizers",
    "model_arguments",
]


def generator_options(config: GeneratorConfig) -> dict[str, Any]:
    """The keyword arguments of `kerastrans.nets.Generator` that ``config`` gives."""
    options = dataclasses.asdict(config)
    for key in ("depth", "base_channels", "max_channels"):
        del options[key]
    if options["residual_output"] is None:  # the model's own default
        del options["residual_output"]
    return {"channels": config.channels, **options}


def discriminator_options(config: DiscriminatorConfig) -> dict[str, Any]:
    """The keyword arguments of `kerastrans.nets.PatchDiscriminator` that ``config`` gives."""
    return dataclasses.asdict(config)


def make_optimizers(config: Config, total_steps: int) -> tuple[Any, Any]:
    """Adam optimizers of the generator(s) and discriminator(s) with the run's schedule.

    Args:
        config: The run's config (training section: rates, betas, schedule,
            gradient clipping).
        total_steps: Optimizer steps of the whole run, for decaying schedules.

    Returns:
        ``(g_optimizer, d_optimizer)``.
    """
    training = config.training
    return tuple(
        FusedAdam(
            make_schedule(rate, training.schedule, total_steps),
            beta_1=training.beta_1,
            beta_2=training.beta_2,
            global_clipnorm=training.clip_norm,
            name=name,
        )
        for name, rate in (
            ("g_adam", training.g_learning_rate),
            ("d_adam", training.d_learning_rate),
        )
    )


def build_model(config: Config, *, total_steps: int | None = None) -> keras.Model:
    """Build and compile the model ``config`` describes.

    Args:
        config: A config whose ``model.input_shape`` and ``model.output_shape``
            are filled in (``kerastrans fit`` fills them from the dataset).
        total_steps: Optimizer steps of the whole run; default
            ``training.epochs x training.steps_per_epoch``.

    Returns:
        A compiled `kerastrans.models.Pix2Pix`, `CycleGAN` or `Automap`.

    Raises:
        ValueError: If the shapes are missing, a window the model needs is
            `None` (CycleGAN, reconstruction, AUTOMAP with ``fbp_init``), or
            the model rejects an option.
    """
    model, training = config.model, config.training
    if model.input_shape is None or model.output_shape is None:
        raise ValueError(
            "model.input_shape and model.output_shape must be set to build a model "
            f"(kerastrans fit fills them from the dataset), got {model.input_shape} and "
            f"{model.output_shape}"
        )
    generator = generator_options(model.generator)
    discriminator = discriminator_options(model.discriminator)
    network = _construct(config, generator, discriminator, model_arguments(config))
    if total_steps is None:
        total_steps = training.epochs * (training.steps_per_epoch or 1)
    g_optimizer, d_optimizer = make_optimizers(config, total_steps)
    network.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer)
    return network


def model_arguments(config: Config) -> dict[str, Any]:
    """The model's keyword arguments that come from settings, through one table per section.

    Each field of `LossesConfig` (`LOSS_ARGUMENTS`), the plain fields of
    `ModelConfig` (`MODEL_ARGUMENTS`) and the fields of `TrainingConfig` that
    the model takes (`TRAINING_ARGUMENTS`) feed the argument its row names,
    for the model kinds the row lists; ``precision`` becomes a ``dtype`` and
    the ``perceptual_*`` fields one ``perceptual`` dict.

    >>> from kerastrans.config import Config
    >>> arguments = model_arguments(Config())
    >>> arguments["l1_weight"], arguments["adversarial"], "cycle_weight" in arguments
    (100.0, 'vanilla', False)
    """
    kind = config.model.kind
    arguments = {}
    for section, table in (
        (config.losses, LOSS_ARGUMENTS),
        (config.model, MODEL_ARGUMENTS),
        (config.training, TRAINING_ARGUMENTS),
    ):
        for field, (argument, kinds) in table.items():
            if kinds is None or kind in kinds:
                convert = _CONVERTED.get(argument)
                arguments[argument] = (
                    getattr(section, field) if convert is None else convert(config)
                )
    return arguments


def _construct(config: Config, generator: dict, discriminator: dict, arguments: dict):
    """The model of ``config.model.kind`` from the prepared keyword arguments."""
    from kerastrans.models import Automap, CycleGAN, Pix2Pix

    model = config.model
    if model.kind == "pix2pix":
        network = Pix2Pix(
            model.input_shape, model.output_shape[2], generator, discriminator, **arguments
        )
    elif model.kind in RECONSTRUCTION_KINDS:
        network = _reconstruction(config, generator, discriminator, arguments)
    elif model.kind == "automap":
        network = Automap(
            model.input_shape,
            model.output_shape,
            refinement=generator,
            fbp_init=_fbp_init(config),
            discriminator=discriminator,
            **arguments,
        )
    else:
        window_a, window_b = config.data.windows()
        network = CycleGAN(
            model.input_shape,
            model.output_shape[2],
            generator,
            discriminator,
            window_a=window_a,
            window_b=window_b,
            **arguments,
        )
    return network


def _reconstruction(config: Config, generator: dict, discriminator: dict, arguments: dict):
    """The lpd, lgd or fbp-unet model of ``config`` (geometry from ``model.geometry``)."""
    from kerastrans.models import FBPUNetModel, LearnedGradientDescent, LearnedPrimalDual

    model = config.model
    if model.geometry is None:
        raise ValueError(
            f"model.geometry must be set for {model.kind} (kerastrans fit reads it from the "
            "dataset's metadata), got None"
        )
    if model.kind == "fbp-unet":
        network = {
            "unet": generator,
            "filter_type": model.fbp_filter,
            "frequency_scaling": model.fbp_frequency_scaling,
        }
    else:
        network = {
            "iterations": model.iterations,
            "channels": model.unrolled_channels,
            "primal_memory": model.primal_memory,
            "initial": model.initial,
        }
        if model.kind == "lpd":
            network["dual_memory"] = model.dual_memory
    kinds = {"lpd": LearnedPrimalDual, "lgd": LearnedGradientDescent, "fbp-unet": FBPUNetModel}
    return kinds[model.kind](
        model.geometry,
        *config.data.windows(),
        network,
        discriminator=discriminator,
        **arguments,
    )


def _fbp_init(config: Config) -> dict[str, Any] | None:
    """AUTOMAP's ``fbp_init`` option from the config (geometry, windows, filter, cut-off)."""
    model = config.model
    if not model.fbp_init:
        return None
    if model.geometry is None:
        raise ValueError(
            "model.fbp_init needs model.geometry (kerastrans fit reads it from the dataset's "
            "metadata), got None"
        )
    sinogram_window, image_window = config.data.windows()
    return {
        "geometry": model.geometry,
        "sinogram_window": sinogram_window,
        "image_window": image_window,
        "filter_type": model.fbp_filter,
        "frequency_scaling": model.fbp_frequency_scaling,
    }


def _perceptual(config: Config) -> dict[str, Any] | None:
    losses = config.losses
    if not losses.perceptual:
        return None
    options = {"weights_path": losses.perceptual_weights, "network": losses.perceptual_network}
    if losses.perceptual_layer is not None:
        options["layer"] = losses.perceptual_layer
    return options


#: Arguments made from their fields rather than passed as they are.
_CONVERTED: dict[str, Callable[[Config], Any]] = {
    "dtype": lambda config: resolve_precision(config.model.precision),
    "perceptual": _perceptual,
}
