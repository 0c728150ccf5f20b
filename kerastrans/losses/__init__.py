"""Losses of the translation models, computed in float32 on batches.

Pixel losses (`kerastrans.losses.pixel`): L1, L2, focal cross-entropy, Dice,
total variation, gradient, air-region preservation, latent-code
regularisation. Adversarial losses (`kerastrans.losses.adversarial`): vanilla,
LSGAN, hinge, WGAN-GP with its gradient penalty. Perceptual loss
(`kerastrans.losses.perceptual`): VGG features from a local weights file.
Cycle and identity losses are L1 losses between an image and its round trip.
"""

from kerastrans.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    check_adversarial,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
)
from kerastrans.losses.perceptual import PERCEPTUAL_NETWORKS, PerceptualLoss
from kerastrans.losses.pixel import (
    air_loss,
    dice_loss,
    focal_loss,
    gradient_loss,
    hu_to_unit,
    l1_loss,
    l2_loss,
    latent_loss,
    total_variation,
    window_rescale,
)

__all__ = [
    "ADVERSARIAL_LOSSES",
    "PERCEPTUAL_NETWORKS",
    "PerceptualLoss",
    "air_loss",
    "check_adversarial",
    "dice_loss",
    "discriminator_adversarial_loss",
    "focal_loss",
    "generator_adversarial_loss",
    "gradient_loss",
    "gradient_penalty",
    "hu_to_unit",
    "l1_loss",
    "l2_loss",
    "latent_loss",
    "total_variation",
    "window_rescale",
]
