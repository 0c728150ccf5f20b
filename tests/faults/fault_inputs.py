"""Inputs of the fault-injection suite: paired NPY folders and DICOM series, made in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

__all__ = ["SIZE", "TINY", "write_ct_series", "write_pairs"]

#: Small networks so that training takes seconds (as tests/cli/test_fit.py).
TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1"]  # fmt: skip
#: Image size of the NPY slices.
SIZE = 32


def write_pairs(root: Path, counts: dict[str, int], size: int = SIZE, seed: int = 0) -> Path:
    """Paired NPY slices: ``root/<split>A/s<i>.npy`` (noisy) and ``<split>B`` (clean)."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        (root / f"{split}A").mkdir(parents=True, exist_ok=True)
        (root / f"{split}B").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            clean = rng.normal(-300.0, 300.0, (size, size)).astype(np.float32)
            noisy = clean + rng.normal(0.0, 50.0, clean.shape).astype(np.float32)
            np.save(root / f"{split}B" / f"s{index}.npy", clean)
            np.save(root / f"{split}A" / f"s{index}.npy", noisy)
    return root


def write_ct_series(folder: Path, count: int) -> Path:
    """A DICOM series of ``count`` slices derived from ``CT_small.dcm`` (positions 2 mm apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    series = generate_uid()
    for index in range(count):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.SeriesInstanceUID = series
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = index + 1
        x, y, z = map(float, dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, z + 2.0 * index]
        pixels = dataset.pixel_array.astype(np.int32) + 10 * index
        dataset.PixelData = pixels.astype(dataset.pixel_array.dtype).tobytes()
        dataset.save_as(folder / f"slice{index:02d}.dcm", enforce_file_format=True)
    return folder
