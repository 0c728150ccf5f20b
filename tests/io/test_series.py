"""DICOM folders: grouping by SeriesInstanceUID and ordering along the slice normal."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest

from kerastrans.errors import DataError
from kerastrans.io import read_series


def _indices(series) -> list[int]:
    """Which synthetic slice each position holds (its pixels are its index)."""
    return [int(s.pixels[0, 0, 0]) for s in series.slices]


def test_slices_ordered_by_position_not_name_or_instance(tmp_path, make_series):
    positions = [30.0, -12.5, 7.0, 55.0, 0.0]
    paths = make_series(tmp_path / "scan", positions)
    [series] = read_series(tmp_path / "scan")
    assert [s.position for s in series.slices] == pytest.approx(sorted(positions))
    assert _indices(series) == list(np.argsort(positions))
    assert series.paths == [paths[i] for i in np.argsort(positions)]
    assert sorted(p.name for p in series.paths) != [p.name for p in series.paths]


def test_oblique_slices_ordered_by_projection_on_normal(tmp_path, make_series):
    # Coronal slices: the normal is +y; x and z change in-plane only.
    make_series(tmp_path / "coronal", [4.0, -4.0, 0.0], orientation=(1, 0, 0, 0, 0, -1))
    [series] = read_series(tmp_path / "coronal")
    assert [s.position for s in series.slices] == pytest.approx([-4.0, 0.0, 4.0])
    assert _indices(series) == [1, 2, 0]


def test_files_grouped_by_series_uid(tmp_path, make_series):
    make_series(tmp_path / "mixed", [2.0, 1.0], series_uid="1.2.3.4")
    make_series(tmp_path / "mixed" / "sub", [5.0, 6.0, 4.0], series_uid="1.2.3.5")
    series = read_series(tmp_path / "mixed")
    assert [(s.uid, len(s.slices)) for s in series] == [("1.2.3.4", 2), ("1.2.3.5", 3)]
    assert all(s.series == group.uid for group in series for s in group.slices)


def test_missing_positions_fall_back_to_instance_number(tmp_path, make_series, caplog):
    paths = make_series(tmp_path / "flat", [1.0, 2.0, 3.0])
    for path in paths:
        dataset = pydicom.dcmread(path)
        del dataset.ImagePositionPatient
        dataset.save_as(path)
    with caplog.at_level(logging.WARNING, logger="kerastrans.io.series"):
        [series] = read_series(tmp_path / "flat")
    assert _indices(series) == [2, 1, 0]  # InstanceNumber runs against the slice index
    assert "ordering by InstanceNumber" in caplog.text


def test_non_dicom_images_are_not_series_members(tmp_path, make_series):
    make_series(tmp_path / "scan", [1.0, 0.0])
    np.save(tmp_path / "scan" / "mask.npy", np.zeros((4, 4), np.float32))
    [series] = read_series(tmp_path / "scan")
    assert len(series.slices) == 2


def test_folder_without_dicom_is_an_error(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(DataError, match="no DICOM files"):
        read_series(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match=f"^{tmp_path}: no image files"):
        read_series(tmp_path)


def test_bad_file_in_series_is_named(tmp_path, make_series):
    make_series(tmp_path / "scan", [1.0, 0.0])
    (tmp_path / "scan" / "broken.dcm").write_bytes(b"\0" * 200)
    with pytest.raises(DataError, match=r"broken\.dcm: not a DICOM file"):
        read_series(tmp_path / "scan")
