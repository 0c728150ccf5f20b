"""Pairing files (list file, trainA/trainB folders) and reading pairs into arrays."""

from __future__ import annotations

import numpy as np
import pytest

from kerastrans.errors import DataError
from kerastrans.io import write_image
from kerastrans.io.sources import (
    Pair,
    pairs_from_folders,
    pairs_from_list,
    read_pair,
    unpaired_from_folders,
)


def _images(folder, names, shape=(4, 6), value=0.0):
    """Write one NPY image per name under ``folder``."""
    for name in names:
        write_image(folder / name, np.full(shape, value, np.float32))


def test_list_file_extra_columns_are_input_channels(tmp_path):
    _images(tmp_path / "img", ["a0.npy", "a1.npy", "b.npy"])
    (tmp_path / "pairs.txt").write_text(
        "# input\tneighbour\ttarget\n\nimg/a0.npy\timg/a1.npy\timg/b.npy\n"
        f"{tmp_path / 'img/a1.npy'}\timg/a0.npy\timg/b.npy\n"
    )
    pairs = pairs_from_list(tmp_path / "pairs.txt")
    assert pairs[0] == Pair(
        (tmp_path / "img/a0.npy", tmp_path / "img/a1.npy"), (tmp_path / "img/b.npy",), "img/a0.npy"
    )
    assert pairs[1].inputs[0] == tmp_path / "img/a1.npy"  # absolute paths stay absolute
    inputs, target = read_pair(pairs[0])
    assert inputs.shape == (4, 6, 2) and target.shape == (4, 6, 1)


def test_list_file_explicit_columns(tmp_path):
    _images(tmp_path, ["x.npy", "y.npy", "z.npy"])
    (tmp_path / "l.tsv").write_text("x.npy\ty.npy\tz.npy\n")
    [pair] = pairs_from_list(tmp_path / "l.tsv", input_columns=[2], target_columns=[0, 1])
    assert pair.inputs == (tmp_path / "z.npy",)
    assert pair.targets == (tmp_path / "x.npy", tmp_path / "y.npy")


def test_list_file_missing_files_listed_in_one_error(tmp_path):
    _images(tmp_path, ["ok.npy"])
    lines = [f"in{i}.npy\tok.npy" for i in range(8)]
    (tmp_path / "l.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        pairs_from_list(tmp_path / "l.txt")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'l.txt'}: 8 listed files do not exist: ")
    assert "in0.npy (line 1)" in message and "... and 3 more" in message


def test_list_file_ragged_lines_are_an_error(tmp_path):
    _images(tmp_path, ["a.npy", "b.npy", "c.npy"])
    (tmp_path / "l.txt").write_text("a.npy\tb.npy\tc.npy\na.npy\tc.npy\n")
    with pytest.raises(DataError, match=r"same number .* line 2 \(2\)"):
        pairs_from_list(tmp_path / "l.txt")


def test_list_file_repeated_input_is_an_error(tmp_path):
    _images(tmp_path, ["a.npy", "b.npy", "c.npy"])
    (tmp_path / "l.txt").write_text("a.npy\tb.npy\na.npy\tc.npy\n")
    with pytest.raises(DataError, match=r"more than once: a\.npy \(lines 1, 2\)"):
        pairs_from_list(tmp_path / "l.txt")


def test_folders_pair_by_relative_path_without_extension(tmp_path):
    _images(tmp_path / "trainA", ["p1/001.npy", "p1/002.npy", "p2/001.npy"])
    _images(tmp_path / "trainB", ["p1/001.png", "p1/002.tif", "p2/001.npy"], value=7.0)
    pairs = pairs_from_folders(tmp_path)
    assert [p.id for p in pairs] == ["p1/001", "p1/002", "p2/001"]
    assert pairs[1].targets == (tmp_path / "trainB/p1/002.tif",)
    _, target = read_pair(pairs[0])
    assert float(target.max()) == 7.0


def test_folders_unpairable_files_listed_in_one_error(tmp_path):
    _images(tmp_path / "testA", ["a.npy", "b.npy", "only_a1.npy", "only_a2.npy"])
    _images(tmp_path / "testB", ["a.npy", "b.npy", "only_b.npy"])
    with pytest.raises(DataError) as caught:
        pairs_from_folders(tmp_path, split="test")
    message = str(caught.value)
    assert "2 in testA without a partner in testB: only_a1, only_a2" in message
    assert "1 in testB without a partner in testA: only_b" in message


def test_folders_with_clashing_names_are_an_error(tmp_path):
    _images(tmp_path / "trainA", ["a.npy", "a.png"])
    _images(tmp_path / "trainB", ["a.npy"])
    with pytest.raises(DataError, match=r"pairing is ambiguous: a\.npy and a\.png"):
        pairs_from_folders(tmp_path)


def test_missing_split_folder_is_named(tmp_path):
    _images(tmp_path / "trainA", ["a.npy"])
    with pytest.raises(DataError, match="no folder trainB for split 'train'"):
        pairs_from_folders(tmp_path)


def test_unpaired_lists_domains_independently(tmp_path):
    _images(tmp_path / "trainA", ["x.npy", "y.npy"])
    _images(tmp_path / "trainB", ["z.npy"])
    files_a, files_b = unpaired_from_folders(tmp_path)
    assert files_a == [tmp_path / "trainA/x.npy", tmp_path / "trainA/y.npy"]
    assert files_b == [tmp_path / "trainB/z.npy"]
    (tmp_path / "trainB/z.npy").unlink()
    with pytest.raises(DataError, match="trainB: no image files"):
        unpaired_from_folders(tmp_path)


def test_size_mismatch_names_both_files_and_shapes(tmp_path):
    _images(tmp_path, ["in.npy"], shape=(4, 6))
    _images(tmp_path, ["big.npy"], shape=(8, 12))
    pair = Pair((tmp_path / "in.npy",), (tmp_path / "big.npy",), "in")
    with pytest.raises(DataError) as caught:
        read_pair(pair)
    message = str(caught.value)
    assert "in.npy" in message and "big.npy" in message
    assert "(4, 6, 1)" in message and "(8, 12, 1)" in message
    inputs, target = read_pair(pair, same_size=False)  # super-resolution pairs
    assert inputs.shape == (4, 6, 1) and target.shape == (8, 12, 1)


def test_channel_images_of_one_side_must_match(tmp_path):
    _images(tmp_path, ["c0.npy"], shape=(4, 6))
    _images(tmp_path, ["c1.npy"], shape=(4, 5))
    pair = Pair((tmp_path / "c0.npy", tmp_path / "c1.npy"), (tmp_path / "c0.npy",), "c")
    with pytest.raises(
        DataError, match=r"c1\.npy: shape \(4, 5, 1\) differs .*c0\.npy of shape \(4, 6, 1\)"
    ):
        read_pair(pair, same_size=False)
