"""Images to simulate from (`kerastrans.simulation`): phantoms, a dataset, an image folder.

Each source gives ``(id, image)`` pairs per split, images 2-D float32, plus
the image shape and (when the source knows it) the pixel size in mm, which
sets the physical extent of the simulated geometry.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from kerastrans.errors import file_error

__all__ = ["PHANTOMS", "Source", "open_source", "phantom_to_hu"]

#: Phantoms usable as a source.
PHANTOMS = ("ellipses", "shepp-logan", "forbild")

Images = Iterable[tuple[str, np.ndarray]]


@dataclasses.dataclass
class Source:
    """Images to simulate from.

    Attributes:
        name: The source as given: a phantom name or a folder.
        splits: ``{split: (images, count or None)}``.
        shape: Shape of the images ``(rows, columns)``.
        pixel_size: Pixel size in mm if the source records one, else None.
        phantom: Whether the images are phantoms (values relative to water).
    """

    name: str
    splits: dict[str, tuple[Images, int | None]]
    shape: tuple[int, int]
    pixel_size: float | None
    phantom: bool


def open_source(
    source: str,
    *,
    sizes: Mapping[str, int],
    image_size: int = 128,
    seed: int = 0,
    split: str = "train",
    hounsfield: bool = False,
) -> Source:
    """Open ``source``: a name in `PHANTOMS`, a kerastrans dataset folder or an image folder.

    Args:
        source: Phantom name or folder.
        sizes: Phantoms per split, e.g. ``{"train": 1000, "test": 100}`` (0 skips a split).
        image_size: Phantom size in pixels.
        seed: Seed of the ellipse phantoms; split ``i`` of ``sizes`` uses ``seed + i``.
        split: Split name for the images of a folder.
        hounsfield: Convert phantoms to HU, ``1000 (v - 1)`` (phantom value 1 = water).

    Returns:
        The `Source`; folders and datasets are read lazily, split by split.

    Raises:
        ValueError: If ``source`` is neither a phantom nor a folder.
        DataError: If an image has several channels (named by its id).
    """
    from kerastrans.data.records import is_dataset

    if source in PHANTOMS:
        splits = {
            name: (_phantoms(source, name, index, count, image_size, seed, hounsfield), count)
            for index, (name, count) in enumerate(sizes.items())
            if count > 0
        }
        return Source(source, splits, (image_size, image_size), None, phantom=True)
    path = Path(source)
    if not path.is_dir():
        raise ValueError(f"--source must be one of {PHANTOMS} or a folder, got {source!r}")
    found = _dataset_source(path) if is_dataset(path) else _folder_source(path, split)
    return dataclasses.replace(found, name=source)


def phantom_to_hu(image: np.ndarray) -> np.ndarray:
    """Phantom values (1 = water, 0 = air) in HU: ``1000 (v - 1)``.

    Plausible for FORBILD's densities too.

    >>> phantom_to_hu(np.array([0.0, 1.0, 2.0])).tolist()
    [-1000.0, 0.0, 1000.0]
    """
    return 1000.0 * (image - 1.0)


def _phantoms(
    source: str, split: str, index: int, count: int, size: int, seed: int, hounsfield: bool
) -> Images:
    from kerastrans.tomo import phantoms

    if source == "ellipses":
        images = phantoms.random_ellipses(count, seed + index, shape=(size, size))
    else:
        make = phantoms.shepp_logan if source == "shepp-logan" else phantoms.forbild
        images = itertools.repeat(make((size, size)), count)
    for number, image in enumerate(images):
        yield f"{source}-{split}-{number:05d}", phantom_to_hu(image) if hounsfield else image


def _dataset_source(path: Path) -> Source:
    import tensorflow_datasets as tfds

    from kerastrans.data.records import load_builder, read_metadata

    builder = load_builder(path)

    def images(split: str) -> Images:
        for example in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
            key = example["id"].decode()
            yield key, _single_channel(example.get("target", example.get("image")), key)

    splits = {name: (images(name), info.num_examples) for name, info in builder.info.splits.items()}
    shape = _peek_shape(splits)
    geometry = read_metadata(path).get("geometry") or {}
    pixel = geometry["extent"][0] / geometry["image_shape"][0] if geometry.get("extent") else None
    return Source("", splits, shape, pixel, phantom=False)


def _folder_source(path: Path, split: str) -> Source:
    from kerastrans.io import find_images, read_slices

    spacings = []

    def images() -> Images:
        for file in find_images(path):
            for image in read_slices(file):
                spacings.append(image.spacing)
                yield image.id, _single_channel(image.pixels, image.id)

    splits = {split: (images(), None)}
    shape = _peek_shape(splits)
    pixel = float(spacings[0][0]) if spacings[0] is not None else None
    return Source("", splits, shape, pixel, phantom=False)


def _peek_shape(splits: dict[str, tuple[Images, int | None]]) -> tuple[int, int]:
    """Shape of the first image; the image is put back in front of its split."""
    name, (images, count) = next(iter(splits.items()))
    iterator = iter(images)
    first = next(iterator)
    splits[name] = (itertools.chain([first], iterator), count)
    return tuple(first[1].shape)


def _single_channel(pixels: np.ndarray, key: str) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[-1] != 1:
        raise file_error(key, f"simulation needs single-channel images, got shape {pixels.shape}")
    return pixels.reshape(pixels.shape[:2])
