"""The project's reproducible datasets: shapes (synthetic) and pydicom_ct (real CT slices)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerastrans.data.recipes import RECIPES, build_pydicom_ct, build_recipe, build_shapes
from kerastrans.data.recipes.pydicom_ct import FILES, source_path
from kerastrans.data.recipes.shapes import BACKGROUND_HU, shapes_pair
from kerastrans.data.records import load_builder, read_metadata
from kerastrans.io import read_image


def stored(path, split):
    dataset = load_builder(path).as_dataset(split=split, shuffle_files=False)
    return list(tfds.as_numpy(dataset))


def test_shapes_pair_puts_ellipses_inside_the_rectangles():
    rectangles, ellipses = shapes_pair(np.random.default_rng(0), size=64)
    assert rectangles.shape == ellipses.shape == (64, 64, 1)
    assert rectangles.dtype == ellipses.dtype == np.float32
    inside_rectangles = rectangles != BACKGROUND_HU
    inside_ellipses = ellipses != BACKGROUND_HU
    assert np.all(inside_rectangles[inside_ellipses])
    assert inside_ellipses.sum() < inside_rectangles.sum()
    assert set(np.unique(ellipses)) <= set(np.unique(rectangles))
    with pytest.raises(ValueError, match="size must be >= 16 pixels, got 8"):
        shapes_pair(np.random.default_rng(0), size=8)


def test_shapes_dataset_is_reproducible_from_its_seed(tmp_path):
    summaries = [
        build_shapes(tmp_path / name, size=32, n_train=5, n_test=2, seed=seed, progress=False)
        for name, seed in (("a", 4), ("b", 4), ("c", 5))
    ]
    assert {name: split.num_examples for name, split in summaries[0].splits.items()} == {
        "train": 5,
        "test": 2,
    }
    assert summaries[0].splits["train"].features["input"].shapes == ((32, 32, 1),)
    a, b, c = (stored(tmp_path / name, "train") for name in "abc")
    for first, second in zip(a, b, strict=True):
        np.testing.assert_array_equal(first["input"], second["input"])
    assert not np.array_equal(a[0]["input"], c[0]["input"])
    assert a[3]["id"] == b"shapes/train/00003"
    assert read_metadata(tmp_path / "a")["seed"] == 4


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # bad_sequence.dcm, a real file
def test_pydicom_ct_dataset_holds_the_real_slices_in_hu(tmp_path):
    summary = build_pydicom_ct(tmp_path / "ct", noise_std=30.0, progress=False)
    assert {name: split.num_examples for name, split in summary.splits.items()} == {
        "train": 4,
        "test": 1,
    }
    assert summary.splits["train"].features["target"].shapes == ((512, 512, 1),)
    assert summary.splits["test"].features["target"].shapes == ((128, 128, 1),)
    records = stored(tmp_path / "ct", "train")
    assert [record["id"].decode() for record in records] == [
        f"pydicom:{name}" for name in FILES["train"]
    ]
    head = records[0]
    np.testing.assert_array_equal(head["target"], read_image(source_path("693_UNCI.dcm")))
    assert head["target"].min() < -1000 < 0 < head["target"].max()  # air and bone, in HU
    assert np.std(head["input"] - head["target"]) == pytest.approx(30.0, rel=0.02)
    metadata = read_metadata(tmp_path / "ct")
    assert metadata["units"] == "HU" and metadata["noise_std_hu"] == 30.0


def test_recipes_are_built_by_name(tmp_path):
    assert set(RECIPES) == {"pydicom_ct", "shapes"}
    summary = build_recipe("shapes", tmp_path / "s", size=16, n_train=2, n_test=1, progress=False)
    assert summary.splits["test"].num_examples == 1
    with pytest.raises(ValueError, match=r"recipe must be one of \['pydicom_ct', 'shapes'\]"):
        build_recipe("mnist", tmp_path / "m")
