"""Finding image files in folders and choosing the reader of a file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kerastrans.errors import DataError
from kerastrans.io import find_images, read_image, read_slices, write_image


def test_find_images_sorted_recursive_and_skips_hidden_and_dicomdir(tmp_path, testdata):
    write_image(tmp_path / "b.png", np.zeros((2, 2)))
    write_image(tmp_path / "sub" / "a.npy", np.zeros((2, 2)))
    write_image(tmp_path / ".cache" / "c.npy", np.zeros((2, 2)))
    write_image(tmp_path / ".d.npy.tmp-1.npy", np.zeros((2, 2)))
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "IM0001")  # no suffix: found by content
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "1.2.840.5")  # UID name: found by content
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "DICOMDIR")
    (tmp_path / "README").write_text("not an image")
    (tmp_path / "notes.txt").write_text("not an image")
    assert find_images(tmp_path) == [
        tmp_path / "1.2.840.5",
        tmp_path / "IM0001",
        tmp_path / "b.png",
        tmp_path / "sub" / "a.npy",
    ]
    assert find_images(tmp_path, recursive=False)[-1] == tmp_path / "b.png"


def test_extensionless_dicom_reads_in_hounsfield_units(tmp_path, testdata):
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "IM0001")
    np.testing.assert_array_equal(
        read_image(tmp_path / "IM0001"), read_image(testdata("CT_small.dcm"))
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no image files"),
        (lambda p: p / "missing", "no such folder"),
        (lambda p: (p / "f.npy").write_bytes(b"") or p / "f.npy", "not a folder"),
    ],
)
def test_find_images_errors_name_the_folder(tmp_path, make, message):
    root = make(tmp_path)
    with pytest.raises(DataError, match=f"^{root}: {message}"):
        find_images(root)


def test_read_slices_errors_name_the_path(tmp_path):
    with pytest.raises(DataError, match=r"gone\.png: no such file"):
        read_slices(tmp_path / "gone.png")
    with pytest.raises(DataError, match="is a folder"):
        read_slices(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt: not a supported image file"):
        read_slices(tmp_path / "notes.txt")


def test_read_image_refuses_files_with_several_images(tmp_path, testdata):
    with pytest.raises(DataError, match=r"emri_small\.dcm: holds 10 images, expected one"):
        read_image(testdata("emri_small.dcm"))
