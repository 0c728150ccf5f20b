"""Config of the losses: their weights and options, and the model argument each feeds."""

from __future__ import annotations

import dataclasses
from typing import Literal

from kerastrans.config._convert import _check, _coerce_fields
from kerastrans.config.model import RECONSTRUCTION_KINDS

__all__ = ["LOSS_ARGUMENTS", "WEIGHTS", "LossesConfig"]

#: Kinds trained on pairs, with pixel losses against the target.
_PAIRED = ("pix2pix", "automap", *RECONSTRUCTION_KINDS)
#: Kinds whose targets may be class probabilities (focal and dice losses).
_CLASSES = ("pix2pix", "automap")

#: One name per setting: the model argument each field of `LossesConfig` feeds, and the
#: model kinds that take it (`None`: every kind). `kerastrans.training.build` passes the
#: fields through this table (the three ``perceptual_*`` fields make up one ``perceptual``
#: dict); a non-zero weight (an argument ``*_weight``) for a kind that does not take it is
#: refused. A new loss is its function, its term in the model, its field and its row here.
LOSS_ARGUMENTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "adversarial_loss": ("adversarial", None),
    "adversarial": ("adversarial_weight", None),
    "l1": ("l1_weight", _PAIRED),
    "l2": ("l2_weight", _PAIRED),
    "focal": ("focal_weight", _CLASSES),
    "dice": ("dice_weight", _CLASSES),
    "tv": ("tv_weight", None),
    "perceptual": ("perceptual_weight", None),
    "latent": ("latent_weight", None),
    "cycle": ("cycle_weight", ("cyclegan",)),
    "identity": ("identity_weight", ("cyclegan",)),
    "air": ("air_weight", ("cyclegan",)),
    "gradient": ("gradient_weight", ("cyclegan",)),
    "latent_adversarial": ("latent_adversarial_weight", ("cyclegan",)),
    "gradient_penalty": ("gradient_penalty_weight", None),
    "focal_gamma": ("focal_gamma", _PAIRED),
    "class_weights": ("class_weights", _PAIRED),
    "air_threshold": ("air_threshold", ("cyclegan",)),
    "label_jitter": ("label_jitter", None),
    "perceptual_weights": ("perceptual", None),
    "perceptual_layer": ("perceptual", None),
    "perceptual_network": ("perceptual", None),
}

#: The loss weights of `LossesConfig` (the fields that feed a ``*_weight`` argument).
WEIGHTS = tuple(
    name for name, (argument, _) in LOSS_ARGUMENTS.items() if argument.endswith("_weight")
)


@dataclasses.dataclass(frozen=True)
class LossesConfig:
    """Loss weights (0 = off) and the options of the losses.

    Weights are named after their loss: ``l1``, ``l2``, ``focal``, ``dice``
    (pix2pix, AUTOMAP); ``cycle``, ``identity``, ``air``, ``gradient``,
    ``latent_adversarial`` (CycleGAN); ``adversarial``, ``gradient_penalty``
    (WGAN-GP), ``tv``, ``perceptual``, ``latent`` (all). Missing keys take the
    model's defaults (`MODEL_PRESETS`: pix2pix L1 100 + vanilla GAN 1,
    CycleGAN cycle 10 + identity 5 + LSGAN 1, AUTOMAP L2 1).

    Args:
        adversarial_loss: ``"vanilla"``, ``"lsgan"``, ``"hinge"`` or ``"wgan-gp"``.
        focal_gamma: Focusing exponent of the focal loss.
        class_weights: Per-channel weights of the pixel losses (segmentation).
        air_threshold: Air threshold of the air loss, in the input's physical
            units (HU), e.g. -900.
        label_jitter: Standard deviation of noise on the discriminator's labels.
        perceptual_weights: Local weights file of the perceptual network
            (needed when ``perceptual > 0``; nothing is downloaded).
        perceptual_layer: Feature layer (`None`: the network's default).
        perceptual_network: ``"vgg16"`` or ``"vgg19"``.
    """

    adversarial_loss: Literal["vanilla", "lsgan", "hinge", "wgan-gp"] = "vanilla"
    adversarial: float = 1.0
    l1: float = 100.0
    l2: float = 0.0
    focal: float = 0.0
    dice: float = 0.0
    tv: float = 0.0
    perceptual: float = 0.0
    latent: float = 0.0
    cycle: float = 0.0
    identity: float = 0.0
    air: float = 0.0
    gradient: float = 0.0
    latent_adversarial: float = 0.0
    gradient_penalty: float = 10.0
    focal_gamma: float = 2.0
    class_weights: tuple[float, ...] | None = None
    air_threshold: float | None = None
    label_jitter: float = 0.0
    perceptual_weights: str | None = None
    perceptual_layer: str | None = None
    perceptual_network: Literal["vgg16", "vgg19"] = "vgg16"

    def __post_init__(self) -> None:
        _coerce_fields(self)
        for name in (*WEIGHTS, "label_jitter", "focal_gamma"):
            value = getattr(self, name)
            _check(value >= 0, f"losses.{name} must be >= 0, got {value}")
        _check(
            not self.air or self.air_threshold is not None,
            f"losses.air > 0 needs losses.air_threshold (physical units, e.g. -900 HU), "
            f"got air={self.air}",
        )
        _check(
            not self.perceptual or self.perceptual_weights is not None,
            "losses.perceptual > 0 needs losses.perceptual_weights (a local weights file), "
            f"got perceptual={self.perceptual}",
        )

    def check_model(self, kind: str) -> None:
        """Raise `ValueError` for a non-zero weight of a loss that ``kind`` does not compute."""
        for name in WEIGHTS:
            kinds, value = LOSS_ARGUMENTS[name][1], getattr(self, name)
            if kinds is None:
                continue
            _check(
                not value or kind in kinds,
                f"losses.{name} applies to {' and '.join(kinds)}, got {name}={value} for "
                f"model {kind}",
            )
