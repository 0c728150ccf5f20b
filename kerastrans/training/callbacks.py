"""Callbacks that keep a run directory up to date while ``model.fit`` trains.

`kerastrans.training.fit` calls ``model.fit`` once per epoch (so that each
epoch streams its own deterministic batches, see
`kerastrans.training.data`); these callbacks live across those calls and
know the run's position through a shared `Position`:

- `ResumeCheckpoint`: the resume state every N steps and at each epoch end,
  and ``model.keras`` at each epoch end, all atomic;
- `BestModel`: the model of the best epoch by a validation metric
  (``training.keep_best``), ``best-epoch_NNNN.keras`` named by ``best.json``;
- `HistoryCSV`: one row of losses, validation metrics and learning rates per
  epoch in ``history.csv``, rewritten atomically;
- `ImageGrids`: ``grids/epoch_NNNN.png``;
- `LearningRates`: adds ``g_lr``/``d_lr`` to the epoch logs;
- `EpochSummaries`: the epoch logs as TensorBoard scalars in ``logs/train``
  and ``logs/validation`` (written with TensorFlow's own summary ops, so the
  ``tensorboard`` package is needed only to view them);
- `RunProgbar`: Keras' progress bar, counting epochs and steps of the whole run
  (plain lines when standard output is not a terminal).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
from pathlib import Path

import keras
import tensorflow as tf

from kerastrans._compat import ProgbarLogger, scalar_summary_metadata
from kerastrans.atomic import atomic_path, atomic_write_text
from kerastrans.errors import file_error
from kerastrans.training.checkpoints import save_checkpoint
from kerastrans.training.grids import GridRenderer

__all__ = [
    "BestModel",
    "EpochSummaries",
    "HistoryCSV",
    "ImageGrids",
    "LearningRates",
    "Position",
    "ResumeCheckpoint",
    "RunProgbar",
    "higher_is_better",
    "read_best",
    "read_history",
    "save_model",
]

#: The record of `BestModel` in a run directory.
BEST_RECORD = "best.json"


@dataclasses.dataclass
class Position:
    """Where the run stands; updated by `ResumeCheckpoint`, read by the others.

    Attributes:
        epochs: Epochs of the whole run.
        steps_per_epoch: Steps of every epoch.
        epoch: Index of the epoch in progress.
        offset: Steps of this epoch done before the current ``fit`` call (resume).
        step: Steps of this epoch done so far.
    """

    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    offset: int = 0
    step: int = 0

    @property
    def global_step(self) -> int:
        """Steps done in the whole run."""
        return self.epoch * self.steps_per_epoch + self.step


def save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """Save ``model`` as a ``.keras`` file atomically."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves the resume state every ``every`` steps and at each epoch end, plus ``model.keras``.

    A step checkpoint is not taken at the last step of an epoch: the epoch-end
    checkpoint follows validation, the CSV row and the grid, so a run killed in
    between repeats them on resume instead of losing them.

    Args:
        run_dir: Folder written (the run directory, or a worker's temporary one).
        position: The shared position of the run.
        every: Steps between checkpoints.
        keep: Checkpoints kept.
    """

    def __init__(self, run_dir: Path, position: Position, every: int, keep: int) -> None:
        super().__init__()
        self.run_dir, self.position, self.every, self.keep = Path(run_dir), position, every, keep

    def on_epoch_begin(self, epoch, logs=None):
        self.position.epoch = epoch
        self.position.step = self.position.offset

    def on_train_batch_end(self, batch, logs=None):
        position = self.position
        position.step = position.offset + batch + 1
        if position.step % self.every == 0 and position.step < position.steps_per_epoch:
            self._save(position.epoch, position.step)

    def on_epoch_end(self, epoch, logs=None):
        save_model(self.model, self.run_dir / "model.keras")
        self.position.epoch, self.position.step, self.position.offset = epoch + 1, 0, 0
        self._save(epoch + 1, 0)

    def _save(self, epoch: int, step: int) -> None:
        save_checkpoint(
            self.model,
            self.run_dir / "checkpoints",
            epoch=epoch,
            step=step,
            global_step=epoch * self.position.steps_per_epoch + step,
            keep=self.keep,
        )


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better: PSNR and SSIM; losses are lower-better."""
    return any(name in metric for name in ("psnr", "ssim"))


def read_best(run_dir: str | os.PathLike) -> dict | None:
    """The record of the best epoch (``epoch``, ``metric``, ``value``, ``file``), or `None`.

    Raises:
        DataError: If ``best.json`` is damaged (not JSON, or a key missing).
    """
    path = Path(run_dir) / BEST_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        missing = {"epoch", "metric", "value", "file"} - set(record)
    except (ValueError, TypeError) as error:
        raise file_error(path, f"not a readable best-model record ({error})") from None
    if missing:
        raise file_error(path, f"not a best-model record (missing {', '.join(sorted(missing))})")
    return record


class BestModel(keras.callbacks.Callback):
    """Keeps the model of the epoch with the best validation ``metric`` (``training.keep_best``).

    At an epoch end that improves on the best so far (read back from
    ``best.json`` on resume), the model is saved as ``best-epoch_NNNN.keras``,
    then ``best.json`` is rewritten to name it, then older best files are
    removed: each write is atomic and the record always names a complete
    file, whenever the run is killed. A NaN never counts as an improvement.

    Args:
        run_dir: Folder written (the run directory, or a worker's temporary one).
        metric: Key of the epoch logs, e.g. ``"val_psnr"``.
    """

    def __init__(self, run_dir: Path, metric: str) -> None:
        super().__init__()
        self.run_dir, self.metric = Path(run_dir), metric
        self.sign = 1.0 if higher_is_better(metric) else -1.0
        record = read_best(self.run_dir)
        self.best = record["value"] if record and record["metric"] == metric else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.metric not in logs:
            found = ", ".join(sorted(key for key in logs if key.startswith("val_"))) or "none"
            raise ValueError(
                f"training.keep_best={self.metric!r} is not a validation metric of this run "
                f"(found: {found})"
            )
        value = float(logs[self.metric])
        if math.isnan(value) or (
            self.best is not None and self.sign * value <= self.sign * self.best
        ):
            return
        name = f"best-epoch_{epoch + 1:04d}.keras"
        save_model(self.model, self.run_dir / name)
        record = {"epoch": epoch + 1, "metric": self.metric, "value": value, "file": name}
        atomic_write_text(self.run_dir / BEST_RECORD, json.dumps(record, indent=2) + "\n")
        for old in self.run_dir.glob("best-epoch_*.keras"):
            if old.name != name:
                old.unlink()
        self.best = value


class LearningRates(keras.callbacks.Callback):
    """Adds the learning rates ``g_lr`` and ``d_lr`` at the end of an epoch to its logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key, optimizer in (("g_lr", self.model.g_optimizer), ("d_lr", self.model.d_optimizer)):
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
            logs[key] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def read_history(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a ``history.csv`` (empty if there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


class HistoryCSV(keras.callbacks.Callback):
    """Writes ``history.csv``: one row per epoch (``epoch`` counts from 1), atomically.

    Rows of epochs after ``first_epoch`` (left by a run killed before its
    checkpoint) are dropped, since those epochs are trained again.

    Args:
        path: The CSV file.
        first_epoch: Number of epochs completed when training (re)starts.
    """

    def __init__(self, path: Path, first_epoch: int) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows = [row for row in read_history(self.path) if int(row["epoch"]) <= first_epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch + 1)}
        row.update({key: _number(value) for key, value in sorted((logs or {}).items())})
        self.rows.append(row)
        fields = list(dict.fromkeys(key for row in self.rows for key in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fields, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())


class EpochSummaries(keras.callbacks.Callback):
    """Writes the epoch logs as TensorBoard scalars ``epoch_<name>`` (step = epoch index).

    Args:
        folder: The run's ``logs/`` folder; ``val_*`` entries go to
            ``validation/``, the others to ``train/``, as Keras' TensorBoard does.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def on_epoch_end(self, epoch, logs=None):
        metadata = scalar_summary_metadata()
        for key, value in (logs or {}).items():
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if part not in self._writers:
                self._writers[part] = tf.summary.create_file_writer(os.fspath(self.folder / part))
            with self._writers[part].as_default():
                tf.summary.write(
                    f"epoch_{name}",
                    tf.constant(float(value), tf.float32),
                    step=epoch,
                    metadata=metadata,
                )
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class ImageGrids(keras.callbacks.Callback):
    """Saves ``<folder>/epoch_NNNN.png`` (NNNN counts from 1) at each epoch end."""

    def __init__(self, folder: Path, renderer: GridRenderer) -> None:
        super().__init__()
        self.folder, self.renderer = Path(folder), renderer

    def on_epoch_end(self, epoch, logs=None):
        self.renderer.save(self.folder / f"epoch_{epoch + 1:04d}.png")


class RunProgbar(ProgbarLogger):
    """Keras' progress bar showing ``Epoch e/E`` and steps of the whole epoch after a resume.

    When standard output is not a terminal (a log file, a pipe, a batch job),
    the bar, which redraws itself with ANSI escape codes, becomes one plain
    line per epoch (Keras' ``verbose=2``).
    """

    def __init__(self, position: Position) -> None:
        super().__init__()
        self.position = position

    def counts(self) -> tuple[int, int, int]:
        position = self.position
        return position.epochs, position.steps_per_epoch, position.offset

    def set_params(self, params):
        super().set_params(params)
        if self.verbose == 1 and not _is_terminal(sys.stdout):
            self.verbose = 2


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _number(value) -> str:
    value = float(keras.ops.convert_to_numpy(value))
    return repr(value) if math.isfinite(value) else str(value)
