"""``kerastrans fit`` on the command line: defaults, resume after kill -9, errors."""

import json
import os
import signal
import subprocess
import sys
import time
import typing

import numpy as np
import pytest
from PIL import Image

from kerastrans.cli.fit import PRECISIONS, SCHEDULES, STRATEGIES, build_config
from kerastrans.cli.main import build_parser, main
from kerastrans.config import (
    Config,
    DataConfig,
    ScheduleConfig,
    Window,
    load_config,
    save_config,
    with_overrides,
)
from kerastrans.data import write_dataset
from kerastrans.precision import AUTO
from kerastrans.precision import PRECISIONS as LIBRARY_PRECISIONS
from kerastrans.runs import load_run
from kerastrans.training import STRATEGIES as LIBRARY_STRATEGIES
from kerastrans.training import fit, resolve_config
from kerastrans.training.checkpoints import latest_checkpoint
from kerastrans.training.resolve import CT_WINDOW

#: Small networks, so that the CLI tests train in seconds.
TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1"]  # fmt: skip


@pytest.fixture(scope="module")
def ct_slices(tmp_path_factory):
    """A dataset of 256 x 256 slices built by ``kerastrans records SOURCE --paired``."""
    root = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[:256, :256]
    for split, count in (("train", 2), ("test", 1)):
        (root / f"{split}A").mkdir()
        (root / f"{split}B").mkdir()
        for index in range(count):
            disc = (rows - 128) ** 2 + (columns - 128) ** 2 < (80 + 10 * index) ** 2
            clean = np.where(disc, 40.0, -1000.0).astype(np.float32)
            np.save(root / f"{split}B" / f"slice{index}.npy", clean)
            noisy = clean + rng.normal(0.0, 50.0, clean.shape).astype(np.float32)
            np.save(root / f"{split}A" / f"slice{index}.npy", noisy)
    assert main(["records", str(root), "--paired", "--out", str(root / "dataset")]) == 0
    return root / "dataset"


def test_defaults_train_on_records_of_256_slices(ct_slices, tmp_path, capsys):
    run = str(tmp_path / "run")
    command = ["fit", "--model", "pix2pix", "--data", str(ct_slices), "--out", run, "--epochs", "1",
               "--steps-per-epoch", "2", "--batch-size", "1", "--no-progress"]  # fmt: skip
    assert main(command) == 0
    config = load_config(tmp_path / "run" / "config.yaml")
    assert config.data.input_window == config.data.target_window == Window(-1024, 4095)  # HU
    assert config.model.input_shape == (256, 256, 1)
    assert config.data.validation == str(ct_slices)  # its 'test' split
    grid = Image.open(tmp_path / "run" / "grids" / "epoch_0001.png")
    assert grid.size == (4 * 256, 256)  # one test slice: input | output | target | difference
    assert "trained 2 steps" in capsys.readouterr().out

    assert main(command) == 0  # the same command again: finished, nothing trained
    assert "already finished (1 epochs, 2 steps)" in capsys.readouterr().out


def test_kill_9_mid_epoch_then_the_same_command_resumes_at_the_step(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pairs = [{"input": rng.normal(0, 1, (16, 16, 1)).astype(np.float32),
              "target": rng.normal(0, 1, (16, 16, 1)).astype(np.float32), "id": str(i)}
             for i in range(4)]  # fmt: skip
    write_dataset(tmp_path / "data", {"train": pairs}, progress=False)
    steps = 200
    command = ["fit", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
               "--epochs", "1", "--steps-per-epoch", str(steps), "--batch-size", "2",
               "--no-progress", "--set", "training.checkpoint_every=3", *TINY]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen([sys.executable, "-m", "kerastrans.cli.main", *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while latest_checkpoint(tmp_path / "run" / "checkpoints") is None:
            assert process.poll() is None, "training ended before a checkpoint was seen"
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    killed_at = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert killed_at.epoch == 0 and 0 < killed_at.step < steps  # mid-epoch
    assert not (tmp_path / "run" / "finished.json").exists()

    assert main(command) == 0
    out = capsys.readouterr().out
    assert f"resuming {tmp_path / 'run'} at epoch 1, step {killed_at.step}" in out
    finished = json.loads((tmp_path / "run" / "finished.json").read_text())
    assert finished["global_step"] == steps  # as many optimizer steps as an uninterrupted run
    assert int(load_run(tmp_path / "run").model.g_optimizer.iterations) == steps


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "0"], "argument --epochs: must be >= 1, got '0'"),
        (["--model", "unet"], "argument --model: invalid choice: 'unet'"),
        (["--crop", "64"], "argument --crop: expected 2 arguments"),
        ([], "--data is required"),
        (["--data", "DATA", "model.generator.dept=3"], "unknown key 'dept'"),
        (["--data", "DATA", "depth"], "override must look like 'section.key=value'"),
        (["--data", "DATA", "--window", "0", "0"], "window range must be > 0"),
        (["--data", "DATA", "--set", "losses.cycle=1"], "losses.cycle applies to cyclegan"),
        (["--data", "DATA", "--batch-size", "5"], "larger than the 2 training examples"),
        (["--data", "DATA", "--model", "automap"], "GiB to train, but only"),
    ],
)
def test_bad_arguments_are_one_line_errors_with_exit_2(
    arguments, message, ct_slices, tmp_path, capsys
):
    arguments = [str(ct_slices) if argument == "DATA" else argument for argument in arguments]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--out", str(tmp_path / "run"), *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("kerastrans fit: error: ")
    assert message in error
    assert not (tmp_path / "run").exists()


def test_config_mismatch_is_one_line_naming_the_keys(ct_slices, tmp_path, capsys):
    command = ["fit", "--data", str(ct_slices), "--out", str(tmp_path / "run"), "--epochs", "1"]
    # A run directory whose config asked for batches of 2 (written as fit writes it).
    args = build_parser().parse_args([*command, "--batch-size", "2"])
    save_config(resolve_config(build_config(args)), tmp_path / "run" / "config.yaml")
    assert main(command) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "differing keys: data.batch_size: 2 -> 1" in error


def test_a_run_of_an_older_preset_continues_from_its_own_config(ct_slices, tmp_path, capsys):
    run = tmp_path / "run"
    command = ["fit", "--data", str(ct_slices), "--out", str(run), "--epochs", "1", *TINY]
    # Trained when the model's preset said otherwise (as fbp-unet's residual_output changed).
    assert main([*command, "model.generator.residual_output=true"]) == 0
    capsys.readouterr()
    assert main(command) == 1
    error = capsys.readouterr().err
    assert "differing keys: model.generator.residual_output: true -> " in error
    assert f"--config {run / 'config.yaml'})" in error
    assert (
        main(["fit", "--config", str(run / "config.yaml"), "--out", str(run), "--epochs", "2"]) == 0
    )
    assert load_config(run / "config.yaml").model.generator.residual_output is True
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 2


def test_choices_match_the_library():
    assert (AUTO, *LIBRARY_PRECISIONS) == PRECISIONS
    assert STRATEGIES == LIBRARY_STRATEGIES
    assert typing.get_args(typing.get_type_hints(ScheduleConfig)["kind"]) == SCHEDULES


@pytest.mark.parametrize("units", ["HU", "stored values"])
def test_the_cli_and_the_library_resolve_one_config_to_the_same_run(tmp_path, units):
    rng = np.random.default_rng(0)
    low, high = (-1000.0, 1500.0) if units == "HU" else (0.0, 5.0)
    pairs = [{"input": rng.uniform(low, high, (16, 16, 1)).astype(np.float32),
              "target": rng.uniform(low, high, (16, 16, 1)).astype(np.float32), "id": str(i)}
             for i in range(2)]  # fmt: skip
    dataset = tmp_path / "data"
    write_dataset(dataset, {"train": pairs}, metadata={"units": units}, progress=False)
    # One config file, no window in it: the dataset decides.
    config = with_overrides(
        Config(data=DataConfig(dataset=str(dataset), seed=0)),
        [*TINY, "model.precision=float32", "training.epochs=1", "training.steps_per_epoch=1",
         "training.grid_images=0"],
    )  # fmt: skip
    save_config(config, tmp_path / "config.yaml")
    command = ["fit", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "cli"),
               "--no-progress"]  # fmt: skip
    assert main(command) == 0
    fit(load_config(tmp_path / "config.yaml"), tmp_path / "library", progress=False)
    from_cli, from_library = (
        load_config(tmp_path / run / "config.yaml") for run in ("cli", "library")
    )
    assert from_cli == from_library
    windows = (from_library.data.input_window, from_library.data.target_window)
    if units == "HU":
        assert windows == (CT_WINDOW, CT_WINDOW)
    else:  # the value range of each domain's training images
        for window, key in zip(windows, ("input", "target"), strict=True):
            values = np.stack([pair[key] for pair in pairs])
            assert (window.low, window.high) == pytest.approx((values.min(), values.max()))
