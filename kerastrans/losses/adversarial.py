"""Adversarial losses: vanilla GAN, LSGAN, hinge and WGAN-GP.

Discriminators return logits (one per patch for a PatchGAN); each loss is the
mean over patches and images, in float32.

- ``"vanilla"``: cross-entropy on logits, with the non-saturating generator
  loss (Goodfellow et al. 2014).
- ``"lsgan"``: least squares towards the labels 1 (real) and 0 (fake)
  (Mao et al. 2017), CycleGAN's default.
- ``"hinge"``: ``relu(1 - real) + relu(1 + fake)`` (Lim & Ye 2017, SAGAN).
- ``"wgan-gp"``: Wasserstein critic ``fake - real`` plus the gradient penalty
  `gradient_penalty`, which the models add with its own weight
  (Gulrajani et al. 2017).

The discriminator loss is the average of its real and fake terms (the
factor 1/2 of Isola et al. 2017), so its size does not depend on the kind.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
from keras import ops

__all__ = [
    "ADVERSARIAL_LOSSES",
    "check_adversarial",
    "discriminator_adversarial_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
]

ADVERSARIAL_LOSSES = ("vanilla", "lsgan", "hinge", "wgan-gp")


def check_adversarial(kind: str) -> str:
    """Return ``kind`` if it is one of `ADVERSARIAL_LOSSES`, else raise ValueError."""
    if kind not in ADVERSARIAL_LOSSES:
        raise ValueError(f"adversarial must be one of {ADVERSARIAL_LOSSES}, got {kind!r}")
    return kind


def _cross_entropy(logits, label):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``label``, per element."""
    return label * ops.softplus(-logits) + (1.0 - label) * ops.softplus(logits)


def generator_adversarial_loss(fake_logits, kind: str):
    """Loss of the generator: make the discriminator call its output real.

    Args:
        fake_logits: Discriminator logits of generated images.
        kind: One of `ADVERSARIAL_LOSSES`.

    Returns:
        Scalar float32 loss.
    """
    fake = ops.cast(fake_logits, "float32")
    check_adversarial(kind)
    if kind == "vanilla":
        return ops.mean(ops.softplus(-fake))
    if kind == "lsgan":
        return ops.mean(ops.square(fake - 1.0))
    return -ops.mean(fake)


def discriminator_adversarial_loss(
    real_logits, fake_logits, kind: str, real_label=1.0, fake_label=0.0
):
    """Loss of the discriminator: real images real, generated images fake.

    Args:
        real_logits: Logits of real images (or pairs).
        fake_logits: Logits of generated images.
        kind: One of `ADVERSARIAL_LOSSES`. For ``"wgan-gp"`` the gradient
            penalty is not included (see `gradient_penalty`).
        real_label: Target of real logits for ``"vanilla"`` / ``"lsgan"``; a
            tensor broadcastable to the logits allows per-image label jitter.
        fake_label: Target of fake logits, likewise.

    Returns:
        Scalar float32 loss.
    """
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    check_adversarial(kind)
    if kind == "vanilla":
        terms = _cross_entropy(real, real_label), _cross_entropy(fake, fake_label)
    elif kind == "lsgan":
        terms = ops.square(real - real_label), ops.square(fake - fake_label)
    elif kind == "hinge":
        terms = ops.relu(1.0 - real), ops.relu(1.0 + fake)
    else:
        terms = -real, fake
    return 0.5 * (ops.mean(terms[0]) + ops.mean(terms[1]))


def gradient_penalty(critic: Callable, real, fake, alpha):
    """WGAN-GP penalty ``mean_b (||grad_x D(x_b)||_2 - 1)**2`` on interpolates.

    ``x = real + alpha * (fake - real)`` with one ``alpha`` per image;
    ``D(x_b)`` is the mean of the critic's patch outputs for image ``b``. The
    gradient is taken with its own tape, so an outer tape can differentiate
    the penalty with respect to the critic's weights (double back-propagation).

    Args:
        critic: The discriminator, called with ``training=True``.
        real: Real images (or pairs).
        fake: Generated images, same shape.
        alpha: Interpolation weights, shape ``(batch, 1, 1, 1)`` in [0, 1].

    Returns:
        Scalar float32 penalty (multiply by its weight, 10 in the paper).
    """
    real, fake, alpha = (ops.cast(t, "float32") for t in (real, fake, alpha))
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        scores = ops.cast(critic(interpolated, training=True), "float32")
        score = ops.sum(ops.mean(scores, axis=tuple(range(1, len(scores.shape)))))
    gradients = tape.gradient(score, interpolated)
    axes = tuple(range(1, len(gradients.shape)))
    norm = ops.sqrt(ops.sum(ops.square(gradients), axis=axes) + 1e-12)
    return ops.mean(ops.square(norm - 1.0))
