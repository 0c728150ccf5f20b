"""Derived DICOM slices: a model's output written under its source's header.

The result is a new instance of a new series that a PACS or viewer accepts
next to the original: new SOP Instance UID (also in the file meta), the
caller's Series Instance UID, ImageType ``DERIVED\\SECONDARY``, a reference to
the source image, and the source's patient, study and geometry tags
(PixelSpacing, ImagePositionPatient, ImageOrientationPatient,
SliceThickness). Pixels are stored as 16-bit integers with a RescaleSlope and
RescaleIntercept chosen so that the values fit; signed when a stored value is
negative, so negative HU never wrap around through an unsigned source type.
The file is always uncompressed Explicit VR Little Endian and written
atomically.
"""

from __future__ import annotations

import copy
import logging
import os

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds

from kerastrans import __version__
from kerastrans.atomic import atomic_path
from kerastrans.config import Window
from kerastrans.io.dicom import frame_geometry_tags, functional_attribute, read_dataset

__all__ = ["write_derived_dicom"]

logger = logging.getLogger(__name__)

#: Elements that describe the source's pixel data or encoding and are wrong for ours.
_STALE_KEYWORDS = (
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "ModalityLUTSequence",
    "IconImageSequence",
    "DerivationCodeSequence",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "DataSetTrailingPadding",
)
#: Multi-frame structure removed when one frame of an enhanced image becomes a classic slice.
_MULTI_FRAME_KEYWORDS = (
    "NumberOfFrames",
    "FrameIncrementPointer",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "DimensionOrganizationSequence",
    "DimensionIndexSequence",
)
#: Classic storage class of one frame of an enhanced multi-frame image (else Secondary Capture).
_CLASSIC_SOP_CLASS = {
    "1.2.840.10008.5.1.4.1.1.2.1": "1.2.840.10008.5.1.4.1.1.2",  # Enhanced CT -> CT
    "1.2.840.10008.5.1.4.1.1.4.1": "1.2.840.10008.5.1.4.1.1.4",  # Enhanced MR -> MR
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: Byte size of the values of binary VRs, swapped when the source was big endian.
_BINARY_VR_ITEMSIZE = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
#: Stored levels used at most (of 65536), leaving room for rounding at both ends.
_MAX_LEVELS = 65532


def write_derived_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    source: str | os.PathLike | Dataset,
    *,
    series_uid: str,
    series_description: str = "kerastrans",
    frame: int | None = None,
    rescale_slope: float | None = None,
    window: Window | None = None,
    default_window: Window | None = None,
    instance_number: int | None = None,
    series_number: int | None = None,
) -> None:
    """Write ``pixels`` as a derived DICOM slice that takes its header from ``source``.

    The values are stored as ``round((value - RescaleIntercept) / RescaleSlope)``
    in 16 bits, so a reader's modality LUT gives them back within
    ``RescaleSlope / 2`` (0.5 HU at the usual slope of 1). The slope is the
    source's (1 if it has none) unless ``rescale_slope`` is given, and is only
    made coarser when the value range needs more than 16 bits. The intercept
    is 0 when the values fit signed or unsigned 16 bits as they are, else
    the middle of their range. The stored type is int16 as soon as a stored
    value is negative, whatever the source's PixelRepresentation.

    Args:
        path: Output file; written atomically.
        pixels: One image ``H x W`` or ``H x W x 1`` in physical units (HU
            for CT). Its size may differ from the source's (Rows/Columns and
            PixelSpacing are not rescaled: pass a matching source for
            super-resolution).
        source: The source slice, as a DICOM file or a pydicom `Dataset`
            (not modified). Compressed, big-endian and multi-frame sources work.
        series_uid: SeriesInstanceUID of the derived series; use one
            `pydicom.uid.generate_uid()` for all slices of a series.
        series_description: SeriesDescription of the derived series.
        frame: Frame of a multi-frame ``source`` the slice derives from; its
            geometry becomes the slice's and the SOP class becomes the
            classic one (CT/MR Image Storage, else Secondary Capture).
        rescale_slope: Value step of one stored unit; the precision of the
            stored values (max error ``rescale_slope / 2``).
        window: The display window (`Window`, physical units), written as
            WindowCenter/WindowWidth; by default the source's window is kept.
        default_window: The display window of a source without one of its
            own, when ``window`` is `None`.
        instance_number: InstanceNumber; by default the source's.
        series_number: SeriesNumber; by default the source's.

    Raises:
        ValueError: For pixels that are not one finite image, an invalid UID,
            or ``frame``, or a ``rescale_slope`` that is not > 0.
        TypeError: For a window that is not a `Window`.
        DataError: If ``source`` is a file that cannot be read as DICOM.
    """
    values = _one_image(pixels)
    window = _center_width(window, "window")
    default_window = _center_width(default_window, "default_window")
    if not UID(series_uid).is_valid:
        raise ValueError(f"series_uid must be a valid DICOM UID, got {series_uid!r}")
    if rescale_slope is not None and not rescale_slope > 0:
        raise ValueError(f"rescale_slope must be > 0, got {rescale_slope}")
    dataset, source_slope = _source_header(source, frame)
    _set_pixels(dataset, values, float(rescale_slope or source_slope))
    dataset.SeriesInstanceUID = series_uid
    dataset.SeriesDescription = series_description
    dataset.ImageType = ["DERIVED", "SECONDARY", *_values(dataset.get("ImageType"))[2:3]]
    dataset.DerivationDescription = f"kerastrans {__version__}"
    if instance_number is not None:
        dataset.InstanceNumber = int(instance_number)
    if series_number is not None:
        dataset.SeriesNumber = int(series_number)
    if window is None and "WindowCenter" not in dataset:
        window = default_window
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
        for keyword in ("WindowCenterWidthExplanation", "VOILUTSequence", "VOILUTFunction"):
            dataset.pop(keyword, None)
    with atomic_path(path) as tmp:
        dcmwrite(tmp, dataset, enforce_file_format=True)


def _source_header(source: str | os.PathLike | Dataset, frame: int | None) -> tuple[Dataset, float]:
    """Copy the source header for a derived slice; return it and the source's RescaleSlope.

    The copy has no pixel data or pixel-dependent elements, is single-frame
    (see `_as_single_frame`), holds binary values little endian, and refers
    to the source in its Source Image Sequence. The slope is 1 when the
    source has none (or an invalid one).
    """
    if isinstance(source, Dataset):
        dataset = copy.deepcopy(source)
    else:
        dataset = read_dataset(source, pixels=False)
    for keyword in _STALE_KEYWORDS:
        dataset.pop(keyword, None)
    if _is_big_endian(dataset):
        _byteswap_binary_elements(dataset)
    dataset.SourceImageSequence = DicomSequence([_reference(dataset, frame)])
    slope = float(_as_single_frame(dataset, frame) or 1.0)
    return dataset, slope if slope > 0 else 1.0


def _set_pixels(dataset: Dataset, values: np.ndarray, slope: float) -> None:
    """Store ``values`` (physical units) in ``dataset`` as 16-bit integers with a rescale.

    Also gives the dataset a new SOP Instance UID and fresh file meta
    information for uncompressed Explicit VR Little Endian.
    """
    stored, dataset.RescaleSlope, dataset.RescaleIntercept = _stored_values(values, slope)
    if "SOPClassUID" not in dataset:
        dataset.SOPClassUID = _SECONDARY_CAPTURE
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset.file_meta.ImplementationVersionName = f"KERASTRANS_{__version__}"[:16]
    inverted = dataset.get("PhotometricInterpretation") == "MONOCHROME1"
    # Sets Rows/Columns, Bits*, PixelRepresentation, and a new SOP Instance UID (also in meta).
    dataset.set_pixel_data(stored, "MONOCHROME1" if inverted else "MONOCHROME2", 16)


def _one_image(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a finite float64 ``H x W`` array, or a `ValueError`."""
    values = np.asarray(pixels, dtype=np.float64)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"pixels must be one image H x W or H x W x 1, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("pixels hold NaN or infinite values, which DICOM cannot store")
    return values


def _stored_values(values: np.ndarray, slope: float) -> tuple[np.ndarray, str, str]:
    """Choose RescaleSlope/RescaleIntercept and return (stored int16/uint16, slope, intercept).

    Slope and intercept are returned as the Decimal Strings written to the
    file, and the stored values are computed from exactly those numbers.
    """
    low, high = float(values.min()), float(values.max())
    if (high - low) / slope > _MAX_LEVELS:
        coarser = (high - low) / _MAX_LEVELS * (1 + 1e-6)  # rounded up: never too fine
        logger.info("values span %g..%g: RescaleSlope %g -> %g", low, high, slope, coarser)
        slope = coarser
    slope_ds = format_number_as_ds(float(slope))
    slope = float(slope_ds)
    intercept = 0.0
    first, last = round(low / slope), round(high / slope)
    if not (first >= 0 and last <= 65535) and not (first >= -32768 and last <= 32767):
        intercept = slope * round((low + high) / (2 * slope))
    intercept_ds = format_number_as_ds(float(intercept))
    stored = np.round((values - float(intercept_ds)) / slope)
    dtype = np.uint16 if stored.min() >= 0 else np.int16
    info = np.iinfo(dtype)
    if stored.min() < info.min or stored.max() > info.max:  # cannot happen by construction
        raise RuntimeError(f"stored values [{stored.min()}, {stored.max()}] overflow {dtype}")
    return stored.astype(dtype), slope_ds, intercept_ds


def _is_big_endian(dataset: Dataset) -> bool:
    """Whether ``dataset`` was decoded from a big-endian encoding."""
    syntax = getattr(dataset, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is not None and syntax.is_transfer_syntax:
        return not syntax.is_little_endian
    return dataset.original_encoding[1] is False


def _byteswap_binary_elements(dataset: Dataset) -> None:
    """Make the raw bytes of OW/OF/OL/OD/OV values little endian; drop UN values.

    pydicom decodes numbers (US, FL ...) but keeps binary values as the file's
    bytes, which would be wrong once written little endian. UN values cannot
    be swapped without knowing their type, so they are removed.
    """
    for element in list(dataset):
        if element.VR == "SQ":
            for item in element.value:
                _byteswap_binary_elements(item)
        elif element.VR in _BINARY_VR_ITEMSIZE and isinstance(element.value, bytes):
            itemsize = _BINARY_VR_ITEMSIZE[element.VR]
            words = np.frombuffer(element.value, f">u{itemsize}")
            element.value = words.astype(f"<u{itemsize}").tobytes()
        elif element.VR == "UN":
            del dataset[element.tag]


def _reference(dataset: Dataset, frame: int | None) -> Dataset:
    """A Source Image Sequence item pointing at the source instance (and frame)."""
    item = Dataset()
    item.ReferencedSOPClassUID = dataset.get("SOPClassUID", _SECONDARY_CAPTURE)
    if "SOPInstanceUID" in dataset:
        item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    if frame is not None and int(dataset.get("NumberOfFrames") or 1) > 1:
        item.ReferencedFrameNumber = frame + 1  # DICOM frame numbers start at 1
    return item


def _as_single_frame(dataset: Dataset, frame: int | None) -> float | None:
    """Turn ``dataset`` into a single-frame header for ``frame``; return its RescaleSlope.

    For a multi-frame source, the frame's geometry (from functional groups or
    top-level tags) is written at the top level and the multi-frame structure
    is removed.
    """
    frames = int(dataset.get("NumberOfFrames") or 1)
    if frames == 1 and frame in (None, 0):
        return dataset.get("RescaleSlope")
    if frame is None or not 0 <= frame < frames:
        raise ValueError(f"frame must be in [0, {frames}) for a {frames}-frame source, got {frame}")
    slope = dataset.get("RescaleSlope") or functional_attribute(
        dataset, frame, "PixelValueTransformationSequence", "RescaleSlope"
    )
    tags = frame_geometry_tags(dataset, frame)
    dataset.pop("ImagePositionPatient", None)  # a top-level position is frame 0's
    for keyword, value in tags.items():
        setattr(dataset, keyword, value)
    for keyword in _MULTI_FRAME_KEYWORDS:
        dataset.pop(keyword, None)
    sop_class = str(dataset.get("SOPClassUID", ""))
    dataset.SOPClassUID = _CLASSIC_SOP_CLASS.get(sop_class, _SECONDARY_CAPTURE)
    return slope


def _center_width(window: Window | None, name: str) -> tuple[str, str] | None:
    """DICOM's (WindowCenter, WindowWidth) of a `Window`: the one place of that convention."""
    if window is None:
        return None
    window = Window.from_value(window, name)
    return format_number_as_ds(window.center), format_number_as_ds(window.width)


def _values(value: object) -> list:
    """A DICOM value as a list: multi-valued elements as their values, `None` as []."""
    if value is None:
        return []
    return list(value) if isinstance(value, MultiValue) else [value]
