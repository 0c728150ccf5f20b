"""Medical image I/O in physical units: DICOM, PNG/JPEG/TIFF, NPY; pairing of files.

Every reader returns float32 ``H x W x C`` arrays of the values the file
means: Hounsfield units for CT (RescaleSlope and RescaleIntercept applied),
16-bit PNG/TIFF values as stored (never cut to 8 bits). Every writer is
atomic. Bad input raises `kerastrans.errors.DataError` with a one-line
message that starts with the file name.

>>> from pydicom.data import get_testdata_file
>>> image = read_image(get_testdata_file("CT_small.dcm"))
>>> image.shape, image.dtype
((128, 128, 1), dtype('float32'))
"""

from kerastrans.io.dicom import read_dicom
from kerastrans.io.dicom_write import write_derived_dicom
from kerastrans.io.files import IMAGE_SUFFIXES, find_images, read_image, read_slices
from kerastrans.io.images import write_image
from kerastrans.io.series import Series, read_series
from kerastrans.io.slice import Slice
from kerastrans.io.sources import (
    Pair,
    pairs_from_folders,
    pairs_from_list,
    read_pair,
    unpaired_from_folders,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "Pair",
    "Series",
    "Slice",
    "find_images",
    "pairs_from_folders",
    "pairs_from_list",
    "read_dicom",
    "read_image",
    "read_pair",
    "read_series",
    "read_slices",
    "unpaired_from_folders",
    "write_derived_dicom",
    "write_image",
]
