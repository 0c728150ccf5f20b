"""Datasets of 2-D slices in the TFDS format, written atomically.

A dataset folder holds TFRecord shards, ``features.json``,
``dataset_info.json`` and ``metadata.json``, as written by
tensorflow-datasets, so any TFDS reader opens it
(``tfds.builder_from_directory(folder)``). Images are float32 ``H x W x C`` in
physical units (HU for CT); the window to [-1, 1] is applied by the pipeline,
never stored.

Features of a paired dataset (splits such as ``train``, ``test``):

- ``input``, ``target``: float32 ``H x W x C`` (sizes may differ per example
  and between input and target, e.g. super-resolution);
- ``id``: text, the source path or ``<path>#<frame>``;
- ``series``: text, the DICOM SeriesInstanceUID or ``""``;
- ``position``: float32, mm along the slice normal, NaN when unknown.

An unpaired dataset has one split per domain (``trainA``, ``trainB``, ...) and
an ``image`` feature instead of ``input``/``target``. Examples are stored in
the order given (TFDS shuffling is disabled), so that the slices of a series
stay neighbours for 2.5D stacks; the pipeline shuffles when it reads.

Nothing is downloaded: the TFDS builder is told never to look on GCS.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from kerastrans._compat import local_adhoc_builder, tfds_progress_bars
from kerastrans.atomic import atomic_directory, check_output_folder
from kerastrans.data.checks import Modalities, checked_examples
from kerastrans.data.shards import check_shards
from kerastrans.data.summary import DatasetSummary, SplitAccumulator
from kerastrans.errors import DataError, file_error

__all__ = [
    "IMAGE_KEYS",
    "DatasetSummary",
    "check_output",
    "is_dataset",
    "load_builder",
    "read_metadata",
    "read_summary",
    "write_dataset",
]

logger = logging.getLogger(__name__)

#: Image features per kind of dataset.
IMAGE_KEYS = {"paired": ("input", "target"), "unpaired": ("image",)}
#: Version of the dataset layout written here (TFDS version of every dataset).
FORMAT_VERSION = "1.0.0"
_METADATA_FILE = "metadata.json"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def write_dataset(
    out_dir: str | os.PathLike,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    metadata: Mapping[str, Any] | None = None,
    description: str = "",
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetSummary:
    """Write examples as a TFDS-format dataset at ``out_dir``, atomically.

    The dataset is built in a hidden sibling folder and renamed to ``out_dir``
    only when complete: an interrupted or failed build leaves nothing at
    ``out_dir``. An existing complete dataset is left untouched (and its
    summary returned with ``reused=True``) unless ``overwrite`` is true, in
    which case it is replaced only once the new one is complete.

    Args:
        out_dir: The dataset folder to create.
        splits: Examples per split name. Paired datasets: dicts with
            ``"input"`` and ``"target"`` (float32 ``H x W x C``, physical units)
            and ``"id"`` (str). Unpaired datasets: one split per domain (e.g.
            ``"trainA"``, ``"trainB"``) of dicts with ``"image"`` and ``"id"``.
            Optional keys: ``"series"`` (str or None) and ``"position"`` (mm
            along the slice normal, or None), used for 2.5D stacks, and
            ``"modality"`` (DICOM Modality, or None, per image key), kept in
            the summary (`ImageStats.modality`, whence ``units``).
        metadata: JSON-serialisable dict saved with the dataset (geometry,
            units, window hints, source); read it back with `read_metadata`.
        description: Free text stored in ``dataset_info.json``.
        overwrite: Replace an existing dataset at ``out_dir``.
        progress: Show a progress bar per split.

    Returns:
        The `DatasetSummary` (counts, shapes and value ranges per split).

    Raises:
        DataError: If an example is malformed (the message names its id), the
            images of one split differ in channels (the message names the odd
            one out), one domain mixes modalities (the message names two
            examples), a split is empty, or ``out_dir`` exists and is not a
            dataset.
        ValueError: If a split name is not made of letters, digits and ``_``.
        TypeError: If ``metadata`` is not JSON-serialisable.
    """
    out_dir = Path(out_dir)
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except TypeError as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from None
    for name in splits:
        if not _SPLIT_NAME.match(name):
            raise ValueError(f"split names must match [A-Za-z0-9_]+, got {name!r}")
    if not splits:
        raise ValueError("splits must name at least one split, got none")
    if out_dir.exists():
        if not is_dataset(out_dir):
            raise file_error(
                out_dir,
                "exists and is not a dataset (no dataset_info.json); "
                "remove it or choose another output folder",
            )
        if not overwrite:
            logger.info("%s: dataset exists, left untouched", out_dir)
            return read_summary(out_dir, reused=True)
    check_output(out_dir)
    try:
        with atomic_directory(out_dir, replace=True) as folder:
            summary = _build(
                folder, _dataset_name(out_dir), splits, metadata, description, progress
            )
    except PermissionError as error:
        where = error.filename or out_dir
        raise file_error(where, f"permission denied; cannot write the dataset {out_dir}") from None
    return DatasetSummary(out_dir, summary.kind, summary.splits)


def check_output(out_dir: str | os.PathLike) -> None:
    """Check, before any source is read, that a dataset can be written at ``out_dir``.

    Raises:
        DataError: One line naming the path at fault: ``out_dir`` is a file, a
            parent is a file, or the nearest existing parent is not writable.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise file_error(out_dir, "is a file, not a dataset folder; choose another output folder")
    try:
        check_output_folder(out_dir)
    except OSError as error:
        raise DataError(str(error)) from None


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a complete dataset folder (it has ``dataset_info.json``)."""
    return (Path(path) / "dataset_info.json").is_file()


def load_builder(dataset_dir: str | os.PathLike) -> tfds.core.DatasetBuilder:
    """Open a dataset folder with `tfds.builder_from_directory`, its shards checked.

    Raises:
        DataError: If the folder is not a TFDS dataset, or a TFRecord shard is
            missing or truncated (`kerastrans.data.shards.check_shards`).
    """
    _check_dataset(dataset_dir)
    builder = tfds.builder_from_directory(os.fspath(dataset_dir))
    check_shards(builder.info.splits.values())
    return builder


def read_metadata(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """Return the ``metadata`` dict given to `write_dataset`.

    Raises:
        DataError: If the folder is not a dataset written by kerastrans.
    """
    return _read_metadata_file(dataset_dir)["metadata"]


def read_summary(dataset_dir: str | os.PathLike, *, reused: bool = False) -> DatasetSummary:
    """Return the `DatasetSummary` stored with a dataset (no data is read).

    Raises:
        DataError: If the folder is not a dataset written by kerastrans.
    """
    stored = _read_metadata_file(dataset_dir)["kerastrans"]
    return DatasetSummary.from_dict(stored, Path(dataset_dir), reused=reused)


# ----------------------------------------------------------------------------------------------
# Building.


def _build(
    folder: Path,
    name: str,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    metadata: dict[str, Any],
    description: str,
    progress: bool,
) -> DatasetSummary:
    """Write the dataset into the empty folder ``folder``."""
    iterators = {split: iter(examples) for split, examples in splits.items()}
    first_split = next(iter(iterators))
    first = next(iterators[first_split], None)
    if first is None:
        raise DataError(f"split {first_split!r}: no examples")
    iterators[first_split] = itertools.chain([first], iterators[first_split])
    kind = "paired" if isinstance(first, Mapping) and "input" in first else "unpaired"
    keys = IMAGE_KEYS[kind]
    accumulators = {split: SplitAccumulator(keys) for split in splits}
    modalities = Modalities(kind)
    generators = {
        split: checked_examples(
            split, iterators[split], splits[split], keys, accumulators[split], modalities, progress
        )
        for split in splits
    }
    stored = {"metadata": metadata, "kerastrans": {}}
    builder = local_adhoc_builder(
        name=name,
        version=FORMAT_VERSION,
        features=_features(keys),
        split_datasets=generators,
        data_dir=os.fspath(folder / "_build"),
        description=description or f"kerastrans {kind} slices (float32, physical units)",
        file_format="tfrecord",
        metadata=stored,
        supervised_keys=("input", "target") if kind == "paired" else None,
        log=logger,
    )
    with tfds_progress_bars(enabled=False):
        builder.download_and_prepare(
            download_dir=os.fspath(folder / "_downloads"),
            download_config=tfds.download.DownloadConfig(try_download_gcs=False),
        )
    summary = DatasetSummary(
        folder, kind, {split: accumulator.result() for split, accumulator in accumulators.items()}
    )
    # The stats are known only now: update metadata.json before moving the files up.
    stored["kerastrans"] = summary.to_dict()
    built = Path(builder.data_dir)
    (built / _METADATA_FILE).write_text(json.dumps(stored), encoding="utf-8")
    for item in built.iterdir():
        os.replace(item, folder / item.name)
    shutil.rmtree(folder / "_build")
    shutil.rmtree(folder / "_downloads", ignore_errors=True)
    return summary


def _features(keys: tuple[str, ...]) -> tfds.features.FeaturesDict:
    images = {
        key: tfds.features.Tensor(
            shape=(None, None, None),
            dtype=np.float32,
            encoding=tfds.features.Encoding.BYTES,
            doc=f"{key} image, float32 H x W x C, physical units (HU for CT)",
        )
        for key in keys
    }
    return tfds.features.FeaturesDict(
        {
            **images,
            "id": tfds.features.Text(doc="source path or <path>#<frame>"),
            "series": tfds.features.Text(doc="DICOM SeriesInstanceUID, or empty"),
            "position": tfds.features.Scalar(
                dtype=np.float32, doc="mm along the slice normal, NaN when unknown"
            ),
        }
    )


def _dataset_name(out_dir: Path) -> str:
    """A TFDS dataset name (snake_case) from the dataset folder name."""
    name = re.sub(r"[^a-z0-9]+", "_", out_dir.name.lower()).strip("_") or "slices"
    return name if name[0].isalpha() else f"slices_{name}"


def _check_dataset(dataset_dir: str | os.PathLike) -> None:
    if not is_dataset(dataset_dir):
        raise file_error(
            dataset_dir, "not a dataset (no dataset_info.json); build one with 'kerastrans records'"
        )


def _read_metadata_file(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    _check_dataset(dataset_dir)
    path = Path(dataset_dir) / _METADATA_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise file_error(path, f"unreadable dataset metadata ({error})") from None
    if not isinstance(stored, dict) or not {"metadata", "kerastrans"} <= set(stored):
        raise file_error(path, "not written by kerastrans (no 'kerastrans' section)")
    return stored
