"""DICOM slices in physical units, with pixel spacing and slice position.

Pixel data are decoded by pydicom 3 (uncompressed little/big endian, and JPEG
lossless, JPEG-LS, JPEG 2000 and RLE through the installed pylibjpeg plugins),
then passed through pydicom's own `pydicom.pixels.apply_modality_lut`, so CT
values are Hounsfield units (RescaleSlope *and* RescaleIntercept applied, or a
Modality LUT). Enhanced multi-frame files keep their rescale and geometry in
functional group sequences; each frame is read with its own.

Every failure (not DICOM, truncated, undecodable pixels, no pixel data) is a
one-line `DataError` that starts with the file name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut

from kerastrans.errors import file_error
from kerastrans.io.slice import Slice, decoding, stack_to_slices

__all__ = [
    "DICOM_SUFFIXES",
    "dataset_modality",
    "dataset_slices",
    "frame_geometry_tags",
    "functional_attribute",
    "is_dicom",
    "is_dicom_file",
    "read_dataset",
    "read_dicom",
    "slice_position",
]

logger = logging.getLogger(__name__)

#: File name suffixes always read as DICOM (other files are recognised by content).
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
#: Elements that hold pixel data of some kind.
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
#: Byte offset and value of the DICOM file marker (Part 10 preamble + "DICM").
_MARKER_OFFSET, _MARKER = 128, b"DICM"


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Return whether ``path`` is a file with the DICOM Part 10 marker ``DICM`` at byte 128.

    Used to recognise DICOM files without a suffix (``IM0001``) or named by
    UID (``1.2.840...5``). Unreadable files are not DICOM.
    """
    try:
        with open(path, "rb") as file:
            file.seek(_MARKER_OFFSET)
            return file.read(len(_MARKER)) == _MARKER
    except OSError:
        return False


def is_dicom(path: str | os.PathLike) -> bool:
    """Return whether ``path`` is read as DICOM: a DICOM suffix, or the ``DICM`` marker."""
    return Path(path).suffix.lower() in DICOM_SUFFIXES or is_dicom_file(path)


def read_dicom(path: str | os.PathLike) -> list[Slice]:
    """Read a DICOM file as slices in physical units.

    Args:
        path: A DICOM Part 10 file (single- or multi-frame, any transfer
            syntax pydicom and the installed plugins decode).

    Returns:
        One `Slice` per frame, float32 ``H x W x C``: ``C = 1`` for grayscale
        (modality LUT applied: HU for CT), ``C = 3`` for colour (RGB, YBR
        converted to RGB, palette colour expanded). Ids are ``"<path>"`` for a
        single frame and ``"<path>#<frame>"`` otherwise.

    Raises:
        DataError: If the file is not DICOM, is truncated, has no pixel data,
            or its pixel data cannot be decoded.

    >>> from pydicom.data import get_testdata_file
    >>> [ct] = read_dicom(get_testdata_file("CT_small.dcm"))
    >>> ct.pixels.shape, ct.spacing
    ((128, 128, 1), (0.661468, 0.661468))
    """
    return dataset_slices(read_dataset(path), path)


def read_dataset(path: str | os.PathLike, *, pixels: bool = True) -> Dataset:
    """Read a DICOM file with pydicom, turning every failure into a one-line `DataError`.

    Args:
        path: The file.
        pixels: Whether to read the pixel data too (``False`` reads the header
            only, for writing derived images or sorting).

    Returns:
        The dataset, checked to hold elements and, if ``pixels``, pixel data.

    Raises:
        DataError: If the file is missing, not DICOM, truncated or has no
            pixel data.
    """
    if not os.path.isfile(path):
        raise file_error(path, "no such file")
    with decoding(path, "cannot read DICOM"):
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=not pixels)
        except InvalidDicomError as error:  # its message suggests force=True: not for users
            raise file_error(path, "not a DICOM file (no 'DICM' marker at byte 128)") from error
    if len(dataset) == 0:
        raise file_error(path, "no data elements after the file meta information (truncated?)")
    if pixels and not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
        raise file_error(path, "no pixel data (not an image, or the file is truncated)")
    return dataset


def dataset_slices(dataset: Dataset, path: str | os.PathLike) -> list[Slice]:
    """Decode the frames of ``dataset`` (read from ``path``) into `Slice` objects.

    See `read_dicom` for what the slices hold.
    """
    with decoding(path, "cannot decode pixel data"):
        array = dataset.pixel_array
        frames = int(dataset.get("NumberOfFrames") or 1)
        photometric = str(dataset.get("PhotometricInterpretation", ""))
        if photometric == "PALETTE COLOR":
            array = apply_color_lut(array, dataset)
        elif int(dataset.get("SamplesPerPixel", 1)) == 1:
            array = _apply_modality(array.reshape(frames, *array.shape[-2:]), dataset)
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        array = array.reshape(frames, rows, columns, -1)
    geometry = [_frame_geometry(dataset, index, path) for index in range(frames)]
    return stack_to_slices(
        array,
        path,
        channels=True,
        spacing=[spacing for spacing, _ in geometry],
        positions=[position for _, position in geometry],
        series=str(dataset.SeriesInstanceUID) if "SeriesInstanceUID" in dataset else None,
        modality=dataset_modality(dataset),
    )


def dataset_modality(dataset: Dataset) -> str | None:
    """The DICOM Modality of ``dataset`` (``"CT"``, ``"MR"`` ...), or `None` when not given."""
    modality = str(dataset.get("Modality") or "").strip().upper()
    return modality or None


def _apply_modality(frames: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Apply the modality LUT / rescale of each frame with pydicom's `apply_modality_lut`.

    Classic images carry RescaleSlope/RescaleIntercept (or a Modality LUT
    Sequence) at the top level; enhanced multi-frame images carry them in
    the Pixel Value Transformation functional group, shared or per frame.
    """
    if "ModalityLUTSequence" in dataset or "RescaleSlope" in dataset:
        return apply_modality_lut(frames, dataset)
    out = np.empty(frames.shape, dtype=np.float64)
    for index, frame in enumerate(frames):
        rescale = Dataset()
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            value = functional_attribute(
                dataset, index, "PixelValueTransformationSequence", keyword
            )
            if value is not None:
                setattr(rescale, keyword, value)
        out[index] = apply_modality_lut(frame, rescale)
    return out


def functional_attribute(dataset: Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """Return ``keyword`` of frame ``frame`` from an enhanced image's functional groups.

    Looks in the Per-frame Functional Groups Sequence item of ``frame``, then
    in the Shared Functional Groups Sequence; returns `None` when neither has
    ``sequence`` with ``keyword``.
    """
    groups = []
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        items = group.get(sequence)
        if items and items[0].get(keyword) is not None:
            return items[0].get(keyword)
    return None


def frame_geometry_tags(dataset: Dataset, frame: int) -> dict[str, Any]:
    """Return PixelSpacing, SliceThickness, ImageOrientationPatient, ImagePositionPatient.

    Values of the frame's functional groups (enhanced images) come first,
    then top-level values (classic images). A top-level ImagePositionPatient
    of a multi-frame file describes frame 0 only, so it is not used for the
    other frames. Missing tags are left out of the result.
    """
    frames = int(dataset.get("NumberOfFrames") or 1)
    sources = {
        "PixelSpacing": "PixelMeasuresSequence",
        "SliceThickness": "PixelMeasuresSequence",
        "ImageOrientationPatient": "PlaneOrientationSequence",
        "ImagePositionPatient": "PlanePositionSequence",
    }
    tags = {}
    for keyword, sequence in sources.items():
        value = functional_attribute(dataset, frame, sequence, keyword)
        top_level_applies = keyword != "ImagePositionPatient" or frames == 1 or frame == 0
        if value is None and top_level_applies:
            value = dataset.get(keyword)
        if value is not None:
            tags[keyword] = value
    return tags


def slice_position(dataset: Dataset, frame: int, path: str | os.PathLike) -> float | None:
    """Position (mm) of frame ``frame`` along the slice normal, or `None` without geometry.

    Needs the header only (``read_dataset(path, pixels=False)``); the same
    value as `kerastrans.io.Slice.position` of that frame.
    """
    return _frame_geometry(dataset, frame, path)[1]


def _frame_geometry(
    dataset: Dataset, frame: int, path: str | os.PathLike
) -> tuple[tuple[float, float] | None, float | None]:
    """Return (pixel spacing in mm, position along the slice normal in mm) of one frame."""
    tags = frame_geometry_tags(dataset, frame)
    spacing = _floats(tags.get("PixelSpacing"), 2, "PixelSpacing", path)
    orientation = _floats(tags.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    origin = _floats(tags.get("ImagePositionPatient"), 3, "ImagePositionPatient", path)
    spacing = None if spacing is None else (float(spacing[0]), float(spacing[1]))
    if orientation is None or origin is None:
        return spacing, None
    return spacing, float(np.dot(origin, _normal(orientation)))


def _normal(orientation: np.ndarray) -> np.ndarray:
    """Unit normal of the slice plane: row direction x column direction."""
    normal = np.cross(orientation[:3], orientation[3:])
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 0 else normal


def _floats(
    value: Sequence[float] | None, count: int, keyword: str, path: str | os.PathLike
) -> np.ndarray | None:
    """``value`` as ``count`` floats, or `None` (logged) when missing or malformed."""
    if value is None:
        return None
    try:
        numbers = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        numbers = np.empty(0)
    if numbers.shape != (count,) or not np.isfinite(numbers).all():
        logger.warning("%s: ignoring malformed %s %r", os.fspath(path), keyword, value)
        return None
    return numbers
