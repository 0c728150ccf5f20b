"""Fixtures for the data tests: small datasets written to temporary folders."""

from __future__ import annotations

import pytest
from data_helpers import noise_image

from kerastrans.data.records import write_dataset


@pytest.fixture
def write(tmp_path):
    """``write(splits, name="ds", **kwargs)`` writes a dataset quietly under ``tmp_path``."""

    def _write(splits, name="ds", **kwargs):
        kwargs.setdefault("progress", False)
        write_dataset(tmp_path / name, splits, **kwargs)
        return tmp_path / name

    return _write


@pytest.fixture(scope="module")
def same_pairs(tmp_path_factory):
    """A paired dataset whose target equals its input: 12 train and 3 test slices of 24 x 24."""
    path = tmp_path_factory.mktemp("same") / "ds"
    splits = {
        split: [
            {"input": image, "target": image.copy(), "id": f"{split}{i}"}
            for i, image in ((i, noise_image(100 * offset + i, (24, 24, 1))) for i in range(n))
        ]
        for offset, (split, n) in enumerate((("train", 12), ("test", 3)))
    }
    write_dataset(path, splits, progress=False)
    return path
