"""Synthetic shapes: rectangles in the input, ellipses at the same places in the target.

A paired toy task for image-to-image translation that needs no data files:
each example holds a few axis-aligned rectangles (input) and the ellipses
inscribed in the same boxes with the same values (target), on an air
background, in HU-like units. A network must learn a local shape change, which
pix2pix learns in minutes. Every example is drawn from its own generator
seeded by ``(seed, split, index)``, so a dataset is reproducible bit for bit
and an example does not depend on how many others are drawn.
"""

from __future__ import annotations

import os

import numpy as np

from kerastrans.data.recipes._write import write_recipe
from kerastrans.data.records import DatasetSummary

__all__ = ["BACKGROUND_HU", "VERSION", "build_shapes", "shapes_pair"]

VERSION = "1.0.0"
#: Value of the background (air), HU.
BACKGROUND_HU = -1000.0
#: Range of the value of each shape, HU (soft tissue to bone).
SHAPE_HU = (-100.0, 900.0)
_SPLIT_CODES = {"train": 0, "test": 1}


def shapes_pair(
    rng: np.random.Generator, size: int = 128, shapes: tuple[int, int] = (3, 8)
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one ``(rectangles, ellipses)`` pair of float32 ``size x size x 1`` images (HU).

    Args:
        rng: The generator to draw from.
        size: Height and width in pixels (>= 16).
        shapes: Inclusive range of the number of shapes.

    Returns:
        The input (rectangles) and target (ellipses inscribed in the same
        boxes, same values); later shapes cover earlier ones in both.
    """
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    rectangles = np.full((size, size), BACKGROUND_HU, np.float32)
    ellipses = rectangles.copy()
    for _ in range(rng.integers(shapes[0], shapes[1] + 1)):
        half = rng.uniform(size / 16, size / 5, size=2)
        centre = rng.uniform(half, size - 1 - half)
        value = np.float32(rng.uniform(*SHAPE_HU))
        dy, dx = (rows - centre[0]) / half[0], (cols - centre[1]) / half[1]
        rectangles[(np.abs(dy) <= 1) & (np.abs(dx) <= 1)] = value
        ellipses[dy**2 + dx**2 <= 1] = value
    return rectangles[..., np.newaxis], ellipses[..., np.newaxis]


def build_shapes(
    out_dir: str | os.PathLike,
    *,
    size: int = 128,
    n_train: int = 256,
    n_test: int = 32,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetSummary:
    """Write the shapes dataset (splits ``train`` and ``test``) to ``out_dir``.

    Args:
        out_dir: Dataset folder; an existing dataset is reused unless ``overwrite``.
        size: Image height and width in pixels.
        n_train: Number of training pairs.
        n_test: Number of test pairs.
        seed: Seed of the whole dataset.
        overwrite: Rebuild an existing dataset.
        progress: Show progress bars.

    Returns:
        The summary of the dataset written (or found).
    """
    counts = {"train": n_train, "test": n_test}

    def examples(split: str):
        for index in range(counts[split]):
            rng = np.random.default_rng((seed, _SPLIT_CODES[split], index))
            rectangles, ellipses = shapes_pair(rng, size)
            yield {"input": rectangles, "target": ellipses, "id": f"shapes/{split}/{index:05d}"}

    metadata = {
        "source": "synthetic: rectangles (input) -> inscribed ellipses (target)",
        "size": size,
        "seed": seed,
        "background_hu": BACKGROUND_HU,
    }
    return write_recipe(
        out_dir,
        {split: examples(split) for split in counts},
        name="shapes",
        version=VERSION,
        doc=__doc__,
        metadata=metadata,
        overwrite=overwrite,
        progress=progress,
    )
