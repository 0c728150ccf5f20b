"""Fill in what a config leaves to the dataset, so that the run directory records it all.

`resolve_config` reads the dataset's stored summary (no image is read) and
sets the fields that depend on it: the windows left out (`default_windows`),
the model's input and output shapes, the
padding the generator needs, the steps of an epoch, the validation dataset,
the precision (``"auto"`` becomes what this machine computes fastest) and
the seeds (drawn once when not given, then kept by the run, so a resumed run
streams the same batches). ``kerastrans fit`` and `kerastrans.training.fit`
both resolve through it, so one config gives one model either way.

A domain is CT in Hounsfield units when the dataset says so: the ``units``
of its metadata, else the DICOM Modality recorded by ``kerastrans records``
(`kerastrans.data.summary.ImageStats.units`). Only when neither says
anything are the values looked at (`domain_units`). A model output that
stands for HU must be able to give every CT value, so `resolve_config`
refuses an output window narrower than `CT_RANGE` for such a domain.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import secrets
from collections.abc import Mapping
from typing import Any

from kerastrans.config import RECONSTRUCTION_KINDS, Config, Window
from kerastrans.data.geometry import geometry_from_dataset
from kerastrans.data.records import load_builder, read_metadata, read_summary
from kerastrans.data.summary import DatasetSummary, ImageStats
from kerastrans.errors import file_error
from kerastrans.precision import AUTO, resolve_precision
from kerastrans.training.sizes import batch_shapes, check_geometry, check_sizes

__all__ = [
    "CT_RANGE",
    "CT_WINDOW",
    "default_windows",
    "domain_units",
    "resolve_config",
    "validation_examples",
]

logger = logging.getLogger(__name__)

#: HU every CT output must be able to give: the range of 12-bit CT (air to dense bone, metal).
CT_RANGE = (-1024.0, 3071.0)
#: Training window of CT in HU: the whole `CT_RANGE` -> [-1, 1] (nothing clipped in it).
CT_WINDOW = Window(CT_RANGE[0], CT_RANGE[1] - CT_RANGE[0])
#: The window fields of the data section, input (domain A) then target (domain B).
_WINDOW_FIELDS = ("input_window", "target_window")
#: The ``units`` sentence of datasets written by ``kerastrans records`` before units were
#: recorded per domain: it says nothing about a given domain.
_UNSPECIFIED_UNITS = "as read by kerastrans.io: HU for CT, stored values otherwise"
#: CT-looking values (when nothing else tells): air at or below this (HU) ...
_AIR_HU = -900.0
#: ... and nothing above this (HU).
_MAX_HU = 4000.0


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
        The resolved config (paths made absolute, windows left out filled in
        by `default_windows`).

    Raises:
        ValueError: If no dataset is given, an epoch would have no step, or
            the window of an output domain in HU does not cover `CT_RANGE`.
        DataError: If the dataset does not suit the model or the settings (an
            unpaired dataset for pix2pix, missing splits, several sizes for
            AUTOMAP, pairs of two sizes for pix2pix, images of several sizes
            in batches without crop, a crop larger than the images, no
            geometry in the metadata for lpd, lgd and fbp-unet).
    """
    data, model, training = config.data, config.model, config.training
    if data.dataset is None:
        raise ValueError("data.dataset must name the training dataset folder (--data), got None")
    dataset = os.path.abspath(data.dataset)
    summary = read_summary(dataset)
    load_builder(dataset)  # a truncated shard is refused before the run starts
    if model.kind != "cyclegan" and summary.kind != "paired":
        raise file_error(
            dataset,
            f"{model.kind} needs a paired dataset (input and target), "
            "got an unpaired one (train it with --model cyclegan)",
        )
    stats = _domain_stats(summary, data.train_split)
    data = _windows(data, dataset)
    config = dataclasses.replace(config, data=data)
    _check_output_windows(config, dataset, *_units(dataset, data.train_split))
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
    names = _split_names(summary, data.train_split)
    splits = dict(zip(names, _train_splits(summary, data.train_split), strict=True))
    check_sizes(summary, splits, data, model.kind, fixed)
    input_shape, output_shape = batch_shapes(summary, stats, data, fixed)
    if needs_geometry:
        check_geometry(dataset, model.geometry, input_shape, output_shape)
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
        precision=_precision(model.precision, previous),
    )
    data = dataclasses.replace(data, validation=_validation(data, summary))
    training = dataclasses.replace(training, steps_per_epoch=steps)
    return dataclasses.replace(config, data=data, model=model, training=training)


def _precision(requested: str, previous: Config | None) -> str:
    """The concrete precision of a run: ``"auto"`` keeps a resumed run's choice.

    A run resumed on another machine goes on in the precision it started in,
    so that ``"auto"`` never turns into a config change the run refuses.
    """
    if requested == AUTO and previous is not None:
        return previous.model.precision
    return resolve_precision(requested)


def _windows(data, dataset: str):
    """``data`` with the windows it leaves out (`None`) set to the dataset's `default_windows`."""
    missing = [name for name in _WINDOW_FIELDS if getattr(data, name) is None]
    if not missing:
        return data
    defaults = dict(zip(_WINDOW_FIELDS, default_windows(dataset), strict=True))
    return dataclasses.replace(data, **{name: defaults[name] for name in missing})


def validation_examples(config: Config) -> int:
    """Examples one validation pass sees (pairs for an unpaired dataset; 0 without one)."""
    data = config.data
    if data.validation is None:
        return 0
    splits = _train_splits(read_summary(data.validation), data.eval_split)
    return min(split.num_examples for split in splits)


def default_windows(dataset_dir: str | os.PathLike) -> tuple[Window, Window]:
    """The windows of the input and target domains (A and B) when the user gives none.

    A domain in HU (see `domain_units`) gets `CT_WINDOW` (-1024..3071 HU),
    so that input and target of a CT dataset share it and nothing in the CT
    range is clipped; a ``window`` hint of the metadata is only a display
    window for it. Any other domain gets the hint (one window for both
    domains, or ``{"input": ..., "target": ...}``), else the value range
    ``[min, max]`` of its training split (sinograms, MR, phantom units, RGB).

    >>> default_windows("datasets/ldct")                    # doctest: +SKIP
    (Window(base=-1024.0, range=4095.0), Window(base=-1024.0, range=4095.0))
    """
    summary = read_summary(dataset_dir)
    hint = read_metadata(dataset_dir).get("window")
    stats = _domain_stats(summary, "train")
    windows = []
    for role, units, domain in zip(
        ("input", "target"), domain_units(dataset_dir), stats, strict=True
    ):
        role_hint = hint.get(role, hint) if isinstance(hint, dict) else None
        if units == "HU":
            windows.append(CT_WINDOW)
        elif isinstance(role_hint, dict) and {"base", "range"} <= set(role_hint):
            windows.append(Window(role_hint["base"], role_hint["range"]))
        else:
            windows.append(Window(domain.min, max(domain.max - domain.min, 1e-6)))
    return windows[0], windows[1]


def domain_units(
    dataset_dir: str | os.PathLike, split: str = "train"
) -> tuple[str | None, str | None]:
    """Units of the input and target domains (A and B): ``"HU"``, other units, or `None`.

    In order: the metadata's ``units`` (one for both domains, or
    ``{"input": ..., "target": ...}``); the units of the recorded DICOM
    Modality (``"HU"`` for CT, ``"stored values"`` for MR, NM, colour
    images ...). When neither says, the training values decide: ``"HU"``
    for one channel with air (minimum at or below -900) and a maximum of at
    most 4000, and, in a paired dataset whose other side is HU, for one
    channel with negative values up to 4000 (a CT target without air still
    shares the input's window); else `None` (not known to be HU).

    Args:
        dataset_dir: The dataset folder.
        split: The split whose values decide (``"train"``; ``<split>A`` and
            ``<split>B`` for an unpaired dataset).
    """
    return _units(dataset_dir, split)[1]


def _units(dataset_dir, split: str) -> tuple[tuple, tuple]:
    """``(recorded, decided)`` units per domain: what the dataset says, then `domain_units`."""
    summary = read_summary(dataset_dir)
    units = read_metadata(dataset_dir).get("units")
    stats = _domain_stats(summary, split)
    recorded = [
        _recorded_units(units.get(role) if isinstance(units, Mapping) else units, domain)
        for role, domain in zip(("input", "target"), stats, strict=True)
    ]
    guessed = [
        "HU" if given is None and _single_channel(domain) and domain.min <= _AIR_HU
        and domain.max <= _MAX_HU else given
        for given, domain in zip(recorded, stats, strict=True)
    ]  # fmt: skip
    if summary.kind == "paired" and "HU" in guessed:
        guessed = [
            "HU" if given is None and _single_channel(domain) and domain.min < 0
            and domain.max <= _MAX_HU else given
            for given, domain in zip(guessed, stats, strict=True)
        ]  # fmt: skip
    return tuple(recorded), tuple(guessed)


# ----------------------------------------------------------------------------------------------


def _recorded_units(units: Any, stats: ImageStats) -> str | None:
    """Units the metadata (``units``) or the recorded DICOM Modality give, else `None`."""
    if isinstance(units, str) and units != _UNSPECIFIED_UNITS:
        return units
    return stats.units


def _single_channel(stats: ImageStats) -> bool:
    return all(shape[2] == 1 for shape in stats.shapes)


def _check_output_windows(config: Config, dataset: str, recorded: tuple, decided: tuple) -> None:
    """Refuse an output window that cannot give every CT value of a domain in HU.

    The pipeline clips training images at the window and a bounded output
    (tanh) cannot leave it, so the output domains (the target; both domains
    of a CycleGAN) in HU need windows covering `CT_RANGE`: refused when the
    dataset records HU, a warning when only the values suggest it.
    """
    outputs = [("target", "data.target_window", "--target-window", 1)]
    if config.model.kind == "cyclegan":
        outputs.append(("input", "data.input_window", "--input-window", 0))
    low, high = CT_RANGE
    for role, field, flag, index in outputs:
        window = getattr(config.data, field.split(".")[1])
        if (window.low <= low and window.high >= high) or decided[index] != "HU":
            continue
        if recorded[index] != "HU":
            logger.warning(
                "%s %g..%g clips the %s domain, whose values look like CT in HU (%s records "
                "no units): outputs stay inside the window",
                field, window.low, window.high, role, dataset,
            )  # fmt: skip
        else:
            raise ValueError(
                f"{field} {window.low:g}..{window.high:g} HU cannot give the CT values of the "
                f"{role} domain of {dataset}: a model output in HU needs a window covering at "
                f"least {low:g}..{high:g} HU (values outside it are clipped); give {flag} "
                f"{low:g} {high - low:g} or a wider one, or leave it out"
            )


def _split_names(summary: DatasetSummary, split: str) -> list[str]:
    return [split] if summary.kind == "paired" else [f"{split}A", f"{split}B"]


def _train_splits(summary: DatasetSummary, split: str) -> list:
    names = _split_names(summary, split)
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


def _validation(data, summary: DatasetSummary) -> str | None:
    """The validation dataset folder: ``data.validation``, or ``dataset`` if it has the split."""
    if data.validation is not None:
        folder = os.path.abspath(data.validation)
        _train_splits(read_summary(folder), data.eval_split)  # raises if the split is missing
        load_builder(folder)
        return folder
    try:
        _train_splits(summary, data.eval_split)
    except ValueError:
        return None
    return str(summary.path)
