"""``kerastrans fit`` refuses data it cannot train on in one line, before any run directory."""

import numpy as np
import pytest

from kerastrans.cli.main import main
from kerastrans.data import write_dataset


def pairs(*sizes):
    """One example per ``(input size, target size)``: float32 noise, ids p0, p1, ..."""
    rng = np.random.default_rng(0)
    return [
        {
            "input": rng.normal(0, 1, (*a, 1)).astype(np.float32),
            "target": rng.normal(0, 1, (*b, 1)).astype(np.float32),
            "id": f"p{i}",
        }
        for i, (a, b) in enumerate(sizes)
    ]


def fit(capsys, data, run, *extra):
    """Run ``kerastrans fit``; return (exit status, stderr lines)."""
    argv = ["fit", "--data", str(data), "--out", str(run), "--epochs", "1",
            "--steps-per-epoch", "1", "--no-progress", *extra]  # fmt: skip
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    return status, capsys.readouterr().err.strip().splitlines()


def test_pairs_of_two_sizes_are_noted_by_records_and_refused_by_pix2pix(tmp_path, capsys):
    for side, size in (("A", 32), ("B", 24)):
        (tmp_path / "src" / f"train{side}").mkdir(parents=True)
        for i in range(2):
            np.save(tmp_path / "src" / f"train{side}" / f"p{i}.npy", np.zeros((size, size)))
    data = tmp_path / "ds"
    assert main(["records", str(tmp_path / "src"), "--paired", "--out", str(data),
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    note = "note: split 'train': input and target differ in size (e.g. p0: 32x32x1 -> 24x24x1)"
    assert note in out
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "1")
    assert status == 1
    assert err == [
        f"kerastrans fit: error: {data}: split 'train' has pair 'p0': input 32x32 and target "
        "24x24; pix2pix outputs images of its input's size, so input and target of a pair need "
        "one size (resample the inputs, e.g. 'kerastrans simulate superres --upsample', or use "
        "--model automap)"
    ]
    assert not (tmp_path / "run").exists()


def test_automap_still_trains_on_pairs_of_two_sizes(tmp_path, capsys):
    data = tmp_path / "ds"  # sinogram -> image, super-resolution without resampling
    write_dataset(data, {"train": pairs(((8, 8), (16, 16)), ((8, 8), (16, 16)))}, progress=False)
    status, err = fit(capsys, data, tmp_path / "run", "--model", "automap", "--batch-size", "1",
                      "model.fc_layers=1", "model.generator.depth=2",
                      "model.generator.base_channels=4", "training.grid_images=0")  # fmt: skip
    assert (status, err) == (0, [])


def test_mixed_sizes_in_batches_are_refused_with_the_fix(tmp_path, capsys):
    data = tmp_path / "ds"
    write_dataset(data, {"train": pairs(((32, 32),) * 2, ((48, 48),) * 2)}, progress=False)
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "2")
    assert status == 1
    assert err == [
        f"kerastrans fit: error: {data}: split 'train' holds images of several sizes (input: "
        "32x32x1, 48x48x1), which cannot be batched 2 at a time; give --crop H W (at most 32 "
        "32) or --batch-size 1"
    ]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("crop", [("48", "16"), ("16", "40")])
def test_crop_larger_than_the_images_is_refused_with_both_sizes(tmp_path, capsys, crop):
    data = tmp_path / "ds"
    write_dataset(data, {"train": pairs(((32, 32),) * 2, ((40, 48),) * 2)}, progress=False)
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "2", "--crop", *crop)
    assert status == 1
    assert err == [
        f"kerastrans fit: error: {data}: crop {crop[0]}x{crop[1]} is larger than the smallest "
        "image of split 'train' (32x32); give --crop of at most 32 32"
    ]
    assert not (tmp_path / "run").exists()


TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1",
        "training.grid_images=0"]  # fmt: skip


def test_truncated_shard_is_one_line_before_the_run_directory(tmp_path, capsys):
    data = tmp_path / "ds"
    write_dataset(data, {"train": pairs(*[((16, 16), (16, 16))] * 4)}, progress=False)
    [shard] = data.glob("*.tfrecord-*")
    with open(shard, "r+b") as file:
        file.truncate(shard.stat().st_size // 2)
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "2", *TINY)
    assert status == 1 and len(err) == 1
    assert err[0].startswith(f"kerastrans fit: error: {shard}: truncated or corrupt TFRecord (")
    assert not (tmp_path / "run").exists()


def test_damaged_shard_met_in_training_is_one_line_naming_it(tmp_path, capsys):
    data = tmp_path / "ds"
    write_dataset(data, {"train": pairs(*[((16, 16), (16, 16))] * 4)}, progress=False)
    [shard] = data.glob("*.tfrecord-*")
    damaged = bytearray(shard.read_bytes())
    damaged[40:44] = b"\xff\xff\xff\xff"  # record data: lengths intact, the checksum fails
    shard.write_bytes(bytes(damaged))
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "2", *TINY)
    assert status == 1 and len(err) == 1
    assert err[0].startswith(
        f"kerastrans fit: error: {shard}: truncated or corrupt TFRecord (corrupted record at "
    )
    assert err[0].endswith("rebuild the dataset (kerastrans records/simulate with --overwrite)")


def test_sizes_that_pad_alike_still_batch(tmp_path, capsys):
    data = tmp_path / "ds"  # 31 and 32 both pad to 32 for the generator (multiple of 2)
    write_dataset(data, {"train": pairs(((31, 31),) * 2, ((32, 32),) * 2)}, progress=False)
    status, err = fit(capsys, data, tmp_path / "run", "--batch-size", "2", *TINY)
    assert (status, err) == (0, [])
