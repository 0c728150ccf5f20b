"""Checkpoints: atomic, the newest ones kept, incomplete ones never loaded."""

import keras
import numpy as np
import pytest

from kerastrans.errors import DataError
from kerastrans.training.checkpoints import (
    latest_checkpoint,
    remove_leftovers,
    restore_latest,
    save_checkpoint,
)


def _model(seed: int) -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5, seed=seed),
                              keras.layers.Dense(2)])  # fmt: skip
    model.layers[-1].kernel.assign(np.full((3, 2), float(seed), np.float32))
    return model


def test_checkpoint_restores_weights_and_random_states(tmp_path):
    model = _model(1)
    model(np.ones((4, 3), np.float32), training=True)  # advances the dropout's random state
    saved = save_checkpoint(model, tmp_path, epoch=2, step=3, global_step=11)
    other = _model(2)
    latest_checkpoint(tmp_path).restore(other)
    for ours, theirs in zip(other.variables, model.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert (saved.epoch, saved.step, saved.global_step) == (2, 3, 11)
    assert saved.path.name == "ckpt-000000011"


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    model = _model(1)
    for step in range(1, 5):
        save_checkpoint(model, tmp_path, epoch=0, step=step, global_step=step, keep=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt-000000003", "ckpt-000000004"]
    assert latest_checkpoint(tmp_path).global_step == 4


def test_incomplete_checkpoints_are_skipped_and_leftovers_removed(tmp_path):
    model = _model(1)
    save_checkpoint(model, tmp_path / "checkpoints", epoch=0, step=1, global_step=1)
    # A newer checkpoint that lost a file, and the hidden folder of a write that was killed.
    broken = save_checkpoint(model, tmp_path / "checkpoints", epoch=0, step=2, global_step=2)
    (broken.path / "random_state.npz").unlink()
    (tmp_path / "checkpoints" / ".ckpt-000000003.incomplete-abcd").mkdir()
    (tmp_path / ".model.keras.tmp-xyz.keras").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path / "checkpoints").global_step == 1
    assert remove_leftovers(tmp_path) == 2
    assert not list(tmp_path.glob("**/.*"))
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_unreadable_checkpoints_are_passed_over_then_refused(tmp_path, caplog):
    older = save_checkpoint(_model(1), tmp_path, epoch=0, step=1, global_step=1)
    newest = save_checkpoint(_model(2), tmp_path, epoch=0, step=2, global_step=2)
    (newest.path / "random_state.npz").write_bytes(b"PK\x03\x04 truncated")
    model = _model(3)
    assert restore_latest(model, tmp_path, set_aside=False) == older
    assert float(model.layers[-1].kernel[0, 0]) == 1.0  # the older checkpoint's weights
    assert caplog.records[-1].getMessage().startswith(f"{newest.path / 'random_state.npz'}: ")
    assert latest_checkpoint(tmp_path) == newest  # not set aside: still there

    older.weights.write_bytes(older.weights.read_bytes()[:100])
    with pytest.raises(DataError, match=r"no readable checkpoint \(newest: .*ckpt-000000002"):
        restore_latest(model, tmp_path)
    assert latest_checkpoint(tmp_path) is None  # both set aside
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".ckpt-000000001.unreadable",
        ".ckpt-000000002.unreadable",
    ]
