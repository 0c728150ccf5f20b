"""`fit`: train a model from a config into a run directory, resuming where it stopped.

A run directory holds (see `kerastrans.runs`)::

    config.yaml      the full resolved config (a model is rebuilt from it alone)
    model.keras      the latest complete model, saved atomically each epoch
    checkpoints/     resume state: weights, optimizer state, epoch and step
    logs/            TensorBoard
    history.csv      losses, validation metrics and learning rates per epoch
    grids/           epoch_0001.png, ... image grids in a display window
    finished.json    written when all epochs are done
    .lock            held by the fit writing the directory (`kerastrans.training.lock`)

Calling `fit` again on the same directory resumes exactly: the model and both
optimizers (hence the learning-rate schedule) come back from the newest
checkpoint, and the data stream of the interrupted epoch is rebuilt and
advanced to the step where it stopped (`kerastrans.training.data`). A
finished run is not trained again unless more epochs are asked for (a
decaying learning-rate schedule then stretches over the new length), and a
different config is refused with the keys that differ.

Training is Keras' own ``model.fit``, called once per epoch so that every
epoch has its own deterministic stream; callbacks keep the run directory up
to date (`kerastrans.training.callbacks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerastrans.atomic import atomic_write_text
from kerastrans.config import Config, config_differences, load_config, save_config
from kerastrans.data.shards import shard_errors
from kerastrans.errors import DataError, file_error
from kerastrans.optimizers import check_clipping
from kerastrans.training import callbacks as run_callbacks
from kerastrans.training.build import build_model
from kerastrans.training.checkpoints import Checkpoint, remove_leftovers, restore_latest
from kerastrans.training.data import (
    grid_examples,
    training_batches,
    validation_batches,
    validation_steps,
)
from kerastrans.training.grids import GridRenderer
from kerastrans.training.lock import run_lock
from kerastrans.training.resolve import resolve_config, validation_examples
from kerastrans.training.strategy import (
    adapt_model,
    fit_scope,
    is_chief,
    make_strategy,
    workers_agree,
    write_directory,
)

__all__ = ["RESUMABLE_KEYS", "ConfigError", "FitResult", "fit", "read_finished"]

logger = logging.getLogger(__name__)

#: Config keys that may change when a run is resumed: asking for more epochs continues it.
RESUMABLE_KEYS = ("training.epochs",)
_CONFIG, _FINISHED = "config.yaml", "finished.json"


class ConfigError(ValueError):
    """A config that cannot be resolved against its dataset or built into a model.

    Raised by `fit` before training starts, so that callers (the CLI) can tell
    a bad setting from a failure during training.
    """


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What a call of `fit` did.

    Attributes:
        run_dir: The run directory.
        config: The resolved config of the run.
        model: The trained model (`None` if the run was already finished).
        epochs: Epochs completed.
        global_step: Optimizer steps of the run so far.
        trained_steps: Steps trained by this call.
        resumed_from: The checkpoint training resumed from, if any.
        already_finished: The run had finished: nothing was trained.
        history: The logs of each epoch trained by this call.
    """

    run_dir: Path
    config: Config
    model: keras.Model | None
    epochs: int
    global_step: int
    trained_steps: int = 0
    resumed_from: Checkpoint | None = None
    already_finished: bool = False
    history: tuple[dict[str, float], ...] = ()


def fit(
    config: Config,
    run_dir: str | os.PathLike,
    *,
    strategy: str | tf.distribute.Strategy = "auto",
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_resume: Callable[[Checkpoint], None] | None = None,
) -> FitResult:
    """Train the model ``config`` describes into ``run_dir``, or resume it there.

    Args:
        config: The run's config; dataset-dependent fields may be left unset
            (`kerastrans.training.resolve.resolve_config` fills them in).
            Without a seed, the run's seed is derived from the absolute path
            of ``run_dir`` (so all workers of a cluster agree on it), and
            recorded in ``config.yaml`` like every resolved field.
        run_dir: The run directory (created if needed).
        strategy: A name of `kerastrans.training.strategy.STRATEGIES` or a
            strategy. A name is turned into a strategy first of all, as
            `tf.distribute.MultiWorkerMirroredStrategy` requires.
        progress: Show Keras' progress bar with the losses.
        callbacks: More Keras callbacks, run after those of the run directory.
        on_resume: Called with the checkpoint training resumes from, once it
            is restored (an unreadable newest checkpoint is passed over, see
            `kerastrans.training.checkpoints.restore_latest`).

    Returns:
        The `FitResult`.

    Raises:
        DataError: If ``run_dir`` holds a run with another config (the message
            lists the differing keys), another process trains into it
            (`kerastrans.training.lock`), it cannot be written, or the
            dataset does not suit the model.
        ConfigError: If the config cannot be resolved or built into a model.
    """
    if isinstance(strategy, str):
        strategy = make_strategy(strategy)
    run_dir = Path(run_dir)
    # The chief holds the run directory's lock from the first read of it to the
    # end; the other workers of a cluster only read it and take no lock, but
    # stop with the chief if it cannot have it.
    with contextlib.ExitStack() as stack:
        refused = None
        if is_chief(strategy):
            try:
                stack.enter_context(run_lock(run_dir))
            except DataError as error:
                refused = error
        if not workers_agree(strategy, refused is None):
            raise refused or file_error(
                run_dir, "the chief worker cannot write the run directory (see its error)"
            )
        return _fit(config, run_dir, strategy, progress, callbacks, on_resume)


def _fit(
    config: Config,
    run_dir: Path,
    strategy: tf.distribute.Strategy,
    progress: bool,
    callbacks: Sequence[keras.callbacks.Callback],
    on_resume: Callable[[Checkpoint], None] | None,
) -> FitResult:
    """`fit` once the run directory is locked."""
    previous = _previous_config(run_dir)
    # Without a seed, a new run takes one from its directory: every worker agrees on it.
    default_seed = zlib.crc32(os.fsencode(run_dir.resolve())) % 2**31
    try:
        config = resolve_config(config, previous, default_seed=default_seed)
    except DataError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error
    if previous is not None:
        differences = config_differences(previous, config, ignore=RESUMABLE_KEYS)
        if differences:
            raise file_error(
                run_dir / _CONFIG,
                "the run was trained with another config; differing keys: "
                + "; ".join(differences)
                + " (use another --out; to resume, the same settings or "
                + f"--config {run_dir / _CONFIG})",
            )
    training = config.training
    finished = read_finished(run_dir)
    if finished is not None and finished["epochs"] >= training.epochs:
        logger.info("%s: finished (%d epochs), nothing to train", run_dir, finished["epochs"])
        return FitResult(
            run_dir,
            config,
            None,
            finished["epochs"],
            finished["global_step"],
            already_finished=True,
        )
    try:  # before anything is written: a config that does not build leaves no run behind
        with strategy.scope():
            model = build_model(config)
        _check_keep_best(config, model)
        check_clipping(model.g_optimizer, strategy)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error
    adapt_model(model, strategy)
    with write_directory(run_dir, strategy) as out:
        if is_chief(strategy):
            remove_leftovers(out)
            save_config(config, out / _CONFIG)
            (out / _FINISHED).unlink(missing_ok=True)
        with shard_errors([config.data.dataset, config.data.validation]):
            return _train(model, config, run_dir, out, strategy, progress, callbacks, on_resume)


def _check_keep_best(config: Config, model: keras.Model) -> None:
    """Refuse a ``training.keep_best`` that no validation of this run can report."""
    metric = config.training.keep_best
    if metric is None:
        return
    if config.data.validation is None:
        raise ValueError(
            f"training.keep_best={metric!r} needs validation data, and this run has none "
            "(set data.eval_split or data.validation)"
        )
    tracked = sorted(f"val_{tracker.name}" for tracker in model.metrics)
    if metric not in tracked:
        raise ValueError(
            f"training.keep_best={metric!r} is not a metric of this model (it has: "
            f"{', '.join(tracked)})"
        )


def read_finished(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The content of ``finished.json`` (``epochs``, ``global_step``, ...), or `None`."""
    path = Path(run_dir) / _FINISHED
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _previous_config(run_dir: Path) -> Config | None:
    path = run_dir / _CONFIG
    if not path.is_file():
        return None
    try:
        return load_config(path)
    except (TypeError, ValueError) as error:
        raise file_error(path, f"not a readable run config: {error}") from None


def _train(
    model: keras.Model,
    config: Config,
    run_dir: Path,
    out: Path,
    strategy: tf.distribute.Strategy,
    progress: bool,
    extra_callbacks: Sequence[keras.callbacks.Callback],
    on_resume: Callable[[Checkpoint], None] | None,
) -> FitResult:
    """Restore the newest checkpoint into ``model`` and train the remaining epochs."""
    training = config.training
    steps = training.steps_per_epoch
    # Only the process that writes the run directory sets an unreadable checkpoint aside.
    checkpoint = restore_latest(model, run_dir / "checkpoints", set_aside=out == run_dir)
    position = run_callbacks.Position(training.epochs, steps)
    if checkpoint is not None:
        position.epoch, position.offset = checkpoint.epoch, checkpoint.step
        position.step = checkpoint.step
        logger.info(
            "resuming %s at epoch %d, step %d/%d (global step %d)",
            run_dir,
            checkpoint.epoch + 1,
            checkpoint.step,
            steps,
            checkpoint.global_step,
        )
        if on_resume is not None:
            on_resume(checkpoint)
    examples = validation_examples(config)
    validation = validation_batches(config, strategy, examples)
    callbacks = _callbacks(config, model, out, position)
    progress_bar = [run_callbacks.RunProgbar(position)] if progress else []
    history, start = [], position.global_step
    for epoch in range(position.epoch, training.epochs):
        with fit_scope(strategy):
            result = model.fit(
                training_batches(config, epoch, position.offset, strategy),
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=steps - position.offset,
                validation_data=validation,
                validation_steps=validation_steps(config, strategy, examples)
                if validation
                else None,
                callbacks=[*callbacks, *extra_callbacks, *progress_bar],
                verbose=1 if progress else 0,
                shuffle=False,
            )
        history.append({key: float(values[-1]) for key, values in result.history.items()})
    record = {
        "epochs": training.epochs,
        "global_step": position.global_step,
        "steps_per_epoch": steps,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "last_epoch": history[-1] if history else {},
    }
    atomic_write_text(out / _FINISHED, json.dumps(record, indent=2) + "\n")
    return FitResult(
        run_dir,
        config,
        model,
        training.epochs,
        position.global_step,
        position.global_step - start,
        checkpoint,
        history=tuple(history),
    )


def _callbacks(
    config: Config, model: keras.Model, out: Path, position: run_callbacks.Position
) -> list:
    """The run directory's callbacks that live across the per-epoch ``fit`` calls."""
    training = config.training
    callbacks = [
        run_callbacks.LearningRates(),
        run_callbacks.HistoryCSV(out / "history.csv", position.epoch),
        run_callbacks.EpochSummaries(out / "logs"),
    ]
    if training.grid_images:
        examples = grid_examples(config, training.grid_images)
        renderer = GridRenderer(model, config, examples)
        callbacks.append(run_callbacks.ImageGrids(out / "grids", renderer))
    if training.keep_best:
        callbacks.append(run_callbacks.BestModel(out, training.keep_best))
    callbacks.append(
        run_callbacks.ResumeCheckpoint(
            out, position, training.checkpoint_every, training.keep_checkpoints
        )
    )
    return callbacks
