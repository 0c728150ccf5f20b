"""Fixtures for the io tests: real DICOM test files and small synthetic series."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid


def _testdata(name: str) -> Path:
    """Path of a file shipped with pydicom or pydicom-data."""
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return Path(path)


def _write_series(
    folder: Path,
    positions: list[float],
    *,
    source: str = "CT_small.dcm",
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    series_uid: str | None = None,
) -> list[Path]:
    """Write copies of ``source`` as one series, slice ``i`` at ``positions[i]`` mm.

    Slices sit at ``positions[i]`` along the normal of ``orientation``, shifted
    in-plane by an amount that must not matter; each slice's pixels are its
    index (so the order can be read back); InstanceNumber runs *against*
    position; file names are shuffled UIDs, so neither explains the order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, column)
    names = [f"{generate_uid()}.dcm" for _ in positions]
    random.Random(0).shuffle(names)
    paths = []
    for index, (position, name) in enumerate(zip(positions, names, strict=True)):
        dataset = pydicom.dcmread(_testdata(source))
        origin = position * normal + (index * 3.0) * row  # in-plane shift: irrelevant
        dataset.ImageOrientationPatient = [float(v) for v in orientation]
        dataset.ImagePositionPatient = [float(v) for v in origin]
        dataset.SeriesInstanceUID = series_uid
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = len(positions) - index
        dataset.RescaleSlope, dataset.RescaleIntercept = 1, 0
        pixels = np.full((dataset.Rows, dataset.Columns), index, dtype=np.int16)
        dataset.PixelData = pixels.tobytes()
        dataset.save_as(folder / name)
        paths.append(folder / name)
    return paths


@pytest.fixture
def testdata() -> Callable[[str], Path]:
    """Function returning the path of a pydicom / pydicom-data test file by name."""
    return _testdata


@pytest.fixture
def make_series() -> Callable[..., list[Path]]:
    """Function writing a synthetic shuffled series (see `_write_series`)."""
    return _write_series
