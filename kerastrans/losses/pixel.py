"""Pixel-wise losses on images in [-1, 1] (or class probabilities).

Every function takes batches ``(batch, height, width, channels)``, computes in
float32 whatever the input dtype, and returns the scalar mean over the batch,
so that a train step can scale it to the global batch (see
`kerastrans.models`). ``class_weights`` weight the channels (classes of a
one-hot target, or the channels of a multi-channel image).
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from kerastrans.config import Window

__all__ = [
    "air_loss",
    "dice_loss",
    "focal_loss",
    "gradient_loss",
    "hu_to_unit",
    "l1_loss",
    "l2_loss",
    "latent_loss",
    "total_variation",
    "window_rescale",
]

_SOBEL = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))


def _float32(*tensors):
    return [ops.cast(tensor, "float32") for tensor in tensors]


def _weighted_mean(values, class_weights: Sequence[float] | None):
    if class_weights is None:
        return ops.mean(values)
    weights = ops.convert_to_tensor(class_weights, "float32")
    if weights.shape[0] != values.shape[-1]:
        raise ValueError(
            f"class_weights needs one weight per channel ({values.shape[-1]}), "
            f"got {len(class_weights)}"
        )
    return ops.mean(values * weights)


def l1_loss(y_true, y_pred, class_weights: Sequence[float] | None = None):
    """Mean absolute error, optionally weighted per channel."""
    y_true, y_pred = _float32(y_true, y_pred)
    return _weighted_mean(ops.abs(y_pred - y_true), class_weights)


def l2_loss(y_true, y_pred, class_weights: Sequence[float] | None = None):
    """Mean squared error, optionally weighted per channel."""
    y_true, y_pred = _float32(y_true, y_pred)
    return _weighted_mean(ops.square(y_pred - y_true), class_weights)


def focal_loss(
    y_true,
    y_pred,
    gamma: float = 2.0,
    class_weights: Sequence[float] | None = None,
    epsilon: float = 1e-7,
):
    """Softmax focal cross-entropy for one-hot targets (Lin et al. 2017, ICCV).

    ``-sum_c w_c t_c (1 - p_c)**gamma log p_c`` per pixel, averaged over the
    pixels; ``gamma = 0`` is the weighted cross-entropy.

    Args:
        y_true: One-hot (or soft) targets.
        y_pred: Class probabilities (softmax output of the generator).
        gamma: Focusing exponent, default 2.
        class_weights: Weight of each class.
        epsilon: Probabilities are clipped to [epsilon, 1 - epsilon].
    """
    y_true, y_pred = _float32(y_true, y_pred)
    p = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    per_class = -y_true * ops.log(p) * ops.power(1.0 - p, gamma)
    return _weighted_mean(per_class, class_weights) * y_pred.shape[-1]


def dice_loss(y_true, y_pred, class_weights: Sequence[float] | None = None, epsilon: float = 1e-7):
    """One minus the class-weighted soft Dice coefficient (Milletari et al. 2016).

    Dice of class c in image b: ``2 sum(p t) / (sum(p**2) + sum(t**2))`` over
    the pixels; the loss is averaged over the images, so it does not depend
    on how a batch is split across replicas.
    """
    y_true, y_pred = _float32(y_true, y_pred)
    overlap = ops.sum(y_true * y_pred, axis=(1, 2))
    total = ops.sum(ops.square(y_true) + ops.square(y_pred), axis=(1, 2))
    dice = (2.0 * overlap + epsilon) / (total + epsilon)
    if class_weights is None:
        return 1.0 - ops.mean(dice)
    weights = ops.convert_to_tensor(class_weights, "float32")
    return 1.0 - ops.mean(ops.sum(dice * weights, axis=-1) / ops.sum(weights))


def _differences(x):
    """Forward differences along height and width."""
    return x[:, 1:, :, :] - x[:, :-1, :, :], x[:, :, 1:, :] - x[:, :, :-1, :]


def total_variation(x, method: str = "anisotropic", tau: float = 1e-3):
    """Mean total variation of images.

    Args:
        x: Images.
        method: ``"anisotropic"``: ``mean|dx| + mean|dy|``; ``"isotropic"``:
            ``mean sqrt(dx**2 + dy**2 + tau**2)`` (smooth at 0).
        tau: Smoothing of the isotropic form.
    """
    (x,) = _float32(x)
    dx, dy = _differences(x)
    if method == "anisotropic":
        return ops.mean(ops.abs(dx)) + ops.mean(ops.abs(dy))
    if method == "isotropic":
        dx, dy = dx[:, :, :-1, :], dy[:, :-1, :, :]
        return ops.mean(ops.sqrt(ops.square(dx) + ops.square(dy) + tau**2))
    raise ValueError(f"method must be 'anisotropic' or 'isotropic', got {method!r}")


def _sobel(x):
    kernel = ops.convert_to_tensor(_SOBEL, "float32")[:, :, None, None]
    kernel = ops.tile(kernel, (1, 1, x.shape[-1], 1))
    along_width = ops.depthwise_conv(x, kernel, padding="valid")
    along_height = ops.depthwise_conv(x, ops.transpose(kernel, (1, 0, 2, 3)), padding="valid")
    return along_height, along_width


def gradient_loss(x, y, method: str = "diff", norm: str = "l1"):
    """Distance between the image gradients of ``x`` and ``y``.

    Keeps edges in place while intensities change (CycleGAN modality
    conversion). ``method`` is ``"diff"`` (forward differences) or
    ``"sobel"``; ``norm`` is ``"l1"`` or ``"l2"``.
    """
    x, y = _float32(x, y)
    if method not in ("diff", "sobel"):
        raise ValueError(f"method must be 'diff' or 'sobel', got {method!r}")
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    gradients = _differences if method == "diff" else _sobel
    distance = ops.abs if norm == "l1" else ops.square
    return sum(
        ops.mean(distance(gx - gy)) for gx, gy in zip(gradients(x), gradients(y), strict=True)
    )


def hu_to_unit(hu: float, window: Window) -> float:
    """Map a value in physical units (HU) into [-1, 1] the way the window does.

    The data pipeline maps ``window.low -> -1`` and ``window.high -> +1``
    linearly (`kerastrans.data.window`).

    >>> hu_to_unit(-1000.0, Window.from_bounds(-1000.0, 1000.0))
    -1.0
    """
    low, high = window.low, window.high
    return 2.0 * (float(hu) - low) / (high - low) - 1.0


def window_rescale(x, from_window: Window, to_window: Window):
    """Re-express images windowed with ``from_window`` in the units of ``to_window``.

    The map is linear, so values outside [-1, 1] stay meaningful.
    """
    low, high = hu_to_unit(from_window.low, to_window), hu_to_unit(from_window.high, to_window)
    scale = (high - low) / 2
    offset = low + scale
    if scale == 1.0 and offset == 0.0:
        return x
    return ops.cast(x, "float32") * scale + offset


def air_loss(source, translated, threshold: float):
    """L1 distance on the pixels where only one of the two images is air.

    Pixels at or below ``threshold`` (in the images' [-1, 1] units, see
    `hu_to_unit`) are air; where the source is air and the translation is not,
    or the reverse, the translation is pulled towards the source, so the body
    outline and the air around it are preserved.
    """
    source, translated = _float32(source, translated)
    mismatch = ops.cast(ops.logical_xor(source <= threshold, translated <= threshold), "float32")
    return ops.mean(mismatch * ops.abs(source - translated))


def latent_loss(z, norm: str = "l2"):
    """Regularisation of a latent code: ``mean(z**2)`` (``"l2"``) or ``mean|z|`` (``"l1"``)."""
    (z,) = _float32(z)
    if norm == "l2":
        return ops.mean(ops.square(z))
    if norm == "l1":
        return ops.mean(ops.abs(z))
    raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
