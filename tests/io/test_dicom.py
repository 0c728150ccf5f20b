"""Reading DICOM in physical units: real files from pydicom and pydicom-data."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from kerastrans.errors import DataError
from kerastrans.io import read_dicom, read_image, read_slices

pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),  # bad_sequence.dcm
    pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning"),
]


def _reference(path) -> np.ndarray:
    """pydicom's own decode + modality LUT, as float32 frames x H x W."""
    dataset = pydicom.dcmread(path)
    values = apply_modality_lut(dataset.pixel_array, dataset).astype(np.float32)
    return values.reshape(-1, dataset.Rows, dataset.Columns)


@pytest.mark.parametrize(
    "name", ["693_UNCI.dcm", "CT_small.dcm", "bad_sequence.dcm", "MR_small.dcm", "mlut_18.dcm"]
)
def test_values_equal_pydicom_modality_lut(testdata, name):
    path = testdata(name)
    pixels = read_image(path)
    assert pixels.dtype == np.float32 and pixels.shape[-1] == 1
    np.testing.assert_array_equal(pixels[..., 0], _reference(path)[0])


def test_ct_applies_slope_and_intercept_to_hounsfield_units(testdata):
    path = testdata("CT_small.dcm")
    dataset = pydicom.dcmread(path)
    assert (dataset.RescaleSlope, dataset.RescaleIntercept) == (1, -1024)
    hu = read_image(path)[..., 0]
    np.testing.assert_array_equal(hu, dataset.pixel_array.astype(np.float32) - 1024)
    assert hu.min() < 0  # air and fat are negative HU


def test_unsigned_ct_gives_negative_hu(testdata):
    # bad_sequence.dcm: CT stored as unsigned 12-bit with intercept -1024; its
    # malformed sequence is recovered by pydicom 3, so the file must read.
    path = testdata("bad_sequence.dcm")
    assert pydicom.dcmread(path).PixelRepresentation == 0
    hu = read_image(path)
    assert hu.min() == -1011.0 and hu.max() == 1243.0


def test_multiframe_gives_one_slice_per_frame(testdata):
    path = testdata("emri_small.dcm")
    slices = read_dicom(path)
    assert len(slices) == 10
    assert [s.id for s in slices[:2]] == [f"{path}#0", f"{path}#1"]
    assert all(s.pixels.shape == (64, 64, 1) for s in slices)
    np.testing.assert_array_equal(np.stack([s.pixels[..., 0] for s in slices]), _reference(path))


@pytest.mark.parametrize(
    ("plain", "encoded"),
    [
        ("emri_small.dcm", "emri_small_RLE.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm"),
        ("emri_small.dcm", "emri_small_big_endian.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_bigendian.dcm"),
        ("693_UNCR.dcm", "693_J2KR.dcm"),
        ("US1_UNCR.dcm", "US1_J2KR.dcm"),
    ],
)
def test_lossless_and_big_endian_equal_uncompressed(testdata, plain, encoded):
    expected = [s.pixels for s in read_slices(testdata(plain))]
    actual = [s.pixels for s in read_slices(testdata(encoded))]
    assert len(actual) == len(expected)
    np.testing.assert_array_equal(np.stack(actual), np.stack(expected))


def test_jpeg_lossless_process_14_decodes(testdata):
    path = testdata("JPEG-LL.dcm")
    [slice_] = read_slices(path)
    assert slice_.pixels.shape == (1024, 256, 1)
    np.testing.assert_array_equal(slice_.pixels[..., 0], _reference(path)[0])
    assert slice_.spacing == (2.26, 2.26)


def test_spacing_and_position_along_normal(testdata):
    path = testdata("CT_small.dcm")
    dataset = pydicom.dcmread(path)
    [slice_] = read_slices(path)
    orientation = np.asarray(dataset.ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    assert slice_.spacing == pytest.approx(tuple(map(float, dataset.PixelSpacing)))
    assert slice_.position == pytest.approx(float(np.dot(dataset.ImagePositionPatient, normal)))
    assert slice_.series == dataset.SeriesInstanceUID


def test_enhanced_multiframe_geometry_from_functional_groups(testdata):
    slices = read_slices(testdata("eCT_Supplemental.dcm"))
    assert [s.position for s in slices] == pytest.approx([159.0, 149.0])
    assert slices[0].spacing == pytest.approx((0.388672, 0.388672))
    assert slices[0].pixels.min() == -1024.0  # rescale from the functional groups


@pytest.mark.parametrize("name", ["SC_rgb.dcm", "SC_rgb_rle_16bit.dcm", "US1_UNCR.dcm"])
def test_colour_gives_three_channels(testdata, name):
    path = testdata(name)
    pixels = read_image(path)
    assert pixels.shape[-1] == 3
    np.testing.assert_array_equal(pixels, pydicom.dcmread(path).pixel_array.astype(np.float32))


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("MR_truncated.dcm", "cannot decode pixel data"),
        ("emri_small_jpeg_2k_lossless_too_short.dcm", "no data elements"),
        ("rtplan.dcm", "no pixel data"),
    ],
)
def test_bad_dicom_gives_one_line_error_with_file_name(testdata, name, problem):
    path = testdata(name)
    with pytest.raises(DataError) as caught:
        read_slices(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_text_file_named_dcm_is_not_dicom(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_text("patient: nobody\n" * 20)
    with pytest.raises(DataError, match=r"x\.dcm: not a DICOM file"):
        read_slices(path)


def test_missing_dicom_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"missing\.dcm: no such file"):
        read_dicom(tmp_path / "missing.dcm")
