"""`fit`: run directories, exact resume, finished runs, config mismatches, grids."""

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from kerastrans.config import (
    Config,
    DataConfig,
    ModelConfig,
    TrainingConfig,
    load_config,
    with_overrides,
)
from kerastrans.errors import DataError
from kerastrans.training import fit
from kerastrans.training.checkpoints import latest_checkpoint

STEPS = 4  # 8 training pairs, batch size 2


class Crash(keras.callbacks.Callback):
    """Stops training abruptly after ``at`` steps, as a killed process would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.steps = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.at:
            raise KeyboardInterrupt("simulated crash")


def _random_config(dataset) -> Config:
    """Everything random at once: augmentation, dropout, an image pool, a decaying schedule."""
    return Config(
        data=DataConfig(dataset=str(dataset), batch_size=2, seed=3, crop=(8, 8),
                        augment={"flip_left_right": True, "rotation": 20.0}),
        model=ModelConfig(generator={"depth": 2, "base_channels": 4, "dropout": 0.3},
                          discriminator={"base_channels": 4, "depth": 1}, pool_size=3),
        training=TrainingConfig(epochs=2, checkpoint_every=1, grid_images=2,
                                schedule={"kind": "linear", "decay_start": 0.25}),
    )  # fmt: skip


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def uninterrupted(paired_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "whole"
    return fit(_random_config(paired_dataset), run_dir, strategy="default", progress=False)


def test_resume_after_a_crash_matches_an_uninterrupted_run(paired_dataset, tmp_path, uninterrupted):
    config = _random_config(paired_dataset)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "run", strategy="default", progress=False, callbacks=[Crash(6)])
    checkpoint = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert (checkpoint.epoch, checkpoint.step, checkpoint.global_step) == (1, 2, 6)
    assert [row["epoch"] for row in _history(tmp_path / "run")] == ["1"]

    resumed = fit(config, tmp_path / "run", strategy="default", progress=False)
    assert resumed.resumed_from.global_step == 6
    assert resumed.trained_steps == 2 and resumed.global_step == 2 * STEPS
    assert int(resumed.model.g_optimizer.iterations) == int(
        uninterrupted.model.g_optimizer.iterations
    )
    # Same weights, optimizer moments, image pool and random states, bit for bit.
    for ours, theirs in zip(resumed.model.variables, uninterrupted.model.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    # The learning-rate schedule continued where it stopped.
    rates = [float(row["g_lr"]) for row in _history(tmp_path / "run")]
    assert rates == [float(row["g_lr"]) for row in _history(uninterrupted.run_dir)]
    assert rates[0] > rates[1]


def test_truncated_newest_checkpoint_falls_back_to_the_one_before(
    paired_dataset, tmp_path, uninterrupted, caplog
):
    config = _random_config(paired_dataset)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "run", strategy="default", progress=False, callbacks=[Crash(6)])
    newest = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert newest.global_step == 6
    data = newest.weights.read_bytes()
    newest.weights.write_bytes(data[: len(data) // 2])  # a disk that filled up, a bad copy

    resumed = fit(config, tmp_path / "run", strategy="default", progress=False)
    assert resumed.resumed_from.global_step == 5
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("kerastrans")]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{newest.weights}: cannot restore the model: ")
    assert warnings[0].endswith("; trying the checkpoint before it")
    # Set aside (kept for inspection), so that step 6 was saved again, readable.
    assert (newest.path.parent / ".ckpt-000000006.unreadable").is_dir()
    assert resumed.global_step == 2 * STEPS
    for ours, theirs in zip(resumed.model.variables, uninterrupted.model.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_run_directory_holds_config_model_logs_history_and_grids(uninterrupted):
    run_dir = uninterrupted.run_dir
    assert load_config(run_dir / "config.yaml") == uninterrupted.config
    assert uninterrupted.config.model.input_shape == (8, 8, 1)  # the crop
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(
        model.generator.weights[0].numpy(), uninterrupted.model.generator.weights[0].numpy()
    )
    rows = _history(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"g_loss", "d_loss", "l1", "val_psnr", "val_ssim", "g_lr", "d_lr"} <= set(rows[0])
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "logs" / "validation").glob("events.out.tfevents.*"))
    grid = Image.open(run_dir / "grids" / "epoch_0002.png")
    # 2 whole 16 x 16 validation images x (input | output | target | difference)
    assert (grid.mode, grid.size) == ("L", (4 * 16, 2 * 16))
    assert json.loads((run_dir / "finished.json").read_text())["global_step"] == 2 * STEPS
    assert len(list((run_dir / "checkpoints").iterdir())) == 2  # keep_checkpoints


def test_finished_run_is_not_trained_again_unless_more_epochs_are_asked(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run_dir)
    config = _random_config(uninterrupted.config.data.dataset)
    again = fit(config, run_dir, strategy="default", progress=False)
    assert again.already_finished and again.model is None and again.trained_steps == 0
    longer = with_overrides(config, ["training.epochs=3"])
    more = fit(longer, run_dir, strategy="default", progress=False)
    assert (more.trained_steps, more.global_step, more.epochs) == (STEPS, 3 * STEPS, 3)
    assert [row["epoch"] for row in _history(run_dir)] == ["1", "2", "3"]


def test_another_config_is_refused_naming_the_differing_keys(uninterrupted):
    config = _random_config(uninterrupted.config.data.dataset)
    other = with_overrides(config, ["data.batch_size=4"])
    with pytest.raises(DataError, match=r"config.yaml: .*differing keys: data.batch_size: 2 -> 4"):
        fit(other, uninterrupted.run_dir, strategy="default", progress=False)


def test_cyclegan_grid_shows_both_cycles(unpaired_dataset, tmp_path):
    config = Config(
        # No validation split: the grid shows training images.
        data=DataConfig(dataset=str(unpaired_dataset), batch_size=2, seed=1, eval_split="none"),
        model=ModelConfig(kind="cyclegan", pool_size=2,
                          generator={"depth": 2, "base_channels": 4, "residual_blocks": 1},
                          discriminator={"base_channels": 4, "depth": 1}),
        training=TrainingConfig(epochs=1, steps_per_epoch=1, grid_images=2),
    )  # fmt: skip
    fit(config, tmp_path / "run", strategy="default", progress=False)
    grid = Image.open(tmp_path / "run" / "grids" / "epoch_0001.png")
    # A | A->B | A->B->A | B | B->A | B->A->B, two examples of 16 x 16
    assert grid.size == (6 * 16, 2 * 16)
