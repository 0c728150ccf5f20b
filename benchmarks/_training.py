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
So is the CPU time the hypervisor stole meanwhile (``/proc/stat``): on a
shared virtual machine the same run can take twice as long from one day to
the next, and ``cpu_steal`` says when the hours are not this CPU's own.

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
    "train_timing",
    "translate_stack",
]

#: Default parent of the benchmarks' work folders (datasets, runs); ignored by git.
WORK = Path(__file__).resolve().parent / "work"
_SECONDS = "train_seconds.json"
_JIFFIES = ("cpu_jiffies", "stolen_jiffies")


class WallClock(keras.callbacks.Callback):
    """Add the wall time of each epoch to ``<run_dir>/train_seconds.json``.

    `kerastrans.training.fit` calls Keras' ``fit`` once per epoch, so the
    clock starts at ``on_train_begin`` and is saved (atomically) at
    ``on_epoch_end``; an epoch killed half-way is not counted, the steps it
    trained are lost to the resume anyway. The CPU jiffies of the machine
    (all and stolen, read from ``stat``) are summed the same way.
    """

    def __init__(self, run_dir: Path, *, stat: Path = Path("/proc/stat")) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stat = Path(stat)
        self.on_train_begin()

    def on_train_begin(self, logs=None) -> None:
        self._start, self._jiffies = time.perf_counter(), cpu_jiffies(self.stat)

    def on_epoch_end(self, epoch, logs=None) -> None:
        record = _timing_record(self.run_dir)
        record["seconds"] = record.get("seconds", 0.0) + time.perf_counter() - self._start
        jiffies = cpu_jiffies(self.stat)
        if jiffies is not None and self._jiffies is not None:
            for key, now, then in zip(_JIFFIES, jiffies, self._jiffies, strict=True):
                record[key] = record.get(key, 0) + now - then
        atomic_write_text(self.run_dir / _SECONDS, json.dumps(record) + "\n")
        self.on_train_begin()


def cpu_jiffies(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """``(all, stolen)`` CPU jiffies of the machine since boot, or None without ``stat``.

    The first line of Linux's ``/proc/stat`` sums every CPU: user, nice,
    system, idle, iowait, irq, softirq, steal (then guest times, which user
    already counts).
    """
    try:
        line = Path(stat).read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    if len(line) < 9 or line[0] != "cpu":
        return None
    times = [int(value) for value in line[1:9]]
    return sum(times), times[7]


def _timing_record(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / _SECONDS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def train_hours(run_dir: str | Path) -> float:
    """Wall hours spent training the run so far (0 for a run not started)."""
    return _timing_record(run_dir).get("seconds", 0.0) / 3600.0


def train_timing(run_dir: str | Path, steps: int) -> dict[str, float | None]:
    """The timing fields of a trained run's results row.

    ``train_hours`` (wall clock over every session of the run), ``ms_per_step``
    (that per step: validation, checkpoints and tracing included) and
    ``cpu_steal``: the share of the machine's CPU time the hypervisor took
    while the run trained (None where it was not recorded; runs begun before
    it was recorded count only their later epochs).
    """
    record = _timing_record(run_dir)
    hours = record.get("seconds", 0.0) / 3600.0
    all_jiffies = record.get(_JIFFIES[0])
    return {
        "train_hours": hours,
        "ms_per_step": 3.6e6 * hours / steps,
        "cpu_steal": record[_JIFFIES[1]] / all_jiffies if all_jiffies else None,
    }


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
