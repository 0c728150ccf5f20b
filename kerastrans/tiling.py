"""Tiled inference: large images translated in overlapping tiles, blended without seams.

A generator trained on 256 x 256 crops runs on a 4096 x 4096 image, but its
activations for the whole image may not fit in memory. `TiledTranslator`
wraps any translator (`kerastrans.translate.Translator`, an exported model)
and translates each image in ``tile x tile`` pieces, several tiles per model
call, then blends them back:

- tiles start every ``tile - overlap`` pixels (a multiple of the network's
  size multiple, so down-sampling sees the same pixel grid as on the whole
  image); the last tile of a row or column ends at the image's edge;
- each tile's weight is 1 inside and falls to 0 towards an edge it shares
  with a neighbour: exactly 0 on the outer quarter of the overlap, then a
  ``sin**2`` ramp over the middle half, so the weights of two neighbours add
  up to 1 and no seam shows. The result is the weighted mean.

A fully convolutional network whose receptive field reaches at most
``overlap / 4`` pixels from a pixel gives the same result tiled as whole (up
to float rounding), away from bottom/right edges that the whole image would
pad to the size multiple.

Without an explicit tile size, images with more than `AUTO_TILE_PIXELS`
pixels are tiled automatically (`AUTO_TILE` pixels a side) and a warning
says so once.

>>> import keras
>>> from kerastrans.config import Window
>>> from kerastrans.translate import Translator
>>> net = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
>>> tiled = TiledTranslator(Translator(net, Window(0, 1), Window(0, 1)), tile=8)
>>> image = np.linspace(0, 1, 20 * 20, dtype=np.float32).reshape(1, 20, 20, 1)
>>> bool(np.allclose(tiled(image), image, atol=1e-6))
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
    "AUTO_TILE",
    "AUTO_TILE_PIXELS",
    "DEFAULT_OVERLAP",
    "TiledTranslator",
    "auto_tiled",
    "tile_starts",
    "tile_weights",
]

logger = logging.getLogger(__name__)

#: Images with more pixels than this (4096 x 4096 has 4 x as many) are tiled
#: automatically: a float32 U-Net with 64 base filters needs about 1 KiB of
#: activations per pixel, so 2048 x 2048 is about 4 GiB per image.
AUTO_TILE_PIXELS = 2048 * 2048
#: Tile side (pixels) of automatic tiling.
AUTO_TILE = 1024
#: Default overlap of neighbouring tiles, as a fraction of the tile side.
DEFAULT_OVERLAP = 0.25


class TiledTranslator:
    """A translator that runs on overlapping tiles of each image and blends them.

    Args:
        translator: Maps ``N x H x W x C`` float32 images in physical units to
            images in physical units (integer scale factors allowed); its
            attributes (windows, input shape, neighbours) are passed through.
        tile: Tile side in pixels (a multiple of the network's size
            multiple), or `None` to tile only images over `AUTO_TILE_PIXELS`.
        overlap: Overlap of neighbouring tiles as a fraction of ``tile``, in
            [0, 1); default 0.25.
        batch_size: Tiles per model call (>= 1).

    Raises:
        ValueError: For a bad argument, or a ``tile`` for a network with a
            fixed input shape (which cannot be tiled).
    """

    def __init__(
        self,
        translator: Any,
        tile: int | None = None,
        overlap: float = DEFAULT_OVERLAP,
        batch_size: int = 8,
    ) -> None:
        self.translator = translator
        self.size_multiple = int(getattr(translator, "size_multiple", 1) or 1)
        height, width, _ = translator.input_shape
        self.fixed = height is not None or width is not None
        if tile is not None:
            if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
                raise ValueError(f"tile must be an int >= 1 or None, got {tile!r}")
            if self.fixed:
                raise ValueError(
                    "tiling needs a network that takes any image size; this one takes "
                    f"{height} x {width} images (fixed shape), got tile={tile}"
                )
            if tile % self.size_multiple:
                raise ValueError(
                    f"tile must be a multiple of the network's size multiple "
                    f"{self.size_multiple}, got {tile}"
                )
        if not (isinstance(overlap, (int, float)) and 0 <= overlap < 1):
            raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.tile = tile
        self.overlap = float(overlap)
        self.batch_size = batch_size
        #: Images tiled automatically so far (over `AUTO_TILE_PIXELS`, no ``tile`` given).
        self.auto_tiled = 0

    @property
    def input_window(self) -> Any:
        """The wrapped translator's input window (or `None`)."""
        return getattr(self.translator, "input_window", None)

    @property
    def output_window(self) -> Any:
        """The wrapped translator's output window (or `None`)."""
        return getattr(self.translator, "output_window", None)

    @property
    def input_shape(self) -> tuple[int | None, int | None, int]:
        """``(height, width, channels)`` the wrapped translator takes."""
        return self.translator.input_shape

    @property
    def neighbours(self) -> int:
        """2.5D neighbours on each side the wrapped model was trained with."""
        return int(getattr(self.translator, "neighbours", 0))

    def __call__(self, images: Any) -> np.ndarray:
        """Translate ``N x H x W x C`` images, tile by tile when needed.

        Returns:
            float32 ``N x H' x W' x C'`` array in the output's physical units.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"images must be N x H x W x C, got shape {images.shape}")
        tile = self._tile_for(*images.shape[1:3])
        if tile is None:
            return np.asarray(self.translator(images), dtype=np.float32)
        return self._tiled(images, tile)

    def _tile_for(self, height: int, width: int) -> int | None:
        """The tile side for ``height x width`` images, or `None` to translate them whole."""
        if self.tile is not None:
            return self.tile if max(height, width) > self.tile else None
        if self.fixed or height * width <= AUTO_TILE_PIXELS:
            return None
        tile = -(-AUTO_TILE // self.size_multiple) * self.size_multiple
        if self.auto_tiled == 0:
            logger.warning(
                "images of %d x %d pixels are over the automatic tiling limit of %d pixels: "
                "translating them in %d x %d tiles with overlap %g (--tile sets the size)",
                height, width, AUTO_TILE_PIXELS, tile, tile, self.overlap,
            )  # fmt: skip
        self.auto_tiled += 1
        return tile

    def _tiled(self, images: np.ndarray, tile: int) -> np.ndarray:
        count, height, width, _ = images.shape
        rows = tile_starts(height, tile, self.overlap, self.size_multiple)
        columns = tile_starts(width, tile, self.overlap, self.size_multiple)
        size = (min(tile, height), min(tile, width))
        overlap = (_overlap_pixels(rows, size[0]), _overlap_pixels(columns, size[1]))
        places = [(n, y, x) for n in range(count) for y in rows for x in columns]
        output = weight = None
        for batch in _batches(places, self.batch_size):
            pieces = np.stack([images[n, y : y + size[0], x : x + size[1]] for n, y, x in batch])
            translated = np.asarray(self.translator(pieces), dtype=np.float32)
            scale = translated.shape[1] // size[0], translated.shape[2] // size[1]
            if output is None:
                shape = (count, height * scale[0], width * scale[1], translated.shape[-1])
                output = np.zeros(shape, np.float32)
                weight = np.zeros((*shape[:3], 1), np.float32)
            for (n, y, x), piece in zip(batch, translated, strict=True):
                y, x = y * scale[0], x * scale[1]
                h, w = piece.shape[:2]
                weights = np.outer(
                    tile_weights(y, h, output.shape[1], overlap[0] * scale[0]),
                    tile_weights(x, w, output.shape[2], overlap[1] * scale[1]),
                )[..., np.newaxis]
                output[n, y : y + h, x : x + w] += weights * piece
                weight[n, y : y + h, x : x + w] += weights
        return output / weight


def auto_tiled(translator: Any, batch_size: int = 8) -> Any:
    """``translator`` tiling images over `AUTO_TILE_PIXELS` (unchanged if already tiled).

    Fixed-shape networks (AUTOMAP), callables without an ``input_shape`` and
    translators that are already a `TiledTranslator` are returned as they are.
    """
    if isinstance(translator, TiledTranslator) or not hasattr(translator, "input_shape"):
        return translator
    height, width, _ = translator.input_shape
    if height is not None or width is not None:
        return translator
    return TiledTranslator(translator, None, DEFAULT_OVERLAP, batch_size)


def tile_starts(length: int, tile: int, overlap: float, multiple: int = 1) -> list[int]:
    """First pixels of the tiles along an axis of ``length`` pixels.

    Tiles start every ``tile - round(overlap * tile)`` pixels, rounded down to
    a multiple of ``multiple`` (at least ``multiple``); the last tile ends at
    ``length``. A ``length`` up to ``tile`` gives one tile.

    >>> tile_starts(40, 16, 0.5)
    [0, 8, 16, 24]
    >>> tile_starts(10, 16, 0.5)
    [0]
    """
    if length <= tile:
        return [0]
    stride = max(multiple, (tile - round(overlap * tile)) // multiple * multiple)
    stride = min(stride, tile)
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def tile_weights(start: int, size: int, length: int, overlap: float) -> np.ndarray:
    """Blending weights along one axis of a tile of ``size`` pixels at ``start``.

    The weight is 1, except towards an edge the tile shares with a neighbour
    (``start > 0``, ``start + size < length``): 0 on the outer ``overlap // 4``
    pixels, then ``sin**2`` rising to 1 over the next ``overlap - 2 * (overlap
    // 4)``, so that two neighbours overlapping by ``overlap`` add up to 1.

    >>> [round(float(w), 2) for w in tile_weights(8, 8, 16, 4)]
    [0.0, 0.15, 0.85, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    weights = np.ones(size, np.float32)
    overlap = round(overlap)
    if overlap < 1:
        return weights
    margin = overlap // 4
    distance = np.arange(size, dtype=np.float64)
    ramp = np.sin(np.pi / 2 * np.clip((distance - margin + 0.5) / (overlap - 2 * margin), 0, 1))
    ramp = (ramp**2).astype(np.float32)
    if start > 0:
        weights *= ramp
    if start + size < length:
        weights *= ramp[::-1]
    return weights


def _overlap_pixels(starts: list[int], size: int) -> int:
    """The nominal overlap of neighbouring tiles (the last pair may overlap more)."""
    return size - (starts[1] - starts[0]) if len(starts) > 1 else 0


def _batches(items: list, size: int) -> Iterator[list]:
    for first in range(0, len(items), size):
        yield items[first : first + size]
