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
from typing import Any

import keras

from kerastrans.config import (
    RECONSTRUCTION_KINDS,
    Config,
    DiscriminatorConfig,
    GeneratorConfig,
)
from kerastrans.precision import resolve_precision
from kerastrans.training.schedules import make_schedule

__all__ = ["build_model", "discriminator_options", "generator_options", "make_optimizers"]


def generator_options(config: GeneratorConfig) -> dict[str, Any]:
    """The keyword arguments of `kerastrans.nets.Generator` that ``config`` gives."""
    options = dataclasses.asdict(config)
    for key in ("depth", "base_channels", "max_channels"):
        del options[key]
    return {"channels": config.channels, **options}


def discriminator_options(config: DiscriminatorConfig) -> dict[str, Any]:
    """The keyword arguments of `kerastrans.nets.PatchDiscriminator` that ``config`` gives."""
    return dataclasses.asdict(config)


def make_optimizers(config: Config, total_steps: int) -> tuple[Any, Any]:
    """Adam optimizers of the generator(s) and discriminator(s) with the run's schedule.

    Args:
        config: The run's config (training section: rates, betas, schedule).
        total_steps: Optimizer steps of the whole run, for decaying schedules.

    Returns:
        ``(g_optimizer, d_optimizer)``.
    """
    training = config.training
    return tuple(
        keras.optimizers.Adam(
            make_schedule(rate, training.schedule, total_steps),
            beta_1=training.beta_1,
            beta_2=training.beta_2,
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
    model, losses, training = config.model, config.losses, config.training
    if model.input_shape is None or model.output_shape is None:
        raise ValueError(
            "model.input_shape and model.output_shape must be set to build a model "
            f"(kerastrans fit fills them from the dataset), got {model.input_shape} and "
            f"{model.output_shape}"
        )
    shared = {
        "adversarial": losses.adversarial_loss,
        "adversarial_weight": losses.adversarial,
        "gradient_penalty_weight": losses.gradient_penalty,
        "label_jitter": losses.label_jitter,
        "warmup_steps": training.warmup_steps,
        "d_update_every": training.d_update_every,
        "perceptual_weight": losses.perceptual,
        "perceptual": _perceptual(config),
        "latent_weight": losses.latent,
        "tv_weight": losses.tv,
        "pool_size": model.pool_size,
        "seed": model.seed,
        "dtype": resolve_precision(model.precision),
    }
    paired = {
        "l1_weight": losses.l1,
        "l2_weight": losses.l2,
        "focal_weight": losses.focal,
        "focal_gamma": losses.focal_gamma,
        "dice_weight": losses.dice,
        "class_weights": losses.class_weights,
    }
    generator = generator_options(model.generator)
    discriminator = discriminator_options(model.discriminator)
    network = _construct(config, generator, discriminator, shared, paired)
    if total_steps is None:
        total_steps = training.epochs * (training.steps_per_epoch or 1)
    g_optimizer, d_optimizer = make_optimizers(config, total_steps)
    network.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer)
    return network


def _construct(config: Config, generator: dict, discriminator: dict, shared: dict, paired: dict):
    """The model of ``config.model.kind`` from the prepared keyword arguments."""
    from kerastrans.models import Automap, CycleGAN, Pix2Pix

    model, losses = config.model, config.losses
    if model.kind == "pix2pix":
        network = Pix2Pix(
            model.input_shape,
            model.output_shape[2],
            generator,
            discriminator,
            conditional=model.conditional,
            **paired,
            **shared,
        )
    elif model.kind in RECONSTRUCTION_KINDS:
        network = _reconstruction(config, generator, discriminator, shared, paired)
    elif model.kind == "automap":
        network = Automap(
            model.input_shape,
            model.output_shape,
            model.fc_layers,
            fc_activation=model.fc_activation,
            refinement=generator,
            memory_limit=model.memory_limit,
            fbp_init=_fbp_init(config),
            discriminator=discriminator,
            **paired,
            **shared,
        )
    else:
        network = CycleGAN(
            model.input_shape,
            model.output_shape[2],
            generator,
            discriminator,
            shared_encoder=model.shared_encoder,
            cycle_weight=losses.cycle,
            identity_weight=losses.identity,
            latent_adversarial_weight=losses.latent_adversarial,
            air_weight=losses.air,
            air_threshold=losses.air_threshold,
            gradient_weight=losses.gradient,
            window_a=config.data.windows()[0],
            window_b=config.data.windows()[1],
            **shared,
        )
    return network


def _reconstruction(config: Config, generator: dict, discriminator: dict, shared, paired):
    """The lpd, lgd or fbp-unet model of ``config`` (geometry from ``model.geometry``)."""
    from kerastrans.models import FBPUNetModel, LearnedGradientDescent, LearnedPrimalDual

    model = config.model
    if model.geometry is None:
        raise ValueError(
            f"model.geometry must be set for {model.kind} (kerastrans fit reads it from the "
            "dataset's metadata), got None"
        )
    if model.kind == "fbp-unet":
        network = {"unet": generator, "filter_type": model.fbp_filter}
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
        **paired,
        **shared,
    )


def _fbp_init(config: Config) -> dict[str, Any] | None:
    """AUTOMAP's ``fbp_init`` option from the config (geometry, windows, filter)."""
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
    }


def _perceptual(config: Config) -> dict[str, Any] | None:
    losses = config.losses
    if not losses.perceptual:
        return None
    options = {"weights_path": losses.perceptual_weights, "network": losses.perceptual_network}
    if losses.perceptual_layer is not None:
        options["layer"] = losses.perceptual_layer
    return options
