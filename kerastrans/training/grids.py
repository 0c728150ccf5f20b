"""Image grids that show what a model does, saved as 8-bit PNG each epoch.

One row per example, one column per image, each image a tile of the target's
size (other sizes, e.g. a sinogram input, are resized to it):

- pix2pix / AUTOMAP: input | output | target | difference (output - target);
- CycleGAN: A | A->B | A->B->A | B | B->A | B->A->B.

Images are shown in a display window in physical units (HU for CT): values at
or below its low end are black, at or above its high end white. Differences
are shown around mid-grey: ``-d`` black, ``0`` grey, ``+d`` white. A grid of
``n`` examples and ``k`` columns is ``n * H`` by ``k * W`` pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from kerastrans.atomic import atomic_path
from kerastrans.config import Config, Window
from kerastrans.translate import Translator

__all__ = ["GridRenderer", "compose", "to_gray"]


def to_gray(image: np.ndarray, window: Window, channel: int = 0) -> np.ndarray:
    """Map one channel of an ``H x W x C`` image in physical units to uint8 through ``window``."""
    values = np.asarray(image, np.float32)[..., channel]
    scaled = (values - window.low) / window.range
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def compose(rows: Sequence[Sequence[np.ndarray]], tile: tuple[int, int]) -> np.ndarray:
    """Lay uint8 ``H x W`` images out as a grid of ``tile``-sized cells (resizing as needed)."""
    from PIL import Image

    height, width = tile
    grid = np.zeros((len(rows) * height, max(map(len, rows)) * width), np.uint8)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image.shape != (height, width):
                image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
            grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    return grid


class GridRenderer:
    """Renders the grid of a model on fixed examples.

    Args:
        model: A `Pix2Pix`, `Automap` or `CycleGAN` (its generators are read
            at each call, so it follows training).
        config: The run's config (windows; ``training.grid_window`` and
            ``training.grid_difference``).
        examples: ``(input, target)`` pairs in physical units (see
            `kerastrans.training.data.grid_examples`).
    """

    def __init__(
        self, model, config: Config, examples: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> None:
        data, training = config.data, config.training
        self.examples = list(examples)
        self.windows = (
            training.grid_window or data.input_window,
            training.grid_window or data.target_window,
        )
        self.difference = training.grid_difference or self.windows[1].range / 10
        self.channel = data.neighbours  # the centre slice of a 2.5D stack
        self.cyclegan = hasattr(model, "generator_f")
        forward = model.generator_g if self.cyclegan else model.generator
        self.translators = [
            Translator.from_generator(forward, data.input_window, data.target_window)
        ]
        if self.cyclegan:
            self.translators.append(
                Translator.from_generator(model.generator_f, data.target_window, data.input_window)
            )

    @property
    def columns(self) -> int:
        """Images per row."""
        return 6 if self.cyclegan else 4

    def render(self) -> np.ndarray:
        """The grid as a uint8 array (rows x columns tiles of the target's size)."""
        rows = [self._row(a, b) for a, b in self.examples]
        return compose(rows, self.examples[0][1].shape[:2])

    def save(self, path: str | os.PathLike) -> None:
        """Render and write the grid as PNG, atomically."""
        from PIL import Image

        grid = self.render()
        with atomic_path(path) as tmp:
            Image.fromarray(grid).save(tmp, format="PNG")

    def _translate(self, direction: int, image: np.ndarray) -> np.ndarray:
        return self.translators[direction](image[np.newaxis]).numpy()[0]

    def _row(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        window_a, window_b = self.windows
        if not self.cyclegan:
            output = self._translate(0, a)
            half = Window(-self.difference, 2 * self.difference)
            return [
                to_gray(a, window_a, self.channel),
                to_gray(output, window_b),
                to_gray(b, window_b),
                to_gray(output - b, half),
            ]
        a2b = self._translate(0, a)
        b2a = self._translate(1, b)
        return [
            to_gray(a, window_a),
            to_gray(a2b, window_b),
            to_gray(self._translate(1, a2b), window_a),
            to_gray(b, window_b),
            to_gray(b2a, window_a),
            to_gray(self._translate(0, b2a), window_b),
        ]
