"""`Translator`: a generator between physical units, with windowing and padding inside.

A trained generator maps images windowed to [-1, 1] onto images in [-1, 1].
Users have images in physical units (HU for CT) of any size, so a `Translator`
wraps the generator with everything that turns one into the other, as
TensorFlow ops in one graph:

1. window the input to [-1, 1] (`kerastrans.data.window.window`, clipped);
2. pad height and width at the bottom/right to the network's size multiple
   with -1, the window's low end (`kerastrans.data.padding.pad_to_multiple`);
3. run the generator in inference mode (dropout off, normalisation statistics
   frozen) and cast its output to float32 (mixed-precision networks compute
   in 16 bits);
4. crop the padding away and map [-1, 1] back to physical units
   (`kerastrans.data.window.unwindow`).

The same graph is what `kerastrans.export` saves for TF Serving, so a
SavedModel and the `Translator` it came from give the same numbers.

>>> import keras
>>> from kerastrans.config import Window
>>> identity = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
>>> translator = Translator(identity, Window(-1000, 2000), Window(-1000, 2000))
>>> translator(np.array([[[[-2000.0], [40.0]]]], np.float32)).numpy().round(2).ravel().tolist()
[-1000.0, 40.0]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import keras
import numpy as np
import tensorflow as tf

from kerastrans.config import Window
from kerastrans.data.padding import crop_to_size, pad_to_multiple
from kerastrans.data.window import unwindow, window

__all__ = [
    "DIRECTIONS",
    "ImageTranslator",
    "Translator",
    "check_images",
    "shape_mismatch",
    "translate_in_batches",
]

#: Directions of a run: A -> B (every model) and B -> A (CycleGAN only).
DIRECTIONS = ("AtoB", "BtoA")

K = TypeVar("K")


class ImageTranslator(Protocol):
    """What `convert` and `evaluate` need from a model: physical units in and out.

    Implemented by `Translator` (a Keras generator in this process) and by
    `kerastrans.export.ExportedTranslator` (a SavedModel).
    """

    input_window: Window | None
    output_window: Window | None

    @property
    def input_shape(self) -> tuple[int | None, int | None, int]:
        """``(height, width, channels)`` of the inputs; `None` for any size."""

    def __call__(self, images: Any) -> tf.Tensor:
        """Translate ``N x H x W x C`` float32 images in physical units."""


@dataclasses.dataclass(frozen=True)
class Translator:
    """A generator plus the windows that map physical units to its [-1, 1] domain and back.

    Args:
        generator: Maps windowed input in [-1, 1] (``N x H x W x C``) to
            windowed output in [-1, 1]. Fully convolutional generators keep
            the image size (or scale it by an integer factor); generators with
            a fixed input shape (AUTOMAP's fully connected layers) declare it
            in their input shape.
        input_window: `Window` of the input domain (e.g. HU of low-dose CT).
        output_window: `Window` of the output domain.
        size_multiple: Height and width must be multiples of this (``2 **``
            down-sampling steps); other sizes are padded, then cropped back.
            `None` for a generator with a fixed input shape, which takes
            exactly that shape.
        neighbours: 2.5D: the generator was trained (``data.neighbours``) on
            each slice stacked with this many neighbours on each side, so it
            takes ``2 * neighbours + 1`` slices as channels; `convert` and
            `evaluate` stack them per series. Default 0.

    Raises:
        ValueError: If ``size_multiple`` is not `None` or >= 1, or does not
            suit the generator's input shape.
    """

    generator: keras.Model
    input_window: Window
    output_window: Window
    size_multiple: int | None = 1
    neighbours: int = 0

    def __post_init__(self) -> None:
        height, width, channels = self.input_shape
        if isinstance(self.neighbours, bool) or not (
            isinstance(self.neighbours, int) and self.neighbours >= 0
        ):
            raise ValueError(f"neighbours must be an int >= 0, got {self.neighbours!r}")
        if channels % (2 * self.neighbours + 1):
            raise ValueError(
                f"neighbours={self.neighbours} needs input channels divisible by "
                f"{2 * self.neighbours + 1}, got {channels}"
            )
        fixed = height is not None or width is not None
        if self.size_multiple is None:
            if height is None or width is None:
                raise ValueError(
                    "size_multiple=None means a fixed input shape, but the generator takes "
                    f"any size: input shape {self.input_shape}"
                )
        elif isinstance(self.size_multiple, bool) or not (
            isinstance(self.size_multiple, int) and self.size_multiple >= 1
        ):
            raise ValueError(
                f"size_multiple must be an int >= 1 or None, got {self.size_multiple!r}"
            )
        elif fixed:
            raise ValueError(
                f"the generator takes a fixed input shape {self.input_shape}: "
                f"use size_multiple=None, got size_multiple={self.size_multiple}"
            )

    @classmethod
    def from_generator(
        cls,
        generator: keras.Model,
        input_window: Window,
        output_window: Window,
        neighbours: int = 0,
    ) -> Translator:
        """Build a `Translator`, reading the size multiple from the generator.

        A `kerastrans.nets.Generator` states its ``size_multiple``; a generator
        whose input shape fixes height and width (AUTOMAP) gets `None`; any
        other generator 1. ``neighbours`` is the run's ``data.neighbours``.
        """
        height, width = generator.input_shape[1:3]
        if height is not None or width is not None:
            multiple = None
        else:
            multiple = int(getattr(generator, "size_multiple", 1))
        return cls(generator, input_window, output_window, multiple, neighbours)

    @property
    def input_shape(self) -> tuple[int | None, int | None, int]:
        """``(height, width, channels)`` the generator takes; `None` for any size."""
        return _spatial_shape(self.generator.input_shape, "generator input")

    @property
    def output_channels(self) -> int:
        """Channels of the translated images."""
        return int(self.generator.output_shape[-1])

    def __call__(self, images: Any) -> tf.Tensor:
        """Translate a batch of images in physical units.

        Args:
            images: ``N x H x W x C`` array or tensor in the input's physical
                units (cast to float32). ``H x W`` need not be a multiple of
                `size_multiple`.

        Returns:
            float32 ``N x H' x W' x C'`` tensor in the output's physical units
            (``H' x W' = H x W`` for fully convolutional generators).

        Raises:
            ValueError: If the rank, channels or (fixed-shape generators) the
                size do not fit the generator; the message gives both shapes.
        """
        images = check_images(images, self.input_shape)
        return self._compiled(tuple(images.shape[1:]))(images)

    def translate_graph(self, images: tf.Tensor) -> tf.Tensor:
        """The translation as TensorFlow ops, for tracing inside a `tf.function`.

        Args:
            images: float32 ``N x H x W x C`` tensor in physical units; height
                and width may be unknown when traced.

        Returns:
            float32 tensor in the output's physical units.
        """
        windowed = window(images, self.input_window)
        if self.size_multiple is None:
            return unwindow(self._generate(windowed), self.output_window)
        padded, size = pad_to_multiple(windowed, self.size_multiple)
        if None not in windowed.shape[1:3]:  # keep static sizes static for the generator
            multiple = self.size_multiple
            padded_size = [-(-n // multiple) * multiple for n in windowed.shape[1:3]]
            padded = tf.ensure_shape(padded, [None, *padded_size, windowed.shape[3]])
        output = self._generate(padded)
        # Integer scale factors (super-resolution) scale the crop too.
        scaled = size * tf.shape(output)[1:3] // tf.shape(padded)[1:3]
        return unwindow(crop_to_size(output, scaled), self.output_window)

    def _generate(self, windowed: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.generator(windowed, training=False), tf.float32)

    @functools.cached_property
    def _compiled(self) -> Callable[[tuple[int, ...]], Callable[[tf.Tensor], tf.Tensor]]:
        """One graph per image size ``(H, W, C)``, any batch size.

        Sizes stay static inside each graph (Keras 3.15's bilinear UpSampling2D
        cannot run on unknown sizes in a graph); the batch size is left open,
        so a shorter last batch does not trace again.
        """

        @functools.cache
        def compiled(size: tuple[int, ...]) -> Callable[[tf.Tensor], tf.Tensor]:
            signature = [tf.TensorSpec([None, *size], tf.float32)]
            return tf.function(self.translate_graph, input_signature=signature, autograph=False)

        return compiled


def check_images(images: Any, input_shape: Sequence[int | None]) -> tf.Tensor:
    """Return ``images`` as a float32 tensor after checking it fits ``input_shape``.

    Args:
        images: ``N x H x W x C`` array or tensor.
        input_shape: ``(height, width, channels)``; `None` for any height/width.

    Returns:
        The images as a float32 `tf.Tensor`.

    Raises:
        ValueError: If the rank, the channels or a fixed height/width differ;
            the message gives the expected and the received shape.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        images = tf.cast(images, tf.float32)
    shape = tuple(images.shape)
    if len(shape) != 4 or shape_mismatch(shape[1:], input_shape):
        expected = " x ".join("any" if n is None else str(n) for n in input_shape)
        raise ValueError(f"images must be N x {expected} (N x H x W x C), got shape {shape}")
    return images


def shape_mismatch(shape: Sequence[int], input_shape: Sequence[int | None]) -> str | None:
    """Say why one image of ``shape`` (H, W, C) does not fit ``input_shape``, or `None`.

    >>> shape_mismatch((128, 128, 1), (64, 64, 1))
    'the network takes 64 x 64 x 1 images (fixed shape), got 128 x 128 x 1'
    >>> shape_mismatch((9, 13, 1), (None, None, 1)) is None
    True
    """
    if len(shape) == 3 and all(
        want is None or got == want for want, got in zip(input_shape, shape, strict=True)
    ):
        return None
    got = " x ".join(map(str, shape))
    if input_shape[0] is None and input_shape[1] is None:
        return f"the network takes {input_shape[-1]}-channel images, got {got}"
    expected = " x ".join(map(str, input_shape))
    return f"the network takes {expected} images (fixed shape), got {got}"


def translate_in_batches(
    translator: Callable[[np.ndarray], Any],
    items: Iterable[tuple[K, np.ndarray]],
    batch_size: int,
) -> Iterator[tuple[K, np.ndarray]]:
    """Translate images one batch of equal-shaped images at a time.

    Images are grouped by shape as they come; a group is translated as soon
    as it holds ``batch_size`` images, and the remaining groups at the end.
    Outputs therefore come in input order only when all shapes are equal.

    Args:
        translator: Maps ``N x H x W x C`` float32 images to ``N x ...`` images.
        items: ``(key, image)`` pairs, each image ``H x W x C``.
        batch_size: Images per call (>= 1).

    Yields:
        ``(key, translated image)`` pairs, float32 NumPy arrays.

    Raises:
        ValueError: If ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[tuple[int, ...], list[tuple[K, np.ndarray]]] = {}
    for key, image in items:
        group = groups.setdefault(np.shape(image), [])
        group.append((key, image))
        if len(group) == batch_size:
            yield from _translate_group(translator, groups.pop(np.shape(image)))
    for group in groups.values():
        yield from _translate_group(translator, group)


def _translate_group(
    translator: Callable[[np.ndarray], Any], group: list[tuple[K, np.ndarray]]
) -> Iterator[tuple[K, np.ndarray]]:
    batch = np.stack([image for _, image in group]).astype(np.float32, copy=False)
    outputs = np.asarray(translator(batch), dtype=np.float32)
    for (key, _), output in zip(group, outputs, strict=True):
        yield key, output


def _spatial_shape(shape: Sequence[int | None], what: str) -> tuple[int | None, int | None, int]:
    """``(H, W, C)`` of a batch shape ``(N, H, W, C)``; `ValueError` for other ranks."""
    if len(shape) != 4 or shape[-1] is None:
        raise ValueError(f"{what} must be N x H x W x C with known C, got {tuple(shape)}")
    height, width, channels = shape[1:]
    return height, width, int(channels)
