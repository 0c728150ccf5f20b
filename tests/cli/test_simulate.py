"""Tests of ``kerastrans simulate``: datasets whose metadata rebuild the geometry, errors."""

import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from pydicom.data import get_testdata_file

from kerastrans.cli.main import main
from kerastrans.data.geometry import geometry_from_dataset
from kerastrans.data.records import load_builder, read_metadata
from kerastrans.errors import DataError
from kerastrans.io import read_image
from kerastrans.metrics import psnr
from kerastrans.tomo.ellipses import EllipsesProtocol
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import fbp_reconstruct


def examples(dataset, split):
    return list(tfds.as_numpy(load_builder(dataset).as_dataset(split=split, shuffle_files=False)))


@pytest.fixture(scope="module")
def sparseview(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "sparse"
    args = [
        "simulate",
        "sparseview",
        "--out",
        str(out),
        "--train",
        "3",
        "--validation",
        "1",
        "--test",
        "0",
        "--image-size",
        "32",
        "--num-angles",
        "10",
        "--no-progress",
    ]
    assert main(args) == 0
    return out


def test_sparseview_metadata_rebuilds_geometry_and_fbp_baseline(sparseview):
    geometry = geometry_from_dataset(sparseview)
    assert geometry == GeometrySpec((32, 32), extent=(32.0, 32.0), num_angles=10).resolve()
    metadata = read_metadata(sparseview)
    assert metadata["simulation"]["simulation_shape"] == [64, 64]  # oversampled 2x by default
    assert load_builder(sparseview).info.splits["train"].num_examples == 3
    record = examples(sparseview, "validation")[0]
    assert record["input"].shape == (10, 47, 1)
    # From the dataset alone: FBP of the sinogram, in phantom units (value x mu_water).
    recon = fbp_reconstruct(record["input"][..., 0], geometry, frequency_scaling=0.8)
    assert psnr(recon / metadata["simulation"]["mu_water"], record["target"][..., 0]) > 12


def test_ellipses_writes_the_protocol_records(tmp_path):
    out = tmp_path / "ellipses"
    args = [
        "simulate",
        "ellipses",
        "--out",
        str(out),
        "--train",
        "0",
        "--validation",
        "0",
        "--test",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    protocol = EllipsesProtocol()
    assert geometry_from_dataset(out) == protocol.geometry()
    assert read_metadata(out)["protocol"] == "dival-ellipses"
    stored = examples(out, "test")
    expected = list(protocol.examples("test", 2))
    np.testing.assert_array_equal(stored[1]["input"], expected[1]["input"])
    assert stored[1]["id"].decode() == "test-00001"


def test_lowdose_from_dicom_folder_keeps_hu_and_pixel_spacing(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    out = tmp_path / "lowdose"
    args = [
        "simulate",
        "lowdose",
        "--out",
        str(out),
        "--source",
        str(folder),
        "--num-angles",
        "40",
        "--split",
        "test",
        "--no-progress",
    ]
    assert main(args) == 0
    geometry = geometry_from_dataset(out)
    assert geometry.pixel_size == pytest.approx((0.661468, 0.661468))
    record = examples(out, "test")[0]
    np.testing.assert_array_equal(record["target"], read_image(folder / "ct.dcm"))
    assert read_metadata(out)["units"] == {"input": "HU", "target": "HU"}


def test_superres_from_a_dataset_keeps_its_splits_and_targets(sparseview, tmp_path):
    out = tmp_path / "superres"
    args = [
        "simulate",
        "superres",
        "--out",
        str(out),
        "--source",
        str(sparseview),
        "--factor",
        "4",
        "--no-progress",
    ]
    assert main(args) == 0
    assert set(load_builder(out).info.splits) == {"train", "validation"}
    record, source = examples(out, "validation")[0], examples(sparseview, "validation")[0]
    np.testing.assert_array_equal(record["target"], source["target"])
    assert record["input"].shape == (8, 8, 1)
    with pytest.raises(DataError, match="superres: metadata has no 'geometry' entry"):
        geometry_from_dataset(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sparseview", "--beam", "fan"], "beam='fan' needs src_radius in mm, got None"),
        (["sparseview", "--angle-range", "0", "500"], "angle_range needs start < stop"),
        (["lowdose", "--source", "/no/such/folder"], "--source must be one of"),
        (["lowdose", "--frequency-scaling", "2"], "--frequency-scaling must be in (0, 1], got 2.0"),
        (["lowdose", "--photons", "-5"], "argument --photons: must be > 0, got '-5'"),
        (["superres", "--factor", "3"], "argument --factor: invalid choice: 3"),
        (["ellipses", "--test", "-1"], "argument --test: must be >= 0, got '-1'"),
        (["ellipses", "--train", "0", "--validation", "0", "--test", "0"], "nothing to write"),
    ],
)
def test_bad_arguments_give_one_line_errors(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", args[0], "--out", str(tmp_path / "out"), *args[1:]])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"kerastrans simulate {args[0]}: error: ")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_images_of_another_size_are_a_one_line_data_error(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((16, 16), np.float32))
    np.save(folder / "b.npy", np.zeros((16, 12), np.float32))
    args = [
        "simulate",
        "lowdose",
        "--out",
        str(tmp_path / "out"),
        "--source",
        str(folder),
        "--num-angles",
        "8",
        "--no-progress",
    ]
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "b.npy: image shape (16, 12) differs from the geometry's (16, 16)" in error
    assert not (tmp_path / "out").exists()
