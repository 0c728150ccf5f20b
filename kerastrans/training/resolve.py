"""Fill in what a config leaves to the dataset, so that the run directory records it all.

`resolve_config` reads the dataset's stored summary (no image is read) and
sets the fields that depend on it: the model's input and output shapes, the
padding the generator needs, the steps of an epoch, the validation dataset,
and the seeds (drawn once when not given, then kept by the run, so a resumed
run streams the same batches). `default_windows` proposes the windows of a
dataset when the user gives none.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets

from kerastrans.config import RECONSTRUCTION_KINDS, Config, Window
from kerastrans.data.records import read_metadata, read_summary
from kerastrans.data.summary import DatasetSummary, ImageStats
from kerastrans.errors import file_error
from kerastrans.tomo.geometry import geometry_from_dataset

__all__ = ["CT_WINDOW", "default_windows", "resolve_config", "validation_examples"]

#: Window for CT in HU: air (-1000 HU) to dense bone (+1000 HU) -> [-1, 1].
CT_WINDOW = Window(-1000.0, 2000.0)


def resolve_config(
    config: Config, previous: Config | None = None, *, default_seed: int | None = None
) -> Config:
    """Return ``config`` with every dataset-dependent field filled in.

    Args:
        config: The requested config; ``data.dataset`` must be set.
        previous: The config of the run being resumed, whose seeds are kept
            when ``config`` gives none.
        default_seed: Seed of a new run whose config gives none (`None`: a
            random one).

    Returns:
        The resolved config (paths made absolute).

    Raises:
        ValueError: If no dataset is given or an epoch would have no step.
        DataError: If the dataset does not suit the model (an unpaired
            dataset for pix2pix, missing splits, several sizes for AUTOMAP,
            no geometry in the metadata for lpd, lgd and fbp-unet).
    """
    data, model, training = config.data, config.model, config.training
    if data.dataset is None:
        raise ValueError("data.dataset must name the training dataset folder (--data), got None")
    dataset = os.path.abspath(data.dataset)
    summary = read_summary(dataset)
    if model.kind != "cyclegan" and summary.kind != "paired":
        raise file_error(
            dataset,
            f"{model.kind} needs a paired dataset (input and target), "
            "got an unpaired one (train it with --model cyclegan)",
        )
    stats = _domain_stats(summary, data.train_split)
    seed = data.seed
    if seed is None and previous is not None:
        seed = previous.data.seed
    if seed is None:
        seed = default_seed if default_seed is not None else secrets.randbelow(2**31)
    pad_multiple = data.pad_multiple
    fixed = model.kind == "automap" or model.kind in RECONSTRUCTION_KINDS
    if not fixed:
        pad_multiple = math.lcm(pad_multiple, model.generator.size_multiple)
    needs_geometry = model.kind in RECONSTRUCTION_KINDS or (
        model.kind == "automap" and model.fbp_init
    )
    if needs_geometry and model.geometry is None:
        model = dataclasses.replace(model, geometry=geometry_from_dataset(dataset).to_dict())
    data = dataclasses.replace(data, dataset=dataset, seed=seed, pad_multiple=pad_multiple)
    input_shape, output_shape = _shapes(summary, stats, data, fixed)
    if needs_geometry:
        _check_geometry(dataset, model.geometry, input_shape, output_shape)
    steps = training.steps_per_epoch
    if steps is None:
        examples = max(split.num_examples for split in _train_splits(summary, data.train_split))
        steps = examples // data.batch_size
        if steps < 1:
            raise ValueError(
                f"batch_size {data.batch_size} is larger than the {examples} "
                f"training examples of {dataset}; an epoch would have no step"
            )
    model = dataclasses.replace(
        model,
        input_shape=model.input_shape or input_shape,
        output_shape=model.output_shape or output_shape,
        seed=seed if model.seed is None else model.seed,
    )
    data = dataclasses.replace(data, validation=_validation(data, summary))
    training = dataclasses.replace(training, steps_per_epoch=steps)
    return dataclasses.replace(config, data=data, model=model, training=training)


def validation_examples(config: Config) -> int:
    """Examples one validation pass sees (pairs for an unpaired dataset; 0 without one)."""
    data = config.data
    if data.validation is None:
        return 0
    splits = _train_splits(read_summary(data.validation), data.eval_split)
    return min(split.num_examples for split in splits)


def default_windows(dataset_dir: str | os.PathLike) -> tuple[Window, Window]:
    """The windows of the input and target domains when the user gives none.

    In order: the ``window`` hint of the dataset's metadata (one window for
    both domains, or ``{"input": ..., "target": ...}``); `CT_WINDOW` for a
    domain whose metadata ``units`` say HU or whose values look like CT in HU
    (minimum at or below -900, maximum at most 4000); else the value range
    ``[min, max]`` of the training split (sinograms, MR, phantom units).
    """
    summary = read_summary(dataset_dir)
    metadata = read_metadata(dataset_dir)
    hint, units = metadata.get("window"), metadata.get("units")
    windows = []
    for role, stats in zip(("input", "target"), _domain_stats(summary, "train"), strict=True):
        role_hint = hint.get(role, hint) if isinstance(hint, dict) else None
        role_units = units.get(role) if isinstance(units, dict) else units
        if isinstance(role_hint, dict) and {"base", "range"} <= set(role_hint):
            windows.append(Window(role_hint["base"], role_hint["range"]))
        elif role_units == "HU" or (stats.min <= -900 and stats.max <= 4000):
            windows.append(CT_WINDOW)
        else:
            windows.append(Window(stats.min, max(stats.max - stats.min, 1e-6)))
    return windows[0], windows[1]


# ----------------------------------------------------------------------------------------------


def _train_splits(summary: DatasetSummary, split: str) -> list:
    names = [split] if summary.kind == "paired" else [f"{split}A", f"{split}B"]
    missing = [name for name in names if name not in summary.splits]
    if missing:
        raise file_error(
            summary.path, f"no split {missing[0]!r} (splits: {', '.join(summary.splits)})"
        )
    return [summary.splits[name] for name in names]


def _domain_stats(summary: DatasetSummary, split: str) -> tuple[ImageStats, ImageStats]:
    """Statistics of the input and target images of the training split."""
    splits = _train_splits(summary, split)
    if summary.kind == "paired":
        return splits[0].features["input"], splits[0].features["target"]
    return splits[0].features["image"], splits[1].features["image"]


def _shapes(summary, stats, data, fixed: bool) -> tuple[tuple, tuple]:
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


def _check_geometry(dataset: str, geometry: dict, input_shape: tuple, output_shape: tuple) -> None:
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


def _validation(data, summary: DatasetSummary) -> str | None:
    """The validation dataset folder: ``data.validation``, or ``dataset`` if it has the split."""
    if data.validation is not None:
        folder = os.path.abspath(data.validation)
        _train_splits(read_summary(folder), data.eval_split)  # raises if the split is missing
        return folder
    try:
        _train_splits(summary, data.eval_split)
    except ValueError:
        return None
    return str(summary.path)
