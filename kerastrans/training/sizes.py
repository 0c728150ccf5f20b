"""The image sizes of training: what the batches hold, and the sizes a model cannot use.

`kerastrans.training.resolve.resolve_config` calls these with the dataset's
stored summary (no image is read): `check_sizes` refuses, naming the
dataset, pairs of two sizes for pix2pix, images of several sizes batched
without a crop and a crop larger than the images; `batch_shapes` gives the
input and output shapes of the training batches; `check_geometry` refuses
sinograms or images whose size is not that of the scan geometry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kerastrans.data.summary import DatasetSummary
from kerastrans.errors import file_error

__all__ = ["batch_shapes", "check_geometry", "check_sizes"]


def check_sizes(
    summary: DatasetSummary, splits: Mapping[str, Any], data, kind: str, fixed: bool
) -> None:
    """Refuse, naming the dataset, image sizes the model or the batches cannot use.

    ``splits``: the training splits by name. ``fixed``: the model takes one
    size per domain (AUTOMAP, the reconstruction models), which
    `batch_shapes` checks; its input and target have no common geometry
    (sinogram or k-space -> image), so crops and geometric augmentation,
    which would move the two differently, are refused.
    """
    if fixed:
        _check_no_geometric_augmentation(data, kind)
    for name, split in splits.items():
        unequal = split.unequal_pair
        if kind == "pix2pix" and (unequal or split.size_ratio not in (None, (1.0, 1.0))):
            pair = (
                f"pair {unequal[0]!r}: input {_size(unequal[1])} and target {_size(unequal[2])}"
                if unequal
                else f"target/input size ratio {split.size_ratio}"
            )
            raise file_error(
                summary.path,
                f"split {name!r} has {pair}; pix2pix outputs images of its input's size, so "
                "input and target of a pair need one size (resample the inputs, e.g. "
                "'kerastrans simulate superres --upsample', or use --model automap)",
            )
        mixed = split.mixed_sizes(data.pad_multiple)
        if not fixed and data.crop is None and data.batch_size > 1 and mixed:
            smallest = _smallest(split)
            raise file_error(
                summary.path,
                f"split {name!r} holds images of several sizes ({mixed}), which cannot be "
                f"batched {data.batch_size} at a time; give --crop H W (at most "
                f"{smallest[0]} {smallest[1]}) or --batch-size 1",
            )
        if data.crop is not None:  # fixed sizes refused crops above
            smallest = _smallest(split)
            if data.crop[0] > smallest[0] or data.crop[1] > smallest[1]:
                raise file_error(
                    summary.path,
                    f"crop {_size(data.crop)} is larger than the smallest image of split "
                    f"{name!r} ({_size(smallest)}); give --crop of at most "
                    f"{smallest[0]} {smallest[1]}",
                )


def _smallest(split) -> tuple[int, int]:
    """Smallest height and width over the images of a split (each image feature)."""
    shapes = [shape for stats in split.features.values() for shape in stats.shapes]
    return min(shape[0] for shape in shapes), min(shape[1] for shape in shapes)


def _size(shape) -> str:
    return "x".join(str(n) for n in shape[:2])


def _check_no_geometric_augmentation(data, kind: str) -> None:
    # Applied alike to input and target, these keep pairs aligned only in a shared geometry.
    moved = [*data.augment.geometric, *(["crop"] if data.crop is not None else [])]
    if moved:
        raise ValueError(
            f"{kind} maps its input (e.g. a sinogram) onto an image of another geometry, so "
            f"{', '.join(moved)} would move input and target differently and break the pairs; "
            "leave them off (augment.noise_std is fine)"
        )


def batch_shapes(summary, stats, data, fixed: bool) -> tuple[tuple, tuple]:
    """``(input_shape, output_shape)`` of training batches: sizes known, else `None`."""
    ratio = None
    if summary.kind == "paired":
        ratio = summary.splits[data.train_split].size_ratio
    sizes = []
    for index, domain in enumerate(stats):
        size = None
        if data.crop is not None and not fixed:
            size = data.crop if index == 0 else _scaled(data.crop, ratio)
        elif domain.num_shapes == 1:
            size = domain.shapes[0][:2]
        if size is not None and not fixed:
            size = tuple(-(-n // data.pad_multiple) * data.pad_multiple for n in size)
        if size is None and fixed:
            raise file_error(
                summary.path,
                f"AUTOMAP needs one image size per domain, got {domain.describe_shapes()}",
            )
        sizes.append(tuple(size) if size is not None else (None, None))
    channels = (stats[0].shapes[0][2] * (2 * data.neighbours + 1), stats[1].shapes[0][2])
    return (*sizes[0], channels[0]), (*sizes[1], channels[1])


def check_geometry(dataset: str, geometry: dict, input_shape: tuple, output_shape: tuple) -> None:
    """Refuse a dataset whose sinogram or image size is not that of the geometry."""
    from kerastrans.tomo.geometry import GeometrySpec

    spec = GeometrySpec.from_dict(geometry)
    want = (spec.sinogram_shape, spec.image_shape)
    if (tuple(input_shape[:2]), tuple(output_shape[:2])) != want:
        raise file_error(
            dataset,
            f"sinograms {input_shape[:2]} and images {output_shape[:2]} do not match the "
            f"geometry's {want[0]} and {want[1]}",
        )


def _scaled(crop: tuple[int, int], ratio: tuple[float, float] | None) -> tuple[int, int] | None:
    if ratio is None:
        return None
    return tuple(round(n * r) for n, r in zip(crop, ratio, strict=True))
