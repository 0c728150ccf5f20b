"""Truncated or damaged TFRecord shards are refused in one line naming the shard."""

import numpy as np
import pytest

from kerastrans.config import DataConfig, Window
from kerastrans.data import make_dataset
from kerastrans.data.records import load_builder, write_dataset
from kerastrans.data.shards import shard_errors
from kerastrans.errors import DataError
from kerastrans.evaluate import evaluate


@pytest.fixture
def dataset(tmp_path):
    """A paired dataset of four 8 x 8 pairs in split 'test', one shard."""
    rng = np.random.default_rng(0)
    pairs = [
        {"input": image, "target": image + 1, "id": f"p{i}"}
        for i, image in enumerate(rng.normal(0, 1, (4, 8, 8, 1)).astype(np.float32))
    ]
    write_dataset(tmp_path / "ds", {"test": pairs}, progress=False)
    [shard] = (tmp_path / "ds").glob("*.tfrecord-*")
    return tmp_path / "ds", shard


def test_a_truncated_shard_is_refused_by_name_before_reading(dataset):
    folder, shard = dataset
    size = shard.stat().st_size
    with open(shard, "r+b") as file:
        file.truncate(size - 100)
    message = (
        f"{shard}: truncated or corrupt TFRecord (record 4 ends at byte {size}, the file has "
        f"{size - 100}); rebuild the dataset (kerastrans records/simulate with --overwrite)"
    )
    with pytest.raises(DataError) as error:
        load_builder(folder)
    assert str(error.value) == message
    with pytest.raises(DataError, match="truncated or corrupt TFRecord"):
        evaluate(lambda images: images, folder, progress=False)


def test_a_shard_cut_at_a_record_boundary_has_too_few_records(dataset):
    folder, shard = dataset
    data = shard.read_bytes()
    length = int.from_bytes(data[:8], "little")
    shard.write_bytes(data[: 16 + length])  # the first record only
    with pytest.raises(DataError, match=r"\(1 records, dataset_info.json lists 4\)"):
        load_builder(folder)


def test_damaged_bytes_met_while_reading_name_the_shard(dataset):
    folder, shard = dataset
    data = bytearray(shard.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"  # inside the data of the first record: its checksum fails
    shard.write_bytes(bytes(data))
    load_builder(folder)  # the lengths are intact: only reading finds it
    with pytest.raises(DataError) as error:
        evaluate(lambda images: images, folder, progress=False)
    assert str(error.value).startswith(f"{shard}: truncated or corrupt TFRecord (corrupted record")
    config = DataConfig(input_window=Window(-1, 2), target_window=Window(-1, 3), batch_size=1)
    with pytest.raises(DataError, match="truncated or corrupt TFRecord"), shard_errors([folder]):
        list(make_dataset(folder, "test", config, training=False))
