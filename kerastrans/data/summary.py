"""What a dataset holds: counts, shapes and value ranges per split, in physical units.

`write_dataset` gathers these figures while it writes (one pass, no second
read) and stores them with the dataset, so ``kerastrans records`` and the demo
can print them and the pipeline can check, without reading the data, whether
the slices of each series are stored in order (needed for 2.5D stacks).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["DatasetSummary", "ImageStats", "SplitSummary"]

#: At most this many distinct shapes are listed per feature and split.
MAX_SHAPES = 8


@dataclasses.dataclass(frozen=True)
class ImageStats:
    """Shapes and value range of one image feature over one split.

    Attributes:
        shapes: Distinct ``(height, width, channels)`` shapes, sorted, at most
            `MAX_SHAPES` of them.
        num_shapes: Number of distinct shapes (may exceed ``len(shapes)``).
        min: Smallest value, physical units (HU for CT).
        max: Largest value, physical units.
        mean: Mean value over all pixels, physical units.
        modality: DICOM Modality shared by every image (``"CT"``, ``"MR"`` ...),
            `None` when some image has none (other formats; datasets written
            before it was kept).
    """

    shapes: tuple[tuple[int, int, int], ...]
    num_shapes: int
    min: float
    max: float
    mean: float
    modality: str | None = None

    @property
    def units(self) -> str | None:
        """``"HU"`` for DICOM CT, ``"stored values"`` for other modalities and
        colour images, `None` when the files do not say (grey PNG/TIFF/NPY).

        >>> ImageStats(((8, 8, 1),), 1, -1000.0, 1800.0, 0.0, "CT").units
        'HU'
        >>> ImageStats(((8, 8, 3),), 1, 0.0, 255.0, 90.0).units
        'stored values'
        """
        if self.modality == "CT" and all(shape[2] == 1 for shape in self.shapes):
            return "HU"
        if self.modality is not None or any(shape[2] > 1 for shape in self.shapes):
            return "stored values"
        return None

    def describe_shapes(self) -> str:
        """``"512x512x1, 128x128x1"`` (with ``"..."`` when some are not listed)."""
        text = ", ".join("x".join(map(str, shape)) for shape in self.shapes)
        return text + (", ..." if self.num_shapes > len(self.shapes) else "")


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """One split of a dataset.

    Attributes:
        num_examples: Number of examples.
        features: `ImageStats` per image feature (``input``/``target`` for a
            paired dataset, ``image`` for a domain of an unpaired one).
        series_ordered: Whether the slices of every series are stored next to
            each other in order of position, so that neighbours can be stacked.
        size_ratio: ``(target height / input height, target width / input
            width)`` when it is the same for every example of a paired split
            (1, 1 for same-size pairs, 2, 2 for 2x super-resolution), else `None`.
        unequal_pair: The first pair of a paired split whose input and target
            differ in height or width: ``(id, input shape, target shape)``;
            `None` if there is none (or the dataset predates this field).
    """

    num_examples: int
    features: Mapping[str, ImageStats]
    series_ordered: bool
    size_ratio: tuple[float, float] | None = None
    unequal_pair: tuple[str, tuple[int, ...], tuple[int, ...]] | None = None

    def mixed_sizes(self, pad_multiple: int = 1) -> str | None:
        """The feature and sizes that stop images being batched together, or `None`.

        Args:
            pad_multiple: Images are padded to multiples of this first, so
                sizes that pad alike batch together.

        Returns:
            E.g. ``"input: 32x32x1, 48x48x1"`` when a feature has several
            (padded) sizes; `None` when every image of each feature has one.
        """
        for key, stats in self.features.items():
            padded = {
                tuple(-(-n // pad_multiple) * pad_multiple for n in shape[:2])
                for shape in stats.shapes
            }
            if stats.num_shapes > len(stats.shapes) or len(padded) > 1:
                return f"{key}: {stats.describe_shapes()}"
        return None


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """What a TFDS-format dataset written by kerastrans holds.

    Attributes:
        path: The dataset folder.
        kind: ``"paired"`` (examples ``input``/``target``) or ``"unpaired"``
            (examples ``image``; splits per domain such as ``trainA``/``trainB``).
        splits: `SplitSummary` per split name, in the order written.
        reused: True when the dataset already existed and was left untouched.
    """

    path: Path
    kind: Literal["paired", "unpaired"]
    splits: Mapping[str, SplitSummary]
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (without ``path`` and ``reused``)."""
        return {
            "kind": self.kind,
            "splits": {
                name: {
                    "num_examples": split.num_examples,
                    "series_ordered": split.series_ordered,
                    "size_ratio": split.size_ratio,
                    "unequal_pair": split.unequal_pair,
                    "features": {
                        key: dataclasses.asdict(stats) for key, stats in split.features.items()
                    },
                }
                for name, split in self.splits.items()
            },
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], path: Path, *, reused: bool = False
    ) -> DatasetSummary:
        """Inverse of `to_dict`."""
        splits = {
            name: SplitSummary(
                num_examples=int(split["num_examples"]),
                series_ordered=bool(split["series_ordered"]),
                size_ratio=None if split.get("size_ratio") is None else tuple(split["size_ratio"]),
                unequal_pair=_unequal_pair(split.get("unequal_pair")),
                features={
                    key: ImageStats(
                        shapes=tuple(tuple(int(n) for n in shape) for shape in stats["shapes"]),
                        num_shapes=int(stats["num_shapes"]),
                        min=float(stats["min"]),
                        max=float(stats["max"]),
                        mean=float(stats["mean"]),
                        modality=stats.get("modality"),
                    )
                    for key, stats in split["features"].items()
                },
            )
            for name, split in data["splits"].items()
        }
        return cls(path=Path(path), kind=data["kind"], splits=splits, reused=reused)

    def format(self, units: str | None = None) -> str:
        """A markdown table: one row per split and image feature.

        Args:
            units: Unit of the values for the column titles (e.g. ``"HU"``).
        """
        unit = f" [{units}]" if units else ""
        header = (
            "split",
            "examples",
            "feature",
            "shape(s)",
            f"min{unit}",
            f"max{unit}",
            f"mean{unit}",
        )
        rows = [
            (
                name,
                str(split.num_examples),
                key,
                stats.describe_shapes(),
                f"{stats.min:.6g}",
                f"{stats.max:.6g}",
                f"{stats.mean:.6g}",
            )
            for name, split in self.splits.items()
            for key, stats in split.features.items()
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = [header, tuple("-" * width for width in widths), *rows]
        return "\n".join(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            + " |"
            for line in lines
        )


class SplitAccumulator:
    """Accumulates a `SplitSummary` example by example while a split is written."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys
        self._count = 0
        self._shapes: dict[str, set[tuple[int, ...]]] = {key: set() for key in keys}
        self._min = dict.fromkeys(keys, math.inf)
        self._max = dict.fromkeys(keys, -math.inf)
        self._sum = dict.fromkeys(keys, 0.0)
        self._size = dict.fromkeys(keys, 0)
        self._finished_series: set[str] = set()
        self._series: str | None = None
        self._position = -math.inf
        self._ordered = True
        self._ratios: set[tuple[float, float]] = set()
        self._modality: dict[str, str | None] = {}
        self._unequal: tuple[str, tuple[int, ...], tuple[int, ...]] | None = None

    def add(
        self, example: Mapping[str, Any], modality: Mapping[str, str | None] | None = None
    ) -> None:
        """Record one checked example (float32 images, ``series`` str, ``position`` float).

        ``modality`` (DICOM Modality per image key, `None` when not given): the
        split records it when every example has the same, else `None`.
        """
        self._count += 1
        for key in self._keys:
            value = (modality or {}).get(key)
            if self._modality.setdefault(key, value) != value:
                self._modality[key] = None
        for key in self._keys:
            image = example[key]
            self._shapes[key].add(tuple(int(n) for n in image.shape))
            self._min[key] = min(self._min[key], float(image.min()))
            self._max[key] = max(self._max[key], float(image.max()))
            self._sum[key] += float(np.sum(image, dtype=np.float64))
            self._size[key] += image.size
        if self._keys == ("input", "target"):
            (hi, wi), (ht, wt) = example["input"].shape[:2], example["target"].shape[:2]
            self._ratios.add((round(ht / hi, 6), round(wt / wi, 6)))
            if self._unequal is None and (hi, wi) != (ht, wt):
                shapes = (example["input"].shape, example["target"].shape)
                self._unequal = (str(example["id"]), *(tuple(map(int, s)) for s in shapes))
        self._track_order(example["series"], float(example["position"]))

    def _track_order(self, series: str, position: float) -> None:
        """Series must be contiguous and positions non-decreasing (NaN = stored order)."""
        if not series:  # a slice without series has no neighbours: any order is fine
            return
        if series != self._series:
            if series in self._finished_series:
                self._ordered = False
            if self._series is not None:
                self._finished_series.add(self._series)
            self._series, self._position = series, -math.inf
        if not math.isnan(position):
            self._ordered &= position >= self._position
            self._position = position

    def result(self) -> SplitSummary:
        """The summary of everything added so far."""
        features = {
            key: ImageStats(
                shapes=tuple(sorted(self._shapes[key]))[:MAX_SHAPES],
                num_shapes=len(self._shapes[key]),
                min=self._min[key],
                max=self._max[key],
                mean=self._sum[key] / max(self._size[key], 1),
                modality=self._modality.get(key),
            )
            for key in self._keys
        }
        ratio = next(iter(self._ratios)) if len(self._ratios) == 1 else None
        return SplitSummary(self._count, features, self._ordered, ratio, self._unequal)


def _unequal_pair(stored: Any) -> tuple[str, tuple[int, ...], tuple[int, ...]] | None:
    """`SplitSummary.unequal_pair` from its JSON form ``[id, shape, shape]``."""
    if stored is None:
        return None
    example_id, input_shape, target_shape = stored
    return str(example_id), tuple(map(int, input_shape)), tuple(map(int, target_shape))
