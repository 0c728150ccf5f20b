"""Examples for `kerastrans.data.records.write_dataset`, read from files with `kerastrans.io`.

Three sources, matching ``kerastrans records``:

- pairs (a list file or ``trainA``/``trainB`` folders): one example per
  `kerastrans.io.sources.Pair`, read lazily while the dataset is written;
- a plain folder (single domain): every slice, with ``input = target``;
  DICOM series come first, each ordered along the slice normal, so that 2.5D
  stacks find neighbours; other images follow in file order;
- unpaired files of one domain: one example per slice (``image``).

`hold_out` draws a random validation part from any of them, keeping the
groups each source defines together (`Examples.group`): a DICOM series (by
SeriesInstanceUID) is one group, and any other file (PNG/TIFF/NPY, DICOM
without a series UID) is its own group, all its frames together.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kerastrans.io import Slice, find_images, read_series, read_slices
from kerastrans.io.dicom import is_dicom
from kerastrans.io.files import read_modality
from kerastrans.io.series import series_uid
from kerastrans.io.slice import modality_mismatch
from kerastrans.io.sources import Pair, read_pair

__all__ = ["Examples", "folder_examples", "hold_out", "paired_examples", "unpaired_examples"]

T = TypeVar("T")


class Examples:
    """A re-iterable sequence of examples made lazily from sources.

    Its length hint (`operator.length_hint`, used for progress bars) is the
    number of sources, exact when each source gives one example.

    Args:
        sources: The items examples are made from (e.g. `Pair`, `Slice` or
            file paths).
        make: Turns one source into its examples (a list of dicts).
        group: Key of the group a source belongs to, for `hold_out` (a DICOM
            series, a file); default: every source is its own group.
        unit: What a source is, for messages (``"examples"``, ``"files"``).
    """

    def __init__(
        self,
        sources: Sequence[T],
        make: Callable[[T], list[dict[str, Any]]],
        *,
        group: Callable[[T], Hashable] | None = None,
        unit: str = "examples",
    ) -> None:
        self.sources = list(sources)
        self._make = make
        self.group = group
        self.unit = unit

    def __length_hint__(self) -> int:
        return len(self.sources)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for source in self.sources:
            yield from self._make(source)

    def subset(self, sources: Sequence[T]) -> Examples:
        """The examples of ``sources`` (a part of this one's), made the same way."""
        return Examples(sources, self._make, group=self.group, unit=self.unit)


def paired_examples(pairs: Sequence[Pair]) -> Examples:
    """Examples ``{"input", "target", "id", "series", "position", "modality"}``, one per pair.

    Sizes of input and target may differ (super-resolution, sinogram ->
    image); ``series`` and ``position`` come from the first input file, and
    so does the group of a pair (its DICOM series, else the file); ``modality``
    (per side) comes from the DICOM headers of its files.

    Raises:
        DataError: (when iterated) If a file cannot be read, or the channel
            files of one side differ in modality.
    """

    def make(pair: Pair) -> dict[str, Any]:
        first = read_slices(pair.inputs[0])[0]
        inputs, targets = read_pair(pair, same_size=False)
        modality = {"input": _modality(pair.inputs), "target": _modality(pair.targets)}
        return [
            {"input": inputs, "target": targets, **_origin(first, pair.id), "modality": modality}
        ]

    return Examples(pairs, make, group=lambda pair: _file_group(pair.inputs[0]))


def folder_examples(root: str | os.PathLike, *, progress: bool = False) -> Examples:
    """Single-domain examples of every slice under ``root``, with ``input = target``.

    Use such a dataset with noise injection (denoising) or as the clean source
    of a simulation. All slices are read up front, to order DICOM series.

    Raises:
        DataError: If ``root`` holds no images or a file cannot be read.
    """
    files = find_images(root)
    dicom = [path for path in files if is_dicom(path)]
    slices: list[Slice] = []
    if dicom:
        slices += [
            slice_ for series in read_series(root, progress=progress) for slice_ in series.slices
        ]
    files_of = {}  # slice id -> file, the group of a slice without a series
    for path in sorted(set(files) - set(dicom)):
        for slice_ in read_slices(path):
            slices.append(slice_)
            files_of[slice_.id] = str(path)
    return Examples(
        slices,
        lambda slice_: [_from_slice(slice_, "input", "target")],
        group=lambda slice_: slice_.series or files_of.get(slice_.id, slice_.id),
    )


def unpaired_examples(files: Sequence[Path]) -> Examples:
    """Examples ``{"image", "id", "series", "position", "modality"}`` of each slice of ``files``."""
    return Examples(
        files,
        lambda path: [_from_slice(slice_, "image") for slice_ in read_slices(path)],
        group=_file_group,
        unit="files",
    )


def hold_out(
    sources: Sequence[T],
    fraction: float,
    seed: int,
    *,
    group: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Split ``sources`` at random into ``(kept, held_out)``, keeping groups together.

    Groups are visited in a random order (seeded) and each is held out if
    that brings the number of held-out items closer to ``fraction`` of all
    items; the first is always held out and the last always kept. With groups
    of unequal size the share reached may differ from ``fraction``: compare
    the lengths of the two parts.

    Args:
        sources: Items in their stored order (both parts keep that order).
        fraction: Share of the items to hold out, in (0, 1).
        seed: Seed of the draw (same seed, same split).
        group: Key of an item's group (e.g. its DICOM series); items of one
            group land in the same part. Default: every item is its own group.

    Returns:
        The kept items and the held-out items.

    Raises:
        ValueError: If ``fraction`` is outside (0, 1) or there are fewer than
            two groups.

    >>> hold_out(["a1", "a2", "b1", "c1"], 0.5, seed=1, group=lambda item: item[0])
    (['b1', 'c1'], ['a1', 'a2'])
    """
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be in (0, 1), got {fraction}")
    labels = [i if group is None else group(item) for i, item in enumerate(sources)]
    sizes = Counter(labels)
    keys = list(sizes)
    if len(keys) < 2:
        raise ValueError(f"a random split needs at least 2 groups of examples, got {len(keys)}")
    goal = fraction * len(sources)
    held: set[Hashable] = set()
    count = 0
    for index in np.random.default_rng(seed).permutation(len(keys))[:-1]:
        size = sizes[keys[index]]
        if not held or abs(count + size - goal) < abs(count - goal):
            held.add(keys[index])
            count += size
    parts: tuple[list[T], list[T]] = ([], [])
    for item, label in zip(sources, labels, strict=True):
        parts[label in held].append(item)
    return parts


def _file_group(path: Path) -> str:
    """Group of a file for `hold_out`: its DICOM series, else the file itself."""
    return series_uid(path) or str(path)


def _origin(slice_: Slice, example_id: str) -> dict[str, Any]:
    return {"id": example_id, "series": slice_.series, "position": slice_.position}


def _from_slice(slice_: Slice, *keys: str) -> dict[str, Any]:
    """An example whose images ``keys`` are all the slice's pixels."""
    return {
        **dict.fromkeys(keys, slice_.pixels),
        **_origin(slice_, slice_.id),
        "modality": dict.fromkeys(keys, slice_.modality),
    }


def _modality(paths: Sequence[Path]) -> str | None:
    """The DICOM Modality shared by the channel files ``paths`` (`None`: not DICOM)."""
    modalities = [read_modality(path) for path in paths]
    for path, modality in zip(paths[1:], modalities[1:], strict=True):
        if modality != modalities[0]:
            raise modality_mismatch(path, modality, paths[0], modalities[0], "(same example)")
    return modalities[0]
