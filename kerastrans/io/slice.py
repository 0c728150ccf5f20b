"""`Slice`: one 2-D image in physical units, the unit every reader returns.

Readers of each format (DICOM, PNG/JPEG/TIFF, NPY) decode a file into a stack
of images and turn it into `Slice` objects with `stack_to_slices`, which also
rejects non-finite values: an image with NaN or inf pixels cannot be windowed,
trained on or compared, so it is refused when read rather than deep inside
training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np

from kerastrans.errors import DataError, file_error

__all__ = ["Slice", "decoding", "frame_id", "modality_mismatch", "stack_to_slices"]


@dataclasses.dataclass(frozen=True)
class Slice:
    """One 2-D image in physical units.

    Attributes:
        pixels: float32 array ``H x W x C`` (``C >= 1``). Hounsfield units (HU)
            for CT, the stored values (after any modality rescale) for MR and
            other DICOM, the stored values for PNG/JPEG/TIFF/NPY.
        id: ``"<path>"``, or ``"<path>#<frame index>"`` for a frame of a
            multi-frame DICOM file or of a 3-D TIFF/NPY stack.
        spacing: Distance in mm between rows and between columns (DICOM
            PixelSpacing), or `None` when the file does not say.
        position: Position in mm along the slice normal (DICOM
            ImagePositionPatient projected on the normal of
            ImageOrientationPatient), or `None`.
        series: DICOM SeriesInstanceUID, or `None`.
        modality: DICOM Modality (``"CT"``, ``"MR"``, ``"NM"`` ...), or `None`
            for other formats and DICOM files without it. Only CT pixels are HU.
    """

    pixels: np.ndarray
    id: str
    spacing: tuple[float, float] | None = None
    position: float | None = None
    series: str | None = None
    modality: str | None = None


def modality_mismatch(
    path: str | os.PathLike,
    modality: str | None,
    other: str | os.PathLike,
    other_modality: str | None,
    where: str,
) -> DataError:
    """The one-line error for two files of different modality in one domain.

    >>> str(modality_mismatch("b.dcm", "MR", "a.dcm", "CT", "(same domain: input)"))
    'b.dcm: modality MR, but a.dcm (same domain: input) is CT; build one dataset per modality'
    """

    def name(value: str | None) -> str:
        return value if value is not None else "not given (not DICOM, or no Modality)"

    return file_error(
        path,
        f"modality {name(modality)}, but {os.fspath(other)} {where} is "
        f"{name(other_modality)}; build one dataset per modality",
    )


def frame_id(path: str | os.PathLike, index: int, count: int) -> str:
    """Return the `Slice.id` of frame ``index`` of a file holding ``count`` images."""
    return os.fspath(path) if count == 1 else f"{os.fspath(path)}#{index}"


def stack_to_slices(
    stack: np.ndarray,
    path: str | os.PathLike,
    *,
    channels: bool,
    spacing: Sequence[tuple[float, float] | None] | None = None,
    positions: Sequence[float | None] | None = None,
    series: str | None = None,
    modality: str | None = None,
) -> list[Slice]:
    """Split a decoded ``N x H x W [x C]`` stack into checked float32 `Slice` objects.

    Args:
        stack: Decoded pixels, ``N x H x W`` (``channels=False``) or
            ``N x H x W x C`` (``channels=True``); integer, boolean or float.
        path: The file the pixels come from (ids and error messages).
        channels: Whether the last axis of ``stack`` holds channels.
        spacing: Per-image pixel spacing in mm, or `None`.
        positions: Per-image position along the slice normal in mm, or `None`.
        series: Series UID shared by the images.
        modality: DICOM Modality shared by the images.

    Returns:
        One `Slice` per image, ids as given by `frame_id`.

    Raises:
        DataError: If the values are not real numbers, an image is empty, or a
            value is NaN or infinite.
    """
    stack = np.asarray(stack)
    if stack.dtype.kind not in "biuf":
        raise file_error(path, f"pixel values of type {stack.dtype} are not real numbers")
    if not channels:
        stack = stack[..., np.newaxis]
    if stack.ndim != 4 or 0 in stack.shape:
        raise file_error(path, f"cannot read images from an array of shape {stack.shape}")
    pixels = stack.astype(np.float32)
    if not np.isfinite(pixels).all():
        bad = int(np.count_nonzero(~np.isfinite(pixels)))
        raise file_error(path, f"{bad} pixel values are NaN or infinite (or overflow float32)")
    count = len(pixels)
    spacing = spacing or [None] * count
    positions = positions or [None] * count
    return [
        Slice(pixels[i], frame_id(path, i, count), spacing[i], positions[i], series, modality)
        for i in range(count)
    ]


@contextlib.contextmanager
def decoding(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn any failure of a third-party decoder inside the block into a `DataError`.

    Decoders (pydicom and its plugins, Pillow, tifffile, numpy) raise many
    exception types on corrupt input (``ValueError``, ``OSError``,
    ``SyntaxError``, ``struct.error``, ``KeyError`` ...). Callers want one
    kind, with the file name, so the failure is re-raised as
    ``DataError("<path>: <what>: <decoder message>")``, chained to the original.

    Args:
        path: The file being decoded.
        what: What was being done, e.g. ``"cannot decode pixel data"``.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as error:  # decoders raise arbitrary types on bad data
        detail = str(error) or type(error).__name__
        raise file_error(path, f"{what}: {detail}") from error
