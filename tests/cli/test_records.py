"""``kerastrans records``: folders and list files in, a summary out, one-line errors."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from kerastrans.cli.main import main
from kerastrans.cli.records import RECIPES, parse_split
from kerastrans.config import Window
from kerastrans.data.recipes import RECIPES as LIBRARY_RECIPES
from kerastrans.data.records import read_metadata, read_summary


def save(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(values, np.float32))


@pytest.fixture
def folders(tmp_path):
    """trainA/trainB: 3 pairs of 6 x 5 images with values -100..129, target = input + 1000."""
    for i in range(3):
        image = np.arange(30, dtype=np.float32).reshape(6, 5) + 100 * i - 100
        save(tmp_path / "src" / "trainA" / f"s{i}.npy", image)
        save(tmp_path / "src" / "trainB" / f"s{i}.npy", image + 1000)
    return tmp_path / "src"


def run(capsys, *argv):
    """Run the CLI; return (exit status, stdout, stderr)."""
    try:
        status = main(["records", *map(str, argv)])
    except SystemExit as exit_info:
        status = exit_info.code
    out, err = capsys.readouterr()
    return status, out, err


def test_paired_folders_are_written_and_summarised(folders, tmp_path, capsys):
    status, out, _ = run(capsys, folders, "--out", tmp_path / "ds", "--paired", "--no-progress")
    assert status == 0
    assert f"{tmp_path / 'ds'}: paired dataset written" in out
    assert "| train | 3        | input   | 6x5x1    | -100 | 129  | 14.5   |" in out
    assert "| train | 3        | target  | 6x5x1    | 900  | 1129 | 1014.5 |" in out
    summary = read_summary(tmp_path / "ds")
    assert summary.splits["train"].num_examples == 3
    assert read_metadata(tmp_path / "ds")["mode"] == "paired"
    builder = tfds.builder_from_directory(str(tmp_path / "ds"))
    assert builder.info.splits["train"].num_examples == 3


def test_rerun_reports_the_existing_dataset(folders, tmp_path, capsys):
    run(capsys, folders, "--out", tmp_path / "ds", "--paired", "--no-progress")
    (folders / "trainA" / "s0.npy").unlink()  # would not pair any more: the source is not read
    status, out, _ = run(capsys, folders, "--out", tmp_path / "ds", "--paired")
    assert status == 0
    assert "exists, left untouched (--overwrite rebuilds it)" in out
    assert "| train | 3 " in out


def test_list_file_with_two_input_channels_and_a_validation_split(tmp_path, capsys):
    lines = []
    for i in range(4):
        for name, value in (("t1", i), ("t2", 10 + i), ("ct", 100 + i)):
            save(tmp_path / "data" / f"{name}_{i}.npy", np.full((4, 4), value))
        lines.append(f"data/t1_{i}.npy\tdata/t2_{i}.npy\tdata/ct_{i}.npy")
    (tmp_path / "pairs.tsv").write_text("# t1\tt2\tct\n" + "\n".join(lines) + "\n")
    status, out, _ = run(
        capsys,
        "--pairs",
        tmp_path / "pairs.tsv",
        "--out",
        tmp_path / "ds",
        "--split",
        "0.25",
        "--seed",
        "3",
        "--no-progress",
    )
    assert status == 0
    assert "| train      | 3        | input   | 4x4x2" in out
    assert "| validation | 1        | target  | 4x4x1" in out
    metadata = read_metadata(tmp_path / "ds")
    draws = metadata["split"].pop("draws")
    assert metadata["split"] == {"kept": [], "held_out": {"validation": 0.25}, "seed": 3}
    assert [(draw["split"], draw["count"], draw["total"]) for draw in draws] == [
        ("validation", 1, 4)
    ]


def test_unpaired_folders_give_domain_splits(folders, tmp_path, capsys):
    save(folders / "trainB" / "extra.npy", np.zeros((7, 7)))
    status, out, _ = run(capsys, folders, "--out", tmp_path / "ds", "--unpaired", "--no-progress")
    assert status == 0
    assert "unpaired dataset written" in out
    assert "| trainB | 4        | image   | 6x5x1, 7x7x1" in out


def test_plain_folder_gives_input_equal_to_target(folders, tmp_path, capsys):
    status, _, _ = run(capsys, folders / "trainA", "--out", tmp_path / "ds", "--no-progress")
    assert status == 0
    summary = read_summary(tmp_path / "ds")
    stats = summary.splits["train"].features
    assert stats["input"] == stats["target"]


def test_unpairable_names_are_a_one_line_error(folders, tmp_path, capsys):
    save(folders / "trainA" / "lonely.npy", np.zeros((6, 5)))
    status, _, err = run(capsys, folders, "--out", tmp_path / "ds", "--paired")
    assert status == 1
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("kerastrans records: error: ") and "lonely" in err
    assert not (tmp_path / "ds").exists()


def test_missing_folder_is_a_one_line_error(tmp_path, capsys):
    status, _, err = run(capsys, tmp_path / "nowhere", "--out", tmp_path / "ds", "--paired")
    assert status == 1
    assert err.strip() == f"kerastrans records: error: {tmp_path / 'nowhere'}: no such folder"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["src", "--out", "ds", "--paired", "--unpaired"], "not allowed with argument"),
        (["--out", "ds", "--paired"], "SOURCE is required"),
        (["src", "--out", "ds", "--split", "1.5"], "0 < FRACTION < 1, got '1.5'"),
        (["src", "--out", "ds", "--split", "tr-ain"], "split name must be letters"),
        (["a.tsv", "--out", "ds", "--pairs", "b.tsv"], "give the list file once"),
        (["--out", "ds", "--recipe", "mnist"], "invalid choice: 'mnist'"),
        (["src", "--paired"], "the following arguments are required: --out"),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, argv, message):
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_split_spec_parsing():
    assert parse_split("train,test") == (("train", "test"), {})
    assert parse_split("train, validation=0.2") == (("train",), {"validation": 0.2})
    assert parse_split("0.1") == ((), {"validation": 0.1})


def test_recipe_names_match_the_library_and_build(tmp_path, capsys):
    assert set(RECIPES) == set(LIBRARY_RECIPES)
    status, out, _ = run(
        capsys, "--recipe", "shapes", "--out", tmp_path / "shapes", "--no-progress"
    )
    assert status == 0
    assert "| train | 256      | input   | 128x128x1 | -1000" in out


def test_a_folder_mixing_ct_and_mr_is_refused_naming_both_files(tmp_path, capsys):
    from pydicom.data import get_testdata_file

    (tmp_path / "scans").mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (tmp_path / "scans" / name).symlink_to(get_testdata_file(name))
    status, out, err = run(capsys, tmp_path / "scans", "--out", tmp_path / "ds", "--no-progress")
    assert status == 1 and out == "" and not (tmp_path / "ds").exists()
    assert err.strip().splitlines() == [
        f"kerastrans records: error: {tmp_path / 'scans' / 'MR_small.dcm'}: modality MR, but "
        f"{tmp_path / 'scans' / 'CT_small.dcm'} (input) is CT; build one dataset per modality"
    ]


def rgb_and_grey(folder, names_rgb, names_grey):
    folder.mkdir()
    for name in names_rgb:
        Image.fromarray(np.full((4, 4, 3), 200, np.uint8)).save(folder / name)
    for name in names_grey:
        Image.fromarray(np.full((4, 4), 100, np.uint8)).save(folder / name)


@pytest.mark.parametrize(
    ("rgb", "grey", "others"),
    [
        ("a.png", ["b.png", "c.png", "d.png"], "the examples after it ({b}, {c})"),
        ("b.png", ["a.png", "c.png"], "the examples around it ({a}, {c})"),
        ("d.png", ["a.png", "b.png", "c.png"], "the 3 examples before it"),
    ],
)
def test_an_rgb_file_among_grey_ones_is_named(tmp_path, capsys, rgb, grey, others):
    rgb_and_grey(tmp_path / "src", [rgb], grey)
    status, _, err = run(capsys, tmp_path / "src", "--out", tmp_path / "ds", "--no-progress")
    names = {name[0]: tmp_path / "src" / name for name in ("a.png", "b.png", "c.png")}
    assert status == 1
    assert err.strip().splitlines() == [
        f"kerastrans records: error: {tmp_path / 'src' / rgb}: input has 3 channels (RGB), but "
        f"{others.format(**names)} in split 'train' have 1 channel (grey); the images of one split "
        "need one number of channels (convert the odd file or leave it out)"
    ]


def test_an_rgb_folder_is_not_labelled_hu(tmp_path, capsys):
    from kerastrans.training import default_windows

    rgb_and_grey(tmp_path / "src", ["a.png", "b.png"], [])
    status, out, _ = run(capsys, tmp_path / "src", "--out", tmp_path / "ds", "--no-progress")
    assert status == 0 and "HU" not in out
    assert "units: input values as stored (3 channels, not CT), target values as" in out
    assert default_windows(tmp_path / "ds") == (Window(200, 1e-6), Window(200, 1e-6))


def write_series(folder, uid, slices, *, prefix):
    """Write ``slices`` slices of pydicom's CT_small.dcm (128 x 128 HU) as one series ``uid``."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(slices):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.SeriesInstanceUID = uid
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = index + 1
        dataset.ImagePositionPatient = [0.0, 0.0, 5.0 * index]
        dataset.save_as(folder / f"{prefix}_slice_{index:02d}.dcm")


@pytest.fixture
def series_pairs(tmp_path):
    """trainA/trainB: three real 6-slice CT series (18 pairs), one SeriesInstanceUID each."""
    from pydicom.uid import generate_uid

    root = tmp_path / "series"
    for number in range(3):
        uid = generate_uid()
        for side in "AB":
            write_series(root / f"train{side}", uid, 6, prefix=f"s{number}")
    return root


def test_random_split_keeps_every_dicom_series_in_one_split(series_pairs, tmp_path, capsys):
    out = tmp_path / "ds"
    status, stdout, _ = run(
        capsys, series_pairs, "--paired", "--split", "train,validation=0.1", "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert status == 0
    builder = tfds.builder_from_directory(str(out))
    series = {
        split: {example["series"].decode() for example in tfds.as_numpy(builder.as_dataset(split))}
        for split in ("train", "validation")
    }
    assert len(series["train"]) == 2 and len(series["validation"]) == 1
    assert not series["train"] & series["validation"]
    # 10 % of 18 pairs cannot be met with series of 6: what was reached is said.
    assert (
        "random split validation: 1 of 3 groups (DICOM series or files) from train, "
        "6 of 18 examples = 33.3% (asked 10.0%)" in stdout
    )
    assert read_metadata(out)["split"]["draws"][0]["groups"] == 1


def test_output_under_a_file_is_one_line_naming_it(folders, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    status, _, err = run(capsys, folders, "--paired", "--out", tmp_path / "afile" / "ds")
    assert status == 1
    assert err == (
        f"kerastrans records: error: {tmp_path / 'afile'}: is a file, not a folder; "
        f"cannot create {tmp_path / 'afile' / 'ds'}\n"
    )
    status, _, err = run(capsys, folders, "--paired", "--out", tmp_path / "afile")
    assert (status, err) == (
        1,
        f"kerastrans records: error: {tmp_path / 'afile'}: is a file, not a dataset folder; "
        "choose another output folder\n",
    )


def test_unwritable_output_folder_is_one_line(folders, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(locked) and
                        writable(path, mode))  # fmt: skip
    status, _, err = run(capsys, folders, "--paired", "--out", locked / "ds")
    assert (status, err) == (
        1,
        f"kerastrans records: error: {locked}: folder is not writable; cannot create "
        f"{locked / 'ds'}\n",
    )


def test_permission_denied_while_writing_is_one_line(folders, tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)  # e.g. a read-only network share
    status, _, err = run(capsys, folders, "--paired", "--out", tmp_path / "ds", "--no-progress")
    assert (status, err) == (
        1,
        f"kerastrans records: error: {tmp_path}: permission denied; cannot write the dataset "
        f"{tmp_path / 'ds'}\n",
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_read_only_output_folder_is_one_line(folders, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        status, _, err = run(capsys, folders, "--paired", "--out", locked / "ds")
    finally:
        locked.chmod(0o755)
    assert status == 1 and err.count("\n") == 1 and "folder is not writable" in err
