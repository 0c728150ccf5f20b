"""Find image files and read any supported one: the format is chosen here.

The suffix picks the reader (``.dcm``/``.dicom``/``.ima``, ``.png``,
``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.npy``, any case). Files without a
suffix, or named by a DICOM UID (``1.2.840.113619.2.55.3.5``, whose "suffix"
is a number), are DICOM when they carry the ``DICM`` marker, as files copied
from scanners and PACS often are.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kerastrans.errors import file_error
from kerastrans.io.dicom import (
    DICOM_SUFFIXES,
    dataset_modality,
    is_dicom_file,
    read_dataset,
    read_dicom,
)
from kerastrans.io.images import read_npy, read_pillow, read_tiff
from kerastrans.io.slice import Slice

__all__ = ["IMAGE_SUFFIXES", "find_images", "read_image", "read_modality", "read_slices"]

_READERS: dict[str, Callable[[Path], list[Slice]]] = {
    **dict.fromkeys(DICOM_SUFFIXES, read_dicom),
    ".png": read_pillow,
    ".jpg": read_pillow,
    ".jpeg": read_pillow,
    ".tif": read_tiff,
    ".tiff": read_tiff,
    ".npy": read_npy,
}
#: Suffixes of the files `find_images` returns (besides DICOM files found by content).
IMAGE_SUFFIXES = tuple(_READERS)
#: The index file of a DICOM media folder: DICOM, but not an image.
_DICOMDIR = "DICOMDIR"


def read_slices(path: str | os.PathLike) -> list[Slice]:
    """Read every 2-D image of a supported file, in physical units.

    Args:
        path: A DICOM file (single- or multi-frame, compressed or not), a
            PNG/JPEG (8/16-bit gray, 8-bit colour), a TIFF (any bit depth,
            float, multi-page) or an NPY array (layouts in `read_npy`).

    Returns:
        The file's images as `Slice` objects with float32 ``H x W x C``
        pixels; several for multi-frame DICOM and 3-D TIFF/NPY stacks.

    Raises:
        DataError: If the path is missing or a folder, the format is not
            supported, or the file cannot be decoded; the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise file_error(path, "is a folder, not an image file (see find_images/read_series)")
    if not path.exists():
        raise file_error(path, "no such file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        if not is_dicom_file(path):
            supported = ", ".join(IMAGE_SUFFIXES)
            raise file_error(path, f"not a supported image file (expected {supported} or DICOM)")
        reader = read_dicom
    return reader(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a file that holds exactly one 2-D image.

    Args:
        path: Any file `read_slices` reads.

    Returns:
        float32 ``H x W x C`` pixels in physical units (HU for CT).

    Raises:
        DataError: If the file cannot be read or holds several images.
    """
    slices = read_slices(path)
    if len(slices) != 1:
        raise file_error(path, f"holds {len(slices)} images, expected one (use read_slices)")
    return slices[0].pixels


def read_modality(path: str | os.PathLike) -> str | None:
    """The DICOM Modality of a file (its header only), `None` for other formats.

    Raises:
        DataError: If a DICOM file cannot be read.

    >>> from pydicom.data import get_testdata_file
    >>> read_modality(get_testdata_file("CT_small.dcm")), read_modality("slice.npy")
    ('CT', None)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if _READERS.get(suffix) is read_dicom or (suffix not in _READERS and is_dicom_file(path)):
        return dataset_modality(read_dataset(path, pixels=False))
    return None


def find_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """List the supported image files under a folder, sorted by path.

    Hidden files and folders (name starting with ``.``, such as unfinished
    atomic writes) and ``DICOMDIR`` index files are left out.

    Args:
        root: The folder.
        recursive: Whether to look into sub-folders too.

    Returns:
        The image files, sorted.

    Raises:
        DataError: If ``root`` is missing, is not a folder, or holds no images.
    """
    root = Path(root)
    if not root.exists():
        raise file_error(root, "no such folder")
    if not root.is_dir():
        raise file_error(root, "not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = sorted(
        path
        for path in candidates
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.name != _DICOMDIR
        and _is_image_file(path)
    )
    if not found:
        where = "under" if recursive else "directly in"
        raise file_error(root, f"no image files ({', '.join(IMAGE_SUFFIXES)}, DICOM) {where} it")
    return found


def _is_image_file(path: Path) -> bool:
    """Whether ``path`` has a supported suffix, or no real suffix and the DICOM marker."""
    suffix = path.suffix.lower()
    if suffix in _READERS:
        return True
    return (suffix == "" or suffix[1:].isdigit()) and is_dicom_file(path)
