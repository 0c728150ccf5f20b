"""TFDS-format datasets: exact round trip, metadata, atomic and idempotent writes, no GCS."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from data_helpers import noise_image

from kerastrans.data.records import (
    is_dataset,
    load_builder,
    read_metadata,
    read_summary,
    write_dataset,
)
from kerastrans.errors import DataError

METADATA = {"units": "HU", "geometry": {"angles": 30, "detector": [1, 2.5]}, "note": None}


def paired_examples():
    """Pairs of several kinds: same size, 2x super-resolution, two input channels."""
    return {
        "train": [
            {
                "input": noise_image(1),
                "target": noise_image(2),
                "id": "a.dcm",
                "series": "1.2.3",
                "position": -2.5,
            },
            {
                "input": noise_image(3),
                "target": noise_image(4),
                "id": "b.dcm",
                "series": "1.2.3",
                "position": 2.5,
            },
            {
                "input": noise_image(5, (8, 10, 1)),
                "target": noise_image(6, (16, 20, 1)),
                "id": "sr.png",
            },
        ],
        "test": [
            {
                "input": noise_image(7, (12, 12, 2)),
                "target": noise_image(8, (12, 12, 1)),
                "id": "two-channels#3",
            }
        ],
    }


def read_back(path, split):
    return list(tfds.as_numpy(load_builder(path).as_dataset(split=split, shuffle_files=False)))


def test_round_trip_is_bit_exact_with_ids_positions_and_metadata(write):
    examples = paired_examples()
    path = write(examples, metadata=METADATA, description="round trip")
    assert read_metadata(path) == METADATA
    builder = tfds.builder_from_directory(os.fspath(path))
    assert builder.info.description == "round trip"
    assert builder.info.supervised_keys == ("input", "target")
    for split, written in examples.items():
        stored = read_back(path, split)
        assert builder.info.splits[split].num_examples == len(written)
        for original, record in zip(written, stored, strict=True):
            assert record["input"].dtype == np.float32
            np.testing.assert_array_equal(record["input"], original["input"])
            np.testing.assert_array_equal(record["target"], original["target"])
            assert record["id"].decode() == original["id"]
            assert record["series"].decode() == original.get("series", "")
            position = original.get("position")
            assert (
                np.isnan(record["position"])
                if position is None
                else (record["position"] == position)
            )


def test_summary_reports_counts_shapes_and_value_ranges(write):
    examples = paired_examples()
    summary = read_summary(write(examples))
    assert summary.kind == "paired"
    assert {name: split.num_examples for name, split in summary.splits.items()} == {
        "train": 3,
        "test": 1,
    }
    train = summary.splits["train"]
    assert train.features["target"].shapes == ((16, 16, 1), (16, 20, 1))
    assert train.size_ratio is None  # 1:1 pairs and a 2:1 pair
    inputs = [example["input"] for example in examples["train"]]
    assert train.features["input"].min == min(float(x.min()) for x in inputs)
    assert train.features["input"].max == max(float(x.max()) for x in inputs)
    mean = np.concatenate([x.ravel() for x in inputs]).astype(np.float64).mean()
    assert train.features["input"].mean == pytest.approx(mean, rel=1e-9)
    assert summary.splits["test"].size_ratio == (1.0, 1.0)
    assert "| test  | 1        | input   | 12x12x2" in summary.format(units="HU")


def test_unpaired_dataset_keeps_one_split_per_domain(write):
    domains = {
        "trainA": [{"image": noise_image(i), "id": f"a{i}"} for i in range(3)],
        "trainB": [{"image": noise_image(10 + i, (20, 20, 3)), "id": f"b{i}"} for i in range(2)],
    }
    path = write(domains)
    summary = read_summary(path)
    assert summary.kind == "unpaired"
    assert summary.splits["trainB"].features["image"].shapes == ((20, 20, 3),)
    stored = read_back(path, "trainB")
    np.testing.assert_array_equal(stored[1]["image"], domains["trainB"][1]["image"])
    assert load_builder(path).info.supervised_keys is None


def test_interrupted_build_leaves_no_dataset(tmp_path):
    def failing():
        yield {"input": noise_image(0), "target": noise_image(1), "id": "ok"}
        raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError, match="disk pulled out"):
        write_dataset(tmp_path / "ds", {"train": failing()}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_rerun_leaves_a_finished_dataset_untouched(write, tmp_path):
    path = write(paired_examples(), metadata={"version": 1})
    before = {item.name: item.read_bytes() for item in path.iterdir()}
    summary = write_dataset(
        path,
        {"train": [{"input": noise_image(9), "target": noise_image(9), "id": "new"}]},
        metadata={"version": 2},
        progress=False,
    )
    assert summary.reused and summary.splits["train"].num_examples == 3
    assert {item.name: item.read_bytes() for item in path.iterdir()} == before

    def failing():
        raise RuntimeError("crash")
        yield

    with pytest.raises(RuntimeError):
        write_dataset(path, {"train": failing()}, overwrite=True, progress=False)
    assert {item.name: item.read_bytes() for item in path.iterdir()} == before
    assert sorted(item.name for item in tmp_path.iterdir()) == ["ds"]


def test_overwrite_replaces_a_finished_dataset(write, tmp_path):
    path = write(paired_examples(), metadata={"version": 1})
    new = {"train": [{"input": noise_image(9), "target": noise_image(9), "id": "new"}]}
    summary = write_dataset(path, new, metadata={"version": 2}, overwrite=True, progress=False)
    assert not summary.reused and list(summary.splits) == ["train"]
    assert read_metadata(path) == {"version": 2}
    assert [record["id"] for record in read_back(path, "train")] == [b"new"]
    assert sorted(item.name for item in tmp_path.iterdir()) == ["ds"]


def test_folder_that_is_not_a_dataset_is_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    examples = {"train": [{"input": noise_image(0), "target": noise_image(0), "id": "x"}]}
    with pytest.raises(DataError, match="mine: exists and is not a dataset"):
        write_dataset(tmp_path / "mine", examples, overwrite=True, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert not is_dataset(tmp_path / "mine")
    with pytest.raises(DataError, match="mine: not a dataset"):
        load_builder(tmp_path / "mine")


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (
            {"input": noise_image(0).astype(np.float64), "target": noise_image(0)},
            r"bad: input must be a float32 H x W x C array, got float64 \(16, 16, 1\)",
        ),
        (
            {"input": noise_image(0)[..., 0], "target": noise_image(0)},
            r"bad: input must be a float32 H x W x C array, got float32 \(16, 16\)",
        ),
        (
            {"input": np.full((4, 4, 1), np.nan, np.float32), "target": noise_image(0)},
            "bad: input holds NaN or infinite values",
        ),
        (
            {"input": noise_image(0, (16, 16, 2)), "target": noise_image(0)},
            r"bad: input has 2 channels \(grey \+ alpha\), but good in split 'train' has 1 "
            r"channel \(grey\); the images of one split need one number of channels",
        ),
        (
            {"input": noise_image(0)},
            r"bad: example keys must be \['id', 'input', 'modality', 'position'",
        ),
    ],
)
def test_malformed_example_is_a_data_error_naming_its_id(tmp_path, example, message):
    good = {"input": noise_image(1), "target": noise_image(1), "id": "good"}
    with pytest.raises(DataError, match=message):
        write_dataset(tmp_path / "ds", {"train": [good, {**example, "id": "bad"}]}, progress=False)
    assert not (tmp_path / "ds").exists()


def test_bad_arguments_are_rejected_before_writing(tmp_path):
    example = {"input": noise_image(0), "target": noise_image(0), "id": "x"}
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        write_dataset(tmp_path / "ds", {"train": [example]}, metadata={"a": np.zeros(2)})
    with pytest.raises(ValueError, match=r"split names must match .* got 'train-1'"):
        write_dataset(tmp_path / "ds", {"train-1": [example]})
    with pytest.raises(DataError, match="split 'test': no examples"):
        write_dataset(tmp_path / "ds", {"train": [example], "test": []}, progress=False)
    assert not (tmp_path / "ds").exists()


def test_series_order_is_recorded(write):
    def example(series, position):
        return {
            "input": noise_image(0),
            "target": noise_image(0),
            "id": f"{series}{position}",
            "series": series,
            "position": position,
        }

    ordered = [example("s1", 0.0), example("s1", 1.0), example("s2", -5.0), example(None, 9.0)]
    interleaved = [example("s1", 0.0), example("s2", 0.0), example("s1", 1.0)]
    backwards = [example("s1", 1.0), example("s1", 0.0)]
    summary = read_summary(write({"a": ordered, "b": interleaved, "c": backwards}))
    assert [summary.splits[name].series_ordered for name in "abc"] == [True, False, False]


def test_writing_never_asks_gcs(write, monkeypatch):
    from tensorflow_datasets.core.utils import gcs_utils

    def no_network(*args, **kwargs):
        raise AssertionError("TFDS tried to reach GCS")

    monkeypatch.setattr(gcs_utils, "is_dataset_on_gcs", no_network)
    monkeypatch.setattr(gcs_utils, "download_gcs_dataset", no_network)
    path = write({"train": [{"input": noise_image(0), "target": noise_image(0), "id": "x"}]})
    assert is_dataset(path)


def test_a_build_leaves_nothing_in_the_temp_dir(tmp_path, monkeypatch):
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    image = np.zeros((4, 4, 1), np.float32)
    write_dataset(tmp_path / "ds", {"train": [{"input": image, "target": image, "id": "a"}]},
                  progress=False)  # fmt: skip
    assert list(temp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "temp"]
