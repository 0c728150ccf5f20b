"""Splits from source folders and list files; random hold-out keeping series together."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from kerastrans.data.examples import hold_out
from kerastrans.data.records import read_summary, write_dataset
from kerastrans.data.sources import folder_splits, source_splits
from kerastrans.errors import DataError


def save(path: Path, value: float, shape=(8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.full(shape, value, np.float32))


@pytest.fixture
def ab_folders(tmp_path):
    """trainA/trainB with 6 pairs (target = 2 x input) and testA/testB with 2."""
    for split, count in (("train", 6), ("test", 2)):
        for i in range(count):
            save(tmp_path / f"{split}A" / f"p{i}.npy", i)
            save(tmp_path / f"{split}B" / f"p{i}.npy", 2 * i)
    return tmp_path


def test_paired_folders_give_one_split_per_folder_pair(ab_folders):
    (ab_folders / "notes").mkdir()
    assert folder_splits(ab_folders) == ["train", "test"]
    splits = source_splits(ab_folders, "paired")
    assert list(splits) == ["train", "test"]
    examples = list(splits["train"])
    assert [example["id"] for example in examples] == [f"p{i}" for i in range(6)]
    for i, example in enumerate(examples):
        assert example["input"].shape == (8, 8, 1)
        np.testing.assert_array_equal(example["target"], 2 * example["input"])
        assert example["input"][0, 0, 0] == i


def test_random_hold_out_is_seeded_and_disjoint(ab_folders):
    def ids(splits, name):
        return [example["id"] for example in splits[name]]

    first = source_splits(ab_folders, "paired", keep=["train"], held_out={"val": 0.34}, seed=1)
    again = source_splits(ab_folders, "paired", keep=["train"], held_out={"val": 0.34}, seed=1)
    assert list(first) == ["train", "val"]
    assert len(ids(first, "val")) == 2 and len(ids(first, "train")) == 4
    assert ids(first, "val") == ids(again, "val")
    assert sorted(ids(first, "train") + ids(first, "val")) == [f"p{i}" for i in range(6)]
    others = {
        tuple(ids(source_splits(ab_folders, "paired", held_out={"val": 0.34}, seed=s), "val"))
        for s in range(6)
    }
    assert len(others) > 1


def test_unpaired_folders_give_domain_splits(ab_folders):
    save(ab_folders / "trainB" / "extra.npy", 99)  # domains need not match
    splits = source_splits(ab_folders, "unpaired", held_out={"validation": 0.2}, seed=0)
    assert list(splits) == ["trainA", "trainB", "validationA", "validationB", "testA", "testB"]
    counts = {name: len(list(examples)) for name, examples in splits.items()}
    assert counts == {
        "trainA": 5,
        "trainB": 6,
        "validationA": 1,
        "validationB": 1,
        "testA": 2,
        "testB": 2,
    }
    assert set(next(iter(splits["testB"]))) == {"image", "id", "series", "position", "modality"}


def test_missing_splits_and_folders_are_data_errors(ab_folders, tmp_path):
    with pytest.raises(DataError, match=r"no split 'val' \(found: train, test\)"):
        source_splits(ab_folders, "paired", keep=["val"])
    with pytest.raises(DataError, match="no <split>A/<split>B folders"):
        source_splits(ab_folders / "trainA", "paired")
    with pytest.raises(DataError, match="missing: no such folder"):
        source_splits(tmp_path / "missing", "unpaired")
    with pytest.raises(DataError, match="drawn from the train examples, but no train split"):
        source_splits(ab_folders, "paired", keep=["test"], held_out={"val": 0.5})
    for side in "AB":
        save(tmp_path / "one" / f"train{side}" / "only.npy", 1.0)
    with pytest.raises(DataError, match=r"cannot draw split 'val': .*at least 2 groups"):
        source_splits(tmp_path / "one", "paired", held_out={"val": 0.5})


@pytest.fixture
def dicom_folder(tmp_path):
    """A real 5-slice CT series (pydicom's CT5N) under names that do not follow slice order,
    plus an NPY image."""
    series = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT5N"
    folder = tmp_path / "scan"
    folder.mkdir()
    for i, path in enumerate(sorted(series.iterdir())):
        shutil.copy(path, folder / f"{(7 * i) % 5}.dcm")
    save(folder / "zz_extra.npy", 5.0, (16, 16))
    return folder


def test_plain_folder_stores_series_in_slice_order_then_other_images(dicom_folder, tmp_path):
    splits = source_splits(dicom_folder, "folder")
    examples = list(splits["train"])
    assert len(examples) == 6
    positions = [example["position"] for example in examples[:5]]
    assert positions == sorted(positions) and len(set(positions)) == 5
    assert len({example["series"] for example in examples[:5]}) == 1
    assert examples[5]["id"].endswith("zz_extra.npy") and examples[5]["series"] is None
    for example in examples:
        np.testing.assert_array_equal(example["input"], example["target"])
    write_dataset(tmp_path / "ds", splits, progress=False)
    assert read_summary(tmp_path / "ds").splits["train"].series_ordered


def test_hold_out_keeps_a_series_together(dicom_folder):
    splits = source_splits(dicom_folder, "folder", held_out={"validation": 0.5}, seed=0)
    parts = [list(splits[name]) for name in ("train", "validation")]
    assert sorted(len(part) for part in parts) == [1, 5]  # the series and the NPY image


def test_hold_out_checks_its_fraction():
    with pytest.raises(ValueError, match=r"hold-out fraction must be in \(0, 1\), got 1.0"):
        hold_out([1, 2, 3], 1.0, seed=0)
    kept, held = hold_out(list(range(10)), 0.01, seed=0)
    assert len(held) == 1 and len(kept) == 9


def test_unpaired_hold_out_keeps_dicom_series_together(dicom_folder, tmp_path):
    for side in "AB":
        shutil.copytree(dicom_folder, tmp_path / "src" / f"train{side}" / "scan")
        save(tmp_path / "src" / f"train{side}" / "other.npy", 1.0)
    for seed in range(4):
        splits = source_splits(tmp_path / "src", "unpaired", held_out={"val": 0.2}, seed=seed)
        for side in "AB":
            series = [
                {example["series"] for example in splits[f"{part}{side}"]} - {None}
                for part in ("train", "val")
            ]
            assert not series[0] & series[1]
        assert [draw.groups for draw in splits.draws] == [1, 1]


def test_frames_of_one_npy_volume_stay_in_one_split(tmp_path):
    np.save(tmp_path / "volume.npy", np.zeros((4, 8, 8), np.float32))
    save(tmp_path / "single.npy", 1.0)
    for seed in range(3):
        splits = source_splits(tmp_path, "folder", held_out={"validation": 0.5}, seed=seed)
        parts = [{ex["id"] for ex in splits[name]} for name in ("train", "validation")]
        volume = {f"{tmp_path / 'volume.npy'}#{frame}" for frame in range(4)}
        assert volume in parts
