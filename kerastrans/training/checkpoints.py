"""The resume state of a run: weights, optimizer state, epoch and step, written atomically.

A checkpoint is a folder ``checkpoints/ckpt-<global step>/`` holding
``model.weights.h5`` (the weights of the networks, both optimizers with their
iteration counts, on which the learning-rate schedules depend, and the image
pools), ``random_state.npz`` (the states of the model's random generators
(dropout, image pools, label jitter), which Keras leaves out of weight files)
and ``state.json`` (epoch, step within the epoch, global step). It is written under a temporary
name and renamed when complete (`kerastrans.atomic.atomic_directory`), so a
process killed at any moment (``kill -9``) leaves either the previous
checkpoint or the new one, never a half-written one that would load.

Keras' ``BackupAndRestore`` restores the epoch but not the step within it
and overwrites its files in place; this module is what makes the resume of
``kerastrans fit`` exact at step granularity.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np

from kerastrans.atomic import atomic_directory
from kerastrans.errors import DataError, file_error

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "remove_leftovers",
    "restore_latest",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

_PREFIX = "ckpt-"
_WEIGHTS = "model.weights.h5"
_RANDOM = "random_state.npz"
_STATE = "state.json"


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Where a run stands in a saved checkpoint.

    Attributes:
        path: The checkpoint folder.
        epoch: Index of the epoch in progress (= epochs completed when ``step`` is 0).
        step: Steps completed in that epoch.
        global_step: Steps completed in the whole run.
    """

    path: Path
    epoch: int
    step: int
    global_step: int

    @property
    def weights(self) -> Path:
        """The weights file (all variables of the model)."""
        return self.path / _WEIGHTS

    def restore(self, model: keras.Model) -> None:
        """Load the saved variables into ``model`` (built from the run's config).

        Raises:
            DataError: If the weights do not fit the model.
        """
        try:
            model.load_weights(self.weights)
        except (ValueError, OSError) as error:
            raise file_error(self.weights, f"cannot restore the model: {error}") from None
        path = self.path / _RANDOM
        try:
            with np.load(path) as saved:
                arrays = [saved[name] for name in saved.files]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise file_error(path, f"not readable: {error}") from None
        states = _random_states(model)
        if len(arrays) != len(states):
            raise file_error(
                path, f"holds {len(arrays)} random states, the model has {len(states)}"
            )
        for index, variable in enumerate(states):
            variable.assign(arrays[index])


def save_checkpoint(
    model: keras.Model,
    folder: str | os.PathLike,
    *,
    epoch: int,
    step: int,
    global_step: int,
    keep: int = 2,
) -> Checkpoint:
    """Save the model's variables and position atomically; keep the ``keep`` newest.

    Args:
        model: The model being trained.
        folder: The run's ``checkpoints/`` folder.
        epoch: Index of the epoch in progress.
        step: Steps completed in that epoch.
        global_step: Steps completed in the run (names the checkpoint).
        keep: Number of checkpoints kept (>= 1).

    Returns:
        The checkpoint written (or found, if one exists for ``global_step``).
    """
    folder = Path(folder)
    target = folder / f"{_PREFIX}{global_step:09d}"
    if not target.exists():
        with atomic_directory(target) as tmp:
            model.save_weights(tmp / _WEIGHTS)
            states = {str(i): np.asarray(v.numpy()) for i, v in enumerate(_random_states(model))}
            np.savez(tmp / _RANDOM, **states)
            state = {"epoch": epoch, "step": step, "global_step": global_step}
            (tmp / _STATE).write_text(json.dumps(state) + "\n", encoding="utf-8")
    for old in _checkpoint_folders(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return Checkpoint(target, epoch, step, global_step)


def latest_checkpoint(folder: str | os.PathLike) -> Checkpoint | None:
    """The newest complete checkpoint in ``folder``, or `None` if there is none.

    Complete means all files are there; whether they can be read shows only
    when they are loaded (`restore_latest`).
    """
    return next(_complete_checkpoints(Path(folder)), None)


def _complete_checkpoints(folder: Path) -> Iterator[Checkpoint]:
    """The checkpoints of ``folder`` that have all their files, newest first."""
    for path in reversed(_checkpoint_folders(folder)):
        try:
            state = json.loads((path / _STATE).read_text(encoding="utf-8"))
            checkpoint = Checkpoint(path, state["epoch"], state["step"], state["global_step"])
        except (OSError, ValueError, KeyError) as error:
            logger.warning("%s: skipped, not a complete checkpoint (%s)", path, error)
            continue
        if checkpoint.weights.is_file() and (path / _RANDOM).is_file():
            yield checkpoint


def restore_latest(
    model: keras.Model, folder: str | os.PathLike, *, set_aside: bool = True
) -> Checkpoint | None:
    """Restore the newest checkpoint of ``folder`` that can be read into ``model``.

    A checkpoint whose files are complete but cannot be read (a truncated or
    damaged weights file) is passed over with a one-line warning naming the
    file, and the one before it is tried: `save_checkpoint` keeps
    ``keep`` (default 2) of them for this.

    Args:
        model: The model built from the run's config.
        folder: The run's ``checkpoints/`` folder.
        set_aside: Rename an unreadable checkpoint to a hidden
            ``.ckpt-<step>.unreadable`` folder (kept for inspection), so that
            the run saves a good checkpoint of that step again. Only the
            process that writes the run directory sets aside.

    Returns:
        The checkpoint restored, or `None` if ``folder`` holds none.

    Raises:
        DataError: If checkpoints exist but none can be read (the message
            names the newest and its problem).
    """
    failures = []
    for checkpoint in _complete_checkpoints(Path(folder)):
        try:
            checkpoint.restore(model)
        except DataError as error:
            failures.append(error)
            logger.warning("%s; trying the checkpoint before it", error)
            if set_aside:
                _set_aside(checkpoint.path)
            continue
        return checkpoint
    if failures:
        raise file_error(folder, f"no readable checkpoint (newest: {failures[0]})")
    return None


def remove_leftovers(run_dir: str | os.PathLike) -> int:
    """Delete the temporary files and folders of writes that a killed process left behind.

    Only one process writes a run directory, so at its start nothing else
    can be writing them. Returns the number of items removed.
    """
    removed = 0
    for pattern in (".*.tmp-*", ".*.incomplete-*", "*/.*.tmp-*", "*/.*.incomplete-*"):
        for path in Path(run_dir).glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def _set_aside(path: Path) -> None:
    """Rename the checkpoint folder ``path`` to the hidden ``.<name>.unreadable``."""
    target = path.with_name(f".{path.name}.unreadable")
    shutil.rmtree(target, ignore_errors=True)  # one of an earlier run, for the same step
    path.rename(target)


def _random_states(model: keras.Model) -> list:
    """The model's variables that weight files leave out (random-generator states), in order."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _checkpoint_folders(folder: Path) -> list[Path]:
    """Checkpoint folders, oldest first (temporary folders of a write in progress are hidden)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(f"{_PREFIX}*") if path.is_dir())
