"""Derived DICOM slices: values, UIDs, pixel type, geometry, encoding, atomicity."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from kerastrans.config import Window
from kerastrans.errors import DataError
from kerastrans.io import read_image, read_slices, write_derived_dicom

pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning"),  # bad_sequence.dcm
    pytest.mark.filterwarnings("ignore:Invalid value. a value for a tag with VR US:UserWarning"),
]

_GEOMETRY = ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient", "SliceThickness")


def _write_and_read(tmp_path, source, pixels, **kwargs):
    """Write a derived slice of ``source``; return (uid, output dataset, kerastrans read)."""
    series_uid = generate_uid()
    out = tmp_path / "derived.dcm"
    write_derived_dicom(out, pixels, source, series_uid=series_uid, **kwargs)
    return series_uid, pydicom.dcmread(out), read_image(out)[..., 0]


def test_round_trip_keeps_hu_with_new_uids_and_geometry(tmp_path, testdata):
    source_path = testdata("CT_small.dcm")
    source = pydicom.dcmread(source_path)
    hu = read_image(source_path)[..., 0] + np.float32(0.25)  # not on the integer grid
    series_uid, out, back = _write_and_read(tmp_path, source_path, hu)
    slope = float(out.RescaleSlope)
    assert np.abs(back - hu).max() <= slope / 2 + 1e-4
    np.testing.assert_allclose(apply_modality_lut(out.pixel_array, out), back)
    assert out.SeriesInstanceUID == series_uid != source.SeriesInstanceUID
    assert out.SOPInstanceUID != source.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert list(out.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert out.PatientID == source.PatientID and out.StudyInstanceUID == source.StudyInstanceUID
    for keyword in _GEOMETRY:
        assert out[keyword].value == source[keyword].value, keyword
    assert (out.BitsAllocated, out.BitsStored, out.HighBit) == (16, 16, 15)


def test_negative_hu_from_unsigned_source_never_wrap(tmp_path, testdata):
    source = testdata("bad_sequence.dcm")  # CT stored unsigned, intercept -1024
    assert pydicom.dcmread(source).PixelRepresentation == 0
    hu = read_image(source)[..., 0]
    hu[:4, :4] = -1024.0  # air below anything the source stored
    _, out, back = _write_and_read(tmp_path, source, hu)
    assert out.PixelRepresentation == 1 and out.pixel_array.dtype == np.int16
    np.testing.assert_array_equal(back, hu)
    np.testing.assert_array_equal(apply_modality_lut(out.pixel_array, out), hu)


def test_unsigned_source_made_unsigned_by_editing_pixel_representation(tmp_path, testdata):
    source = pydicom.dcmread(testdata("CT_small.dcm"))
    source.PixelRepresentation = 0
    hu = np.linspace(-1000, 2000, 64 * 32, dtype=np.float32).reshape(64, 32)
    _, out, back = _write_and_read(tmp_path, source, hu)
    assert out.PixelRepresentation == 1 and (out.Rows, out.Columns) == (64, 32)
    np.testing.assert_array_equal(back, np.round(hu))


def test_wide_range_gets_coarser_slope_and_fits_16_bits(tmp_path, testdata):
    values = np.linspace(-50000.0, 150000.0, 100).reshape(10, 10)
    _, out, back = _write_and_read(tmp_path, testdata("CT_small.dcm"), values)
    slope = float(out.RescaleSlope)
    assert slope > 1 and np.abs(back - values).max() <= slope / 2 * 1.0001


def test_fine_slope_keeps_fractional_values(tmp_path, testdata):
    values = np.random.default_rng(0).uniform(0, 1, (8, 8))
    _, out, back = _write_and_read(tmp_path, testdata("MR_small.dcm"), values, rescale_slope=1e-4)
    assert out.PixelRepresentation == 0
    assert np.abs(back - values).max() <= 0.5e-4 + 1e-7


@pytest.mark.parametrize(
    "name", ["JPEG-LL.dcm", "emri_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"]
)
def test_output_is_uncompressed_explicit_little_endian(tmp_path, testdata, name):
    pixels = read_slices(testdata(name))[0].pixels
    _, out, back = _write_and_read(tmp_path, testdata(name), pixels, frame=0)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "NumberOfFrames" not in out
    np.testing.assert_array_equal(back, pixels[..., 0])


def test_big_endian_source_binary_values_are_swapped(tmp_path, testdata):
    source = pydicom.dcmread(testdata("MR_small_bigendian.dcm"))
    source.add_new(0x60003000, "OW", b"\x01\x02\x03\x04")  # Overlay Data, as big-endian words
    _, out, _ = _write_and_read(tmp_path, source, np.zeros((4, 4)))
    assert out[0x60003000].value == b"\x02\x01\x04\x03"


def test_enhanced_multiframe_frame_becomes_classic_slice(tmp_path, testdata):
    source = testdata("eCT_Supplemental.dcm")
    frame = read_slices(source)[1]
    _, out, back = _write_and_read(tmp_path, source, frame.pixels, frame=1)
    assert out.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert "PerFrameFunctionalGroupsSequence" not in out
    assert out.SourceImageSequence[0].ReferencedFrameNumber == 2
    [written] = read_slices(tmp_path / "derived.dcm")
    assert written.position == pytest.approx(frame.position)
    assert written.spacing == pytest.approx(frame.spacing)
    np.testing.assert_array_equal(back, frame.pixels[..., 0])


def test_window_and_numbers_are_set(tmp_path, testdata):
    _, out, _ = _write_and_read(
        tmp_path,
        testdata("CT_small.dcm"),
        np.zeros((4, 4)),
        window=Window.from_center_width(40, 400),
        instance_number=7,
        series_number=1001,
        series_description="denoised",
    )
    assert (float(out.WindowCenter), float(out.WindowWidth)) == (40.0, 400.0)
    assert (out.InstanceNumber, out.SeriesNumber, out.SeriesDescription) == (7, 1001, "denoised")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixels": np.zeros((4, 4, 3))}, "one image H x W or H x W x 1"),
        ({"pixels": np.full((4, 4), np.nan)}, "NaN"),
        ({"series_uid": "not a uid"}, "series_uid must be a valid DICOM UID"),
        ({"rescale_slope": 0}, "rescale_slope must be > 0"),
        ({"frame": 3}, r"frame must be in \[0, 1\)"),
    ],
)
def test_bad_arguments_are_named(tmp_path, testdata, kwargs, message):
    arguments = {"pixels": np.zeros((4, 4)), "series_uid": generate_uid(), **kwargs}
    pixels = arguments.pop("pixels")
    with pytest.raises(ValueError, match=message):
        write_derived_dicom(tmp_path / "x.dcm", pixels, testdata("CT_small.dcm"), **arguments)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_source_is_a_data_error(tmp_path):
    (tmp_path / "notes.dcm").write_text("not DICOM\n")
    with pytest.raises(DataError, match=r"notes\.dcm: not a DICOM file"):
        write_derived_dicom(
            tmp_path / "x.dcm", np.zeros((4, 4)), tmp_path / "notes.dcm", series_uid=generate_uid()
        )
    assert not (tmp_path / "x.dcm").exists()


def test_failing_write_leaves_no_file_and_no_temp_file(tmp_path, testdata):
    source = pydicom.dcmread(testdata("CT_small.dcm"))
    source.add_new(0x00280003, "US", 70000)  # cannot be encoded: fails mid-write
    with pytest.raises(OSError, match="ushort format"):
        write_derived_dicom(tmp_path / "x.dcm", np.zeros((4, 4)), source, series_uid=generate_uid())
    assert list(tmp_path.iterdir()) == []


def test_source_dataset_is_not_modified(tmp_path, testdata):
    source = pydicom.dcmread(testdata("CT_small.dcm"))
    before = source.SOPInstanceUID, source.Rows, source.PixelData
    write_derived_dicom(tmp_path / "x.dcm", np.zeros((4, 4)), source, series_uid=generate_uid())
    assert (source.SOPInstanceUID, source.Rows, source.PixelData) == before


def test_a_bare_pair_is_not_taken_for_a_display_window(tmp_path, testdata):
    with pytest.raises(TypeError, match=r"default_window must be a Window .*, got \(40, 400\)"):
        write_derived_dicom(
            tmp_path / "x.dcm", np.zeros((4, 4)), testdata("CT_small.dcm"),
            series_uid=generate_uid(), default_window=(40, 400),
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []
