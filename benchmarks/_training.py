"""What the benchmarks that train a model share: a work folder, resumable runs, wall time.

A benchmark that trains keeps everything it builds under one work folder
(default ``benchmarks/work/<name>/``, not committed): simulated datasets and
one `kerastrans.training.fit` run directory per method. Running the script
again reuses the datasets (`build_dataset`: only if built with the same
settings), resumes an interrupted run from its last checkpoint and skips a
finished one, so a benchmark killed after an hour loses at most
``checkpoint_every`` steps. The wall time spent training is
kept in ``<run>/train_seconds.json`` and summed over resumed sessions, so
``train_hours`` in the results is the whole run's, not the last session's.

Scripts import this module as ``from _training import ...``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from kerastrans.atomic import atomic_write_text

__all__ = [
    "WORK",
    "WallClock",
    "add_work_arguments",
    "build_dataset",
    "train",
    "train_hours",
    "translate_stack",
]

#: Default parent of the benchmarks' work folders (datasets, runs); ignored by git.
WORK = Path(__file__).resolve().parent / "work"
_SECONDS = "train_seconds.json"


class WallClock(keras.callbacks.Callback):
    """Add the wall time of each epoch to ``<run_dir>/train_seconds.json``.

    `kerastrans.training.fit` calls Keras' ``fit`` once per epoch, so the
    clock starts at ``on_train_begin`` and is saved (atomically) at
    ``on_epoch_end``; an epoch killed half-way is not counted, the steps it
    trained are lost to the resume anyway.
    """

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self._start = time.perf_counter()

    def on_train_begin(self, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        seconds = train_hours(self.run_dir) * 3600.0 + time.perf_counter() - self._start
        atomic_write_text(self.run_dir / _SECONDS, json.dumps({"seconds": seconds}) + "\n")
        self._start = time.perf_counter()


def train_hours(run_dir: str | Path) -> float:
    """Wall hours spent training the run so far (0 for a run not started)."""
    path = Path(run_dir) / _SECONDS
    if not path.is_file():
        return 0.0
    return json.loads(path.read_text(encoding="utf-8"))["seconds"] / 3600.0


def train(config: Any, run_dir: Path, *, progress: bool = True) -> Path:
    """Train ``config`` into ``run_dir`` with `kerastrans.training.fit`, resuming; return it.

    A finished run is reused as it is; one with another config is refused by
    `fit` (naming the keys), so a changed benchmark setting never mixes with
    an old run: delete the run directory or use another ``--work`` folder.
    """
    from kerastrans.training import fit

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = fit(
        config, run_dir, strategy="default", progress=progress, callbacks=[WallClock(run_dir)]
    )
    state = "finished run reused" if result.already_finished else "trained"
    print(f"{run_dir}: {state}, {result.global_step} steps, {train_hours(run_dir):.2f} h")
    return run_dir


def build_dataset(
    path: Path, splits: Mapping[str, Any], metadata: Mapping[str, Any], description: str
) -> Path:
    """Write the dataset at ``path`` (or reuse it if built with the same ``metadata``); return it.

    `kerastrans.data.write_dataset` reuses any complete dataset at ``path``;
    this also refuses one whose stored metadata (which should hold every
    setting the data depends on) differs, as `fit` refuses a run with another
    config, so changed settings never silently train on old data.

    Raises:
        SystemExit: If a dataset built with other settings is there.
    """
    from kerastrans.data import write_dataset
    from kerastrans.data.records import is_dataset, read_metadata

    wanted = json.loads(json.dumps(metadata))
    if is_dataset(path) and read_metadata(path) != wanted:
        raise SystemExit(
            f"{path}: built with other settings than this command's; delete it or pass "
            "another --work"
        )
    summary = write_dataset(path, splits, metadata=wanted, description=description)
    state = "reused" if summary.reused else "built"
    counts = ", ".join(f"{name} {split.num_examples}" for name, split in summary.splits.items())
    print(f"{path}: {state} ({counts})")
    return path


def translate_stack(
    translator: Any, images: np.ndarray, *, batch_size: int = 32, desc: str | None = None
) -> np.ndarray:
    """Translate a stack ``(N, H, W)`` of one-channel images in batches; return ``(N, H, W)``.

    ``translator`` is a run's `kerastrans.translate.Translator` (physical
    units in and out), batched by `kerastrans.translate.translate_in_batches`;
    ``desc`` shows a progress bar with that label.
    """
    from kerastrans.translate import translate_in_batches

    items = tqdm(
        enumerate(images[..., np.newaxis]),
        total=len(images),
        desc=desc,
        unit="image",
        disable=desc is None,
    )
    outputs = dict(translate_in_batches(translator, items, batch_size))
    return np.stack([outputs[index][..., 0] for index in range(len(images))]).astype(np.float32)


def add_work_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--work`` (the work folder) and ``--quick`` (a smoke run) to a parser."""
    parser.add_argument(
        "--work",
        type=Path,
        default=WORK / name,
        help=f"datasets and runs (default: benchmarks/work/{name}); re-running resumes",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and a few steps into <work>-quick: checks the script, not the figures",
    )
