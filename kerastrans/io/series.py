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
from kerastrans.io.dicom import dataset_slices, is_dicom, read_dataset, slice_position
from kerastrans.io.files import find_images
from kerastrans.io.slice import Slice

__all__ = ["Series", "dicom_files", "order_dicom_files", "read_series", "series_uid"]

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


def series_uid(path: str | os.PathLike) -> str | None:
    """The SeriesInstanceUID of a DICOM file (header only), or `None`.

    Args:
        path: Any image file; files that are not DICOM (by suffix or ``DICM``
            marker, as in `read_series`) have no series.

    Returns:
        The UID, or `None` for other files and DICOM files without one.

    Raises:
        DataError: If a DICOM file cannot be read.
    """
    if not is_dicom(path):
        return None
    uid = read_dataset(path, pixels=False).get("SeriesInstanceUID")
    return str(uid) if uid else None


def dicom_files(root: str | os.PathLike) -> list[Path]:
    """The DICOM files under ``root`` (recursively): a DICOM suffix or the ``DICM`` marker.

    Raises:
        DataError: If ``root`` is missing.
    """
    return [path for path in find_images(root) if is_dicom(path)]


def _instance_number(value: object) -> int | None:
    """InstanceNumber as an int, or `None` when missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def order_dicom_files(paths: list[Path]) -> list[tuple[Path, list[int]]]:
    """Order DICOM files as `read_series` orders their slices, reading headers only.

    For 2.5D inference over files read one at a time: the series one after
    the other (by UID), each in order of position along the slice normal.

    Args:
        paths: DICOM files.

    Returns:
        ``(file, frame order)`` pairs: the files in slice order, each with
        the order of its frames (``[0]`` for a single-frame file).

    Raises:
        DataError: If a file cannot be read, or the frames of a multi-frame
            file are not next to each other in their series' order.
    """
    groups: dict[str | None, list[tuple[float | None, Path, int | None, int]]] = {}
    for path in paths:
        dataset = read_dataset(path, pixels=False)
        uid = str(dataset.SeriesInstanceUID) if "SeriesInstanceUID" in dataset else None
        instance = _instance_number(dataset.get("InstanceNumber"))
        for frame in range(int(dataset.get("NumberOfFrames") or 1)):
            position = slice_position(dataset, frame, path)
            groups.setdefault(uid, []).append((position, path, instance, frame))
    ordered: list[tuple[Path, list[int]]] = []
    for uid, entries in sorted(groups.items(), key=lambda group: group[0] or ""):
        for _, path, _, frame in _sorted(uid, entries):
            if ordered and ordered[-1][0] == path:
                ordered[-1][1].append(frame)
            elif any(done == path for done, _ in ordered):
                raise file_error(
                    path, f"its frames are not next to each other in the order of series {uid}"
                )
            else:
                ordered.append((path, [frame]))
    return ordered


def _ordered(uid: str | None, entries: list[tuple[Slice, Path, int | None, int]]) -> Series:
    """Build a `Series` from its (slice, path, instance number, frame) entries, in order."""
    keyed = [
        (item.position, path, instance, frame, item) for item, path, instance, frame in entries
    ]
    ordered = _sorted(uid, keyed)
    return Series(uid, [entry[-1] for entry in ordered], [entry[1] for entry in ordered])


def _sorted(uid: str | None, entries: list[tuple]) -> list[tuple]:
    """Sort ``(position, path, instance number, frame, ...)`` entries of one series.

    By position when every entry has one (ties by InstanceNumber, file,
    frame), else by InstanceNumber with a warning.
    """

    def by_instance(entry: tuple) -> tuple:
        _, path, instance, frame = entry[:4]
        return (instance is None, instance or 0, str(path), frame)

    if all(entry[0] is not None for entry in entries):
        return sorted(entries, key=lambda entry: (entry[0], *by_instance(entry)))
    logger.warning(
        "series %s: some slices have no ImagePositionPatient/ImageOrientationPatient; "
        "ordering by InstanceNumber",
        uid,
    )
    return sorted(entries, key=by_instance)
