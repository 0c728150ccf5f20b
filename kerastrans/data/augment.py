"""Paired-consistent random augmentation, as pure stateless TensorFlow ops.

`augment` draws one set of random parameters (flips, rotation, zoom, shift,
crop position) from a per-example seed and applies it to every image it is
given, so the input and target of a pair stay aligned; Gaussian noise is added
to the first image (the input) only. With the same seed the result is the same
on every run and in every order of execution.

Images may differ in size (super-resolution: the target is ``r`` times the
input; any ratio works). Transforms are then applied to corresponding regions:
flips mirror whole images; rotation, zoom and shift act about each image's
centre with the shift given as a fraction of each image's size; a crop of
``size`` input pixels at ``(y, x)`` takes the target region at
``(round(y * r), round(x * r))`` of ``round(size * r)`` pixels, which is exact
for integer ratios. For pairs without a common geometry (sinogram -> image),
leave geometric augmentation off.

Images are expected in the window's [-1, 1] scale: pixels brought in from
outside the image by rotation/zoom/shift/crop padding are -1 (the window's low
end, air for a CT window) with ``fill_mode="constant"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from kerastrans.config import AugmentConfig

__all__ = ["FILL_VALUE", "affine_transform", "augment", "random_crop"]

#: Value of pixels brought in from outside an image (the window's low end).
FILL_VALUE = -1.0


def augment(
    images: Sequence[tf.Tensor],
    seed: tf.Tensor,
    config: AugmentConfig,
    *,
    crop: tuple[int, int] | None = None,
    noise_std: float = 0.0,
) -> tuple[tf.Tensor, ...]:
    """Apply one random transform to all ``images`` (``H x W x C`` each, [-1, 1] scale).

    Order: flips, then rotation/zoom/shift (one resampling), then the random
    crop (on the transformed image, so no corner is empty when the crop is
    smaller than the image), then noise on ``images[0]``.

    Args:
        images: The images of one example: ``(input, target)``, or one image.
        seed: int32/int64 tensor of shape ``[2]``, the example's stateless seed.
        config: Which transforms, and their ranges.
        crop: ``(height, width)`` of a random crop in pixels of ``images[0]``;
            `None` keeps the whole image.
        noise_std: Standard deviation of the Gaussian noise added to
            ``images[0]``, in the [-1, 1] scale (see `kerastrans.data.window.noise_scale`);
            the result is clipped to [-1, 1].

    Returns:
        The transformed images, in the order given.
    """
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, num=5))
    images = [tf.convert_to_tensor(image, tf.float32) for image in images]
    for enabled, axis, flip_seed in (
        (config.flip_left_right, 1, seeds[0]),
        (config.flip_up_down, 0, seeds[1]),
    ):
        if enabled:
            flip = tf.random.stateless_uniform([], flip_seed) < 0.5
            images = [_flip(image, flip, axis) for image in images]
    if config.affine:
        angle, zoom, shift = _affine_parameters(config, seeds[2])
        images = [
            affine_transform(
                image,
                angle,
                zoom,
                shift,
                interpolation=config.interpolation,
                fill_mode=config.fill_mode,
            )
            for image in images
        ]
    if crop is not None:
        images = random_crop(images, seeds[3], crop)
    if noise_std > 0:
        noise = tf.random.stateless_normal(tf.shape(images[0]), seeds[4], stddev=noise_std)
        images[0] = tf.clip_by_value(images[0] + noise, -1.0, 1.0)
    return tuple(images)


def affine_transform(
    image: tf.Tensor,
    angle: tf.Tensor,
    zoom: tf.Tensor,
    shift: tf.Tensor,
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
) -> tf.Tensor:
    """Rotate by ``angle`` (radians) and zoom by ``zoom`` about the centre, then shift.

    Args:
        image: ``H x W x C`` float32 image.
        angle: Rotation in radians (scalar).
        zoom: Magnification (scalar, > 0); 2 shows the central half enlarged.
        shift: ``[dy, dx]`` shift of the content as fractions of ``H`` and ``W``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        fill_mode: ``"constant"`` (`FILL_VALUE`), ``"nearest"``, ``"reflect"``
            or ``"wrap"``.

    Returns:
        The transformed ``H x W x C`` image.
    """
    size = tf.cast(tf.shape(image)[:2], tf.float32)
    centre = (size - 1.0) / 2.0  # (cy, cx)
    origin = centre + tf.cast(shift, tf.float32) * size
    cos = tf.cos(angle) / zoom
    sin = tf.sin(angle) / zoom
    # Output pixel (x, y) samples the input at A (p - origin) + centre, A = R(angle) / zoom.
    a0, a1, a3, a4 = cos, -sin, sin, cos
    a2 = centre[1] - a0 * origin[1] - a1 * origin[0]
    a5 = centre[0] - a3 * origin[1] - a4 * origin[0]
    transform = tf.stack([a0, a1, a2, a3, a4, a5, 0.0, 0.0])[tf.newaxis]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=tf.constant(FILL_VALUE, tf.float32),
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper(),
    )[0]


def random_crop(
    images: Sequence[tf.Tensor], seed: tf.Tensor, size: tuple[int, int]
) -> list[tf.Tensor]:
    """Crop corresponding regions of ``images``: ``size`` pixels of ``images[0]``.

    An image smaller than ``size`` is first padded (bottom/right, with
    `FILL_VALUE`); the other images are padded by the same amount scaled by
    their size ratio to ``images[0]``.

    Args:
        images: ``H x W x C`` images; ``images[0]`` is the reference.
        seed: Stateless seed, shape ``[2]``.
        size: ``(height, width)`` of the crop in pixels of ``images[0]``.

    Returns:
        The crops; the first has static shape ``size``.
    """
    reference = tf.shape(images[0])[:2]
    crop = tf.constant(size, tf.int32)
    padded = tf.maximum(reference, crop)
    ratios = [
        tf.cast(tf.shape(image)[:2], tf.float32) / tf.cast(reference, tf.float32)
        for image in images
    ]
    images = [
        _pad_bottom_right(image, _scaled(padded, ratio))
        for image, ratio in zip(images, ratios, strict=True)
    ]
    offset = tf.random.stateless_uniform(
        [2], seed, minval=0, maxval=tf.int32.max, dtype=tf.int32
    ) % (padded - crop + 1)
    crops = []
    for image, ratio in zip(images, ratios, strict=True):
        start, extent = _scaled(offset, ratio), _scaled(crop, ratio)
        crops.append(tf.slice(image, tf.concat([start, [0]], 0), tf.concat([extent, [-1]], 0)))
    crops[0] = tf.ensure_shape(crops[0], [*size, images[0].shape[-1]])
    return crops


def _affine_parameters(
    config: AugmentConfig, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Draw (angle in radians, zoom, [dy, dx] shift) from ``seed``."""
    uniform = tf.random.stateless_uniform([4], seed, minval=-1.0, maxval=1.0)
    angle = uniform[0] * math.radians(config.rotation)
    zoom = 1.0 + uniform[1] * config.scale
    shift = uniform[2:] * config.translation
    return angle, zoom, shift


def _flip(image: tf.Tensor, flip: tf.Tensor, axis: int) -> tf.Tensor:
    return tf.cond(flip, lambda: tf.reverse(image, [axis]), lambda: image)


def _scaled(pixels: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    """``round(pixels * ratio)`` as int32 (corresponding pixel counts/positions)."""
    return tf.cast(tf.round(tf.cast(pixels, tf.float32) * ratio), tf.int32)


def _pad_bottom_right(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Pad ``image`` at the bottom/right with `FILL_VALUE` to at least ``size`` pixels."""
    extra = tf.maximum(size - tf.shape(image)[:2], 0)
    paddings = tf.stack([[0, extra[0]], [0, extra[1]], [0, 0]])
    return tf.pad(image, paddings, constant_values=FILL_VALUE)
