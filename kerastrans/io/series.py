"""DICOM series: files grouped by SeriesInstanceUID, slices ordered in space.

File names say nothing reliable about slice order (``IM10`` sorts before
``IM2``; exported names are often random UIDs), and InstanceNumber may run
either way, so slices are ordered by their position along the slice normal:
ImagePositionPatient projected on the cross product of the two direction
cosines of ImageOrientationPatient.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from tqdm.auto import tqdm

from kerastrans.errors import file_error
from kerastrans.io.dicom import DICOM_SUFFIXES, dataset_slices, is_dicom_file, read_dataset
from kerastrans.io.files import find_images
from kerastrans.io.slice import Slice

__all__ = ["Series", "dicom_files", "read_series"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Series:
    """The slices of one DICOM series, in spatial order.

    Attributes:
        uid: SeriesInstanceUID, or `None` for files that lack it.
        slices: The slices, ordered by `Slice.position` (increasing mm along
            the slice normal); by InstanceNumber when a slice has no position.
        paths: The file each slice was read from, aligned with ``slices``
            (a multi-frame file appears once per frame).
    """

    uid: str | None
    slices: list[Slice]
    paths: list[Path]


def read_series(root: str | os.PathLike, *, progress: bool = False) -> list[Series]:
    """Read every DICOM file under a folder, grouped into series and ordered in space.

    Files with a DICOM suffix or the ``DICM`` marker are read (see
    `find_images`); other images in the folder are not part of any series.

    Args:
        root: Folder searched recursively.
        progress: Show a progress bar while reading.

    Returns:
        The series, sorted by UID. Within one, slices are sorted by position
        along the slice normal (ties by InstanceNumber, then file and frame);
        if any slice lacks a position, the series is sorted by InstanceNumber
        and a warning is logged.

    Raises:
        DataError: If ``root`` is missing, holds no DICOM files, or a file
            cannot be read.
    """
    paths = dicom_files(root)
    if not paths:
        raise file_error(root, "no DICOM files under it")
    groups: dict[str | None, list[tuple[Slice, Path, int | None, int]]] = {}
    for path in tqdm(paths, desc="reading DICOM", unit="file", disable=not progress):
        dataset = read_dataset(path)
        instance = _instance_number(dataset.get("InstanceNumber"))
        for frame, slice_ in enumerate(dataset_slices(dataset, path)):
            groups.setdefault(slice_.series, []).append((slice_, path, instance, frame))
    return [
        _ordered(uid, entries) for uid, entries in sorted(groups.items(), key=lambda g: g[0] or "")
    ]


def dicom_files(root: str | os.PathLike) -> list[Path]:
    """The DICOM files under ``root`` (recursively): a DICOM suffix or the ``DICM`` marker.

    Raises:
        DataError: If ``root`` is missing.
    """
    return [
        path
        for path in find_images(root)
        if path.suffix.lower() in DICOM_SUFFIXES or is_dicom_file(path)
    ]


def _instance_number(value: object) -> int | None:
    """InstanceNumber as an int, or `None` when missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ordered(uid: str | None, entries: list[tuple[Slice, Path, int | None, int]]) -> Series:
    """Build a `Series` from its (slice, path, instance number, frame) entries, in order."""

    def by_instance(entry: tuple[Slice, Path, int | None, int]) -> tuple:
        _, path, instance, frame = entry
        return (instance is None, instance or 0, str(path), frame)

    if all(entry[0].position is not None for entry in entries):
        entries = sorted(entries, key=lambda entry: (entry[0].position, *by_instance(entry)))
    else:
        logger.warning(
            "series %s: some slices have no ImagePositionPatient/ImageOrientationPatient; "
            "ordering by InstanceNumber",
            uid,
        )
        entries = sorted(entries, key=by_instance)
    return Series(uid, [entry[0] for entry in entries], [entry[1] for entry in entries])
