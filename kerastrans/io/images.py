"""PNG, JPEG, TIFF and NPY images: read without 8-bit quantisation, write atomically.

Values are returned as stored in the file, as float32 ``H x W x C``: a 16-bit
PNG pixel of 40000 reads as 40000.0, never as 156 (its top byte). Pillow
decodes PNG and JPEG; tifffile decodes TIFF (any bit depth, float, stacks);
NPY is loaded with ``allow_pickle=False`` so that a file cannot run code.

Pillow reduces 16-bit *colour* PNG to 8 bits without telling; such files are
refused with a `DataError` (save them as 16-bit TIFF instead).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from kerastrans.atomic import atomic_path
from kerastrans.errors import file_error
from kerastrans.io.slice import Slice, decoding, stack_to_slices

__all__ = ["read_npy", "read_pillow", "read_tiff", "write_image"]

#: Pillow modes whose pixels are taken as they are (others are converted to RGB/RGBA).
_PILLOW_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I", "F")
#: PNG colour types that carry several samples (grey+alpha, RGB, RGBA).
_PNG_MULTI_SAMPLE = (2, 4, 6)
#: Channels a 3-D NPY array may have on its last axis; more means a stack of slices.
_NPY_MAX_CHANNELS = 4
#: Integer storage types of `write_image`, with their value range.
_STORED_RANGE = {"uint8": (0, 255), "uint16": (0, 65535)}


def read_pillow(path: str | os.PathLike) -> list[Slice]:
    """Read a PNG or JPEG (or other Pillow-readable) image without quantisation.

    Modes map to channels as stored: ``L``/``I;16``/``I``/``F`` give 1 channel
    (8-bit, 16-bit, 32-bit integer, float), ``LA`` 2, ``RGB`` 3, ``RGBA`` 4.
    Palette (``P``) images give their palette *indices* in 1 channel, which
    is what label maps stored as palette PNG mean; other modes (CMYK, YCbCr)
    are converted to RGB(A).

    Args:
        path: The image file.

    Returns:
        One `Slice` with float32 ``H x W x C`` stored values.

    Raises:
        DataError: If Pillow cannot decode the file, or it is a 16-bit colour
            PNG, which Pillow would silently reduce to 8 bits.
    """
    with decoding(path, "cannot read image"):
        _refuse_16bit_colour_png(path)
        with Image.open(path) as image:
            image.load()
            if image.mode not in _PILLOW_MODES and not image.mode.startswith("I;16"):
                image = image.convert("RGBA" if "A" in image.mode else "RGB")
            array = np.asarray(image)
    return stack_to_slices(array[np.newaxis], path, channels=array.ndim == 3)


def _refuse_16bit_colour_png(path: str | os.PathLike) -> None:
    """Raise if ``path`` is a PNG with 16-bit samples and more than one channel."""
    with open(path, "rb") as file:
        header = file.read(26)
    is_png = header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    if is_png and header[24] == 16 and header[25] in _PNG_MULTI_SAMPLE:
        raise file_error(
            path,
            "16-bit colour PNG cannot be read without reducing it to 8 bits (Pillow); "
            "save it as a 16-bit TIFF or as one grayscale PNG per channel",
        )


def read_tiff(path: str | os.PathLike) -> list[Slice]:
    """Read a TIFF image or stack with tifffile, keeping its bit depth and float values.

    Axes come from the file: ``Y`` and ``X`` are the image, samples (``S``) and
    channels (``C``) become channels, any other axes (pages, ``Z``, ``T``)
    become separate slices with ids ``"<path>#<index>"``. LZW-compressed files
    need the ``imagecodecs`` package; without it, single-channel and 8-bit
    single-page LZW files are read with Pillow, others raise a `DataError`.

    Args:
        path: The ``.tif``/``.tiff`` file.

    Returns:
        One `Slice` per image, float32 ``H x W x C``.

    Raises:
        DataError: If the file is not a readable TIFF, or holds NaN/inf values.
    """
    with decoding(path, "cannot read TIFF"), tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        page = tiff.pages.first
        try:
            array = series.asarray()
        except ValueError as error:
            if "imagecodecs" not in str(error):
                raise
            # One page whose samples Pillow keeps exactly: gray of any depth, or 8-bit.
            if len(tiff.pages) == 1 and (page.samplesperpixel == 1 or page.bitspersample == 8):
                return read_pillow(path)
            raise file_error(path, f"{error} (pip install imagecodecs)") from error
        axes = series.axes
    if "Y" not in axes or "X" not in axes:
        raise file_error(path, f"TIFF axes {axes!r} do not include rows (Y) and columns (X)")
    stack_axes = [i for i, axis in enumerate(axes) if axis not in "YXSC"]
    channel_axes = [i for i, axis in enumerate(axes) if axis in "SC"]
    array = np.transpose(array, [*stack_axes, axes.index("Y"), axes.index("X"), *channel_axes])
    rows, columns = array.shape[len(stack_axes) : len(stack_axes) + 2]
    array = array.reshape(-1, rows, columns, int(np.prod(array.shape[len(stack_axes) + 2 :])))
    return stack_to_slices(array, path, channels=True)


def read_npy(path: str | os.PathLike) -> list[Slice]:
    """Read a NumPy ``.npy`` array as one image or a stack of images.

    Layouts: ``H x W`` is one grayscale image; ``H x W x C`` with ``C <= 4``
    is one image with ``C`` channels; any other 3-D array is a stack
    ``N x H x W`` of grayscale slices; ``N x H x W x C`` is a stack of
    ``C``-channel slices. `write_image` writes arrays that read back the same.
    The file is loaded with ``allow_pickle=False``: object arrays, which
    would run code while loading, are refused.

    Args:
        path: The ``.npy`` file.

    Returns:
        One `Slice` per image, float32 ``H x W x C``.

    Raises:
        DataError: If the file is not an NPY array of real numbers with 2 to 4
            dimensions, holds pickled objects, or holds NaN/inf values.
    """
    with decoding(path, "cannot load NPY array"):
        array = np.load(path, allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise file_error(path, "is an .npz archive, not a single .npy array")
    if array.ndim == 2:
        array = array[np.newaxis, ..., np.newaxis]
    elif array.ndim == 3:
        one_image = array.shape[-1] <= _NPY_MAX_CHANNELS
        array = array[np.newaxis] if one_image else array[..., np.newaxis]
    elif array.ndim != 4:
        raise file_error(path, f"array of shape {array.shape} is not an image (2 to 4 axes)")
    return stack_to_slices(array, path, channels=True)


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    dtype: str = "uint16",
    slope: float = 1.0,
    intercept: float = 0.0,
) -> None:
    """Write one image atomically as PNG, TIFF or NPY.

    ``.npy`` stores float32 values exactly (``dtype``, ``slope`` and
    ``intercept`` are ignored). PNG and TIFF store integers; like DICOM's
    rescale, ``value = stored * slope + intercept``, so each pixel is stored
    as ``round((value - intercept) / slope)``. The rounding error is at most
    ``slope / 2`` (0.5 HU with the default ``slope=1``). Reading the file
    back gives the *stored* numbers; apply ``stored * slope + intercept`` to
    get the values again. Example for CT in HU: ``intercept=-1024`` stores
    -1024..64511 HU as 0..65535.

    Args:
        path: Destination ``.png``, ``.tif``/``.tiff`` or ``.npy``.
        pixels: Image ``H x W`` or ``H x W x C``. PNG takes ``C`` in 1..4
            (16-bit PNG only ``C = 1``); TIFF and NPY any ``C``.
        dtype: Stored type for PNG/TIFF: ``"uint16"`` (default) or
            ``"uint8"``; TIFF also takes ``"float32"`` (exact, no rescale).
        slope: Value step of one stored unit (> 0).
        intercept: Value stored as 0.

    Raises:
        ValueError: If the suffix, ``dtype``, ``slope`` or channel count is not
            supported, if ``pixels`` holds NaN/inf, or if the stored values do
            not fit ``dtype``; the message gives the value range and the
            stored range so that ``slope``/``intercept`` can be chosen.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    array = np.asarray(pixels)
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"pixels must be H x W or H x W x C, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"pixels for {path} hold NaN or infinite values")
    if suffix == ".npy":
        # More than 4 channels is written N x H x W x C, so `read_npy` does not read a stack.
        array = array.astype(np.float32)
        with atomic_path(path) as tmp:
            np.save(tmp, array if array.shape[-1] <= _NPY_MAX_CHANNELS else array[np.newaxis])
        return
    if suffix not in (".png", ".tif", ".tiff"):
        raise ValueError(f"write_image writes .png, .tif, .tiff or .npy, got {path.name!r}")
    stored = _to_stored(array, dtype, slope, intercept, tiff=suffix != ".png")
    with atomic_path(path) as tmp:
        if suffix == ".png":
            _write_png(tmp, stored)
        else:
            _write_tiff(tmp, stored)


def _to_stored(
    array: np.ndarray, dtype: str, slope: float, intercept: float, *, tiff: bool
) -> np.ndarray:
    """Map values to stored numbers of ``dtype``; raise if they do not fit."""
    if dtype == "float32" and tiff:
        if (slope, intercept) != (1.0, 0.0):
            raise ValueError("dtype='float32' stores values exactly; leave slope and intercept")
        return array.astype(np.float32)
    if dtype not in _STORED_RANGE:
        allowed = ", ".join(map(repr, [*_STORED_RANGE, *(["float32"] if tiff else [])]))
        raise ValueError(f"dtype must be one of {allowed}, got {dtype!r}")
    if not slope > 0:
        raise ValueError(f"slope must be > 0, got {slope}")
    stored = np.round((array.astype(np.float64) - intercept) / slope)
    low, high = _STORED_RANGE[dtype]
    if stored.min() < low or stored.max() > high:
        raise ValueError(
            f"values in [{array.min():g}, {array.max():g}] map to stored "
            f"[{stored.min():g}, {stored.max():g}] with slope={slope:g}, intercept={intercept:g}, "
            f"outside {dtype} [{low}, {high}]; choose intercept (value stored as 0) and slope"
        )
    return stored.astype(dtype)


def _write_png(path: Path, stored: np.ndarray) -> None:
    """Write ``stored`` (uint8 with 1-4 channels, or uint16 with 1) as PNG with Pillow."""
    channels = stored.shape[-1]
    if stored.dtype == np.uint16 and channels != 1:
        raise ValueError(
            f"16-bit PNG holds 1 channel, got {channels}; write .tif for 16-bit colour"
        )
    if channels > 4:
        raise ValueError(f"PNG holds 1 to 4 channels, got {channels}; write .tif or .npy")
    image = Image.fromarray(stored[..., 0] if channels == 1 else stored)
    image.save(path, format="PNG")


def _write_tiff(path: Path, stored: np.ndarray) -> None:
    """Write ``stored`` (``H x W x C``, any C) as one deflate-compressed TIFF page."""
    channels = stored.shape[-1]
    if channels == 1:
        tifffile.imwrite(path, stored[..., 0], photometric="minisblack", compression="zlib")
        return
    tifffile.imwrite(
        path,
        stored,
        photometric="rgb" if channels == 3 else "minisblack",
        planarconfig="contig",
        compression="zlib",
    )
