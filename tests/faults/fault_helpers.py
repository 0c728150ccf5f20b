"""Run the ``kerastrans`` CLI as a subprocess, kill it, and judge what it leaves behind.

The fault-injection tests (``tests/faults/``) use these helpers to

- run a command to completion (`run_cli`) or kill it with ``SIGKILL`` a
  delay after its first write (`run_and_kill`), always with
  ``TF_CPP_MIN_LOG_LEVEL=2`` and a private ``TMPDIR``;
- check that a refusal is a one-line message (`assert_one_line_error`);
- draw reproducible kill points (`kill_fractions`);
- read the result of each command in a comparable form (`dataset_examples`,
  `run_weights`, `export_outputs`, `converted_files`) and say whether an
  output *looks* complete (`looks_like_dataset`, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

#: Seed of the kill points; set KERASTRANS_FAULT_SEED to explore other points.
SEED = int(os.environ.get("KERASTRANS_FAULT_SEED", "14"))
#: Kill points per command.
KILLS_PER_COMMAND = 3
#: Longest time any single command of the suite may take (seconds).
TIMEOUT = 240
#: Names of temporary files and folders of an atomic write (`kerastrans.atomic`).
LEFTOVER_MARKS = (".incomplete-", ".tmp-")


@dataclasses.dataclass(frozen=True)
class CliResult:
    """A finished (or killed) CLI process.

    Attributes:
        args: The arguments after ``kerastrans``.
        returncode: Exit status (negative: killed by that signal).
        stdout: Standard output.
        stderr: Standard error.
        seconds: Wall time from start to exit.
        killed: Whether the test killed it (it had not exited on its own).
    """

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    killed: bool = False

    def describe(self) -> str:
        """The command, its status and its stderr, for assertion messages."""
        return (
            f"kerastrans {' '.join(self.args)}\nexit status {self.returncode}\n"
            f"--- stderr ---\n{self.stderr}--- stdout ---\n{self.stdout}"
        )


def cli_env(tmp_dir: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: quiet TensorFlow, no GPU, ``TMPDIR=tmp_dir``."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "TMPDIR": str(tmp_dir),
        "PYTHONUNBUFFERED": "1",
    }


def _command(args: Sequence[os.PathLike | str]) -> list[str]:
    return [sys.executable, "-m", "kerastrans.cli.main", *map(str, args)]


def run_cli(args: Sequence[os.PathLike | str], tmp_dir: Path) -> CliResult:
    """Run ``kerastrans ARGS`` to completion and return what it did."""
    start = time.monotonic()
    done = subprocess.run(
        _command(args), env=cli_env(tmp_dir), capture_output=True, text=True, timeout=TIMEOUT
    )
    seconds = time.monotonic() - start
    return CliResult(tuple(map(str, args)), done.returncode, done.stdout, done.stderr, seconds)


def run_and_kill(
    args: Sequence[os.PathLike | str],
    tmp_dir: Path,
    watch: Path,
    delay: float | None = None,
) -> tuple[CliResult, tuple[float, float] | None]:
    """Run ``kerastrans ARGS``; ``SIGKILL`` it (and its children) ``delay`` s after its first write.

    Timing the kill from the command's first write (a file appearing under
    ``watch``) rather than from its start makes it hit the same stage of the
    work however long the start-up (Python, TensorFlow) takes on a busy machine.

    Args:
        args: The arguments after ``kerastrans``.
        tmp_dir: Its ``TMPDIR``; its stdout and stderr are kept there too.
        watch: The folder the command writes into.
        delay: Seconds after the first write; `None` lets the command finish.

    Returns:
        The result (``killed`` false if the command exited before the kill)
        and the seconds from its start to its first and to its last write
        (a file created, renamed or deleted under ``watch``), `None` if it
        wrote nothing.
    """
    out_path, err_path = tmp_dir / "cli.stdout", tmp_dir / "cli.stderr"
    env = cli_env(tmp_dir)
    first_write = last_write = kill_at = None
    files = _files(watch)
    start = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(
            _command(args), env=env, stdout=out, stderr=err, start_new_session=True
        )
        while process.poll() is None and time.monotonic() - start < TIMEOUT:
            now = time.monotonic() - start
            if files != (files := _files(watch)):
                last_write = now
                if first_write is None:
                    first_write = now
                    kill_at = None if delay is None else now + delay
            if kill_at is not None and now >= kill_at:
                break
            time.sleep(0.005)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    result = CliResult(
        tuple(map(str, args)),
        process.returncode,
        out_path.read_text(),
        err_path.read_text(),
        time.monotonic() - start,
        killed,
    )
    assert delay is not None or not killed, f"no exit within {TIMEOUT} s\n{result.describe()}"
    return result, None if first_write is None else (first_write, last_write)


def _files(folder: Path) -> list[tuple[str, list[str]]]:
    """The files under ``folder``, folder by folder."""
    return [(root, sorted(names)) for root, _, names in os.walk(folder) if names]


def kill_fractions(command: str, count: int = KILLS_PER_COMMAND, seed: int = SEED) -> list[float]:
    """``count`` kill points of ``command``, as fractions of the part of its run that writes.

    One point is drawn uniformly in each of ``count`` equal parts of ``[0, 1)``
    from a generator seeded by ``seed`` and the command name, so a failing
    point can be reproduced. The kill comes that fraction of the
    uninterrupted run's writing time (first to last write) after the first write.

    >>> kill_fractions("fit", 3, seed=1) == kill_fractions("fit", 3, seed=1)
    True
    """
    rng = random.Random(f"{seed}:{command}")
    return [round((part + rng.random()) / count, 3) for part in range(count)]


def error_lines(result: CliResult) -> list[str]:
    """The non-empty lines of stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_error(
    result: CliResult, *, names: Sequence[str] = (), codes: Sequence[int] = (1, 2)
) -> str:
    """Assert a refusal: exit status in ``codes``, no traceback, a one-line message.

    The message is the last non-empty line of stderr (TensorFlow may log
    before it); it must start with ``kerastrans`` and contain every string of
    ``names`` (e.g. the offending file's name).

    Returns:
        The message.
    """
    context = result.describe()
    assert "Traceback" not in result.stderr, f"traceback instead of a one-line error\n{context}"
    assert result.returncode in codes, f"exit status not in {tuple(codes)}\n{context}"
    lines = error_lines(result)
    assert lines, f"no error message\n{context}"
    message = lines[-1]
    assert message.startswith("kerastrans "), f"last stderr line is not the message\n{context}"
    for name in names:
        assert name in message, f"the message does not name {name!r}\n{context}"
    return message


def leftovers(folder: Path) -> list[Path]:
    """Temporary files or folders of interrupted atomic writes anywhere under ``folder``."""
    return sorted(
        path for path in folder.rglob(".*") if any(mark in path.name for mark in LEFTOVER_MARKS)
    )


def marked_incomplete(folder: Path) -> bool:
    """Whether ``folder`` says it is incomplete.

    A convert output folder says so in its manifest (``kerastrans-convert.json``:
    ``"complete": false`` until the last file is written); anything else by an
    "incomplete" marker in its name or in the name of something in it.
    """
    manifest = folder / "kerastrans-convert.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("complete") is not True
        except ValueError:  # a manifest cut short cannot say the folder is complete
            return True
    return any("incomplete" in path.name.lower() for path in [folder, *folder.rglob("*")])


# -- datasets (records) ---------------------------------------------------------------------


def looks_like_dataset(path: Path) -> bool:
    """Whether ``path`` opens with `tfds.builder_from_directory`, as a user would try."""
    import tensorflow_datasets as tfds

    if not path.is_dir():
        return False
    try:
        tfds.builder_from_directory(os.fspath(path))
    except Exception:  # anything that stops a user from loading it
        return False
    return True


def dataset_examples(path: Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{split: {id: {feature: array}}}`` of a dataset folder, read with TFDS."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(os.fspath(path))
    splits = {}
    for split in builder.info.splits:
        examples = {}
        for example in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
            key = example["id"].decode()
            assert key not in examples, f"{path}: id {key!r} twice in split {split}"
            examples[key] = {
                name: value for name, value in example.items() if isinstance(value, np.ndarray)
            }
        splits[split] = examples
    return splits


def assert_same_dataset(path: Path, reference: Path) -> None:
    """Same splits, ids and arrays (bit for bit) as the reference dataset."""
    got, want = dataset_examples(path), dataset_examples(reference)
    assert sorted(got) == sorted(want), f"{path}: splits {sorted(got)} != {sorted(want)}"
    for split, examples in want.items():
        assert sorted(got[split]) == sorted(examples), f"{path}: ids of split {split} differ"
        for key, features in examples.items():
            assert sorted(got[split][key]) == sorted(features), f"{path}: features of {key}"
            for name, array in features.items():
                np.testing.assert_array_equal(got[split][key][name], array, err_msg=f"{key} {name}")


# -- runs (fit) -----------------------------------------------------------------------------


def looks_like_finished_run(path: Path) -> bool:
    """Whether the run directory says training completed (``finished.json``)."""
    return (path / "finished.json").is_file()


def run_weights(path: Path) -> list[np.ndarray]:
    """The weights of the run's ``model.keras`` (loaded as `convert` and `export` load it)."""
    import keras

    import kerastrans.models  # noqa: F401  (registers the model classes)

    return keras.saving.load_model(path / "model.keras", safe_mode=True).get_weights()


def assert_same_weights(path: Path, reference: Path) -> None:
    """Bit-identical final weights (the README promises bit-identical resume)."""
    got, want = run_weights(path), run_weights(reference)
    assert len(got) == len(want), f"{path}: {len(got)} weight arrays, reference {len(want)}"
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{path}: weight array {index} differs")


# -- SavedModels (export) -------------------------------------------------------------------

#: The fixed input of export comparisons: 2 images of 32 x 32 in HU.
PROBE = np.random.default_rng(7).uniform(-1000.0, 1000.0, (2, 32, 32, 1)).astype(np.float32)


def looks_like_export(model_dir: Path, version: str = "1") -> bool:
    """Whether ``model_dir/version`` holds a SavedModel that loads, as TF Serving would try."""
    import tensorflow as tf

    folder = model_dir / version
    if not (folder / "saved_model.pb").is_file() or not (folder / "variables").is_dir():
        return False
    try:
        tf.saved_model.load(os.fspath(folder))
    except Exception:  # anything that stops a server from loading it
        return False
    return True


def export_outputs(model_dir: Path, version: str = "1") -> np.ndarray:
    """The ``serving_default`` output of the SavedModel for `PROBE`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(model_dir / version))
    return loaded.signatures["serving_default"](images=tf.constant(PROBE))["output"].numpy()


# -- converted folders (convert) ------------------------------------------------------------


def looks_like_conversion(folder: Path) -> bool:
    """Whether ``folder`` holds outputs and no "incomplete" marker."""
    return folder.is_dir() and any(folder.rglob("*")) and not marked_incomplete(folder)


def converted_files(folder: Path) -> dict[str, np.ndarray]:
    """``{relative path: values}`` of a converted folder (DICOM in HU after the rescale).

    The manifest (``kerastrans-convert.json``) is not an output; `marked_incomplete` reads it.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == "kerastrans-convert.json":
            continue
        if path.suffix == ".npy":
            files[relative] = np.load(path)
        else:
            dataset = pydicom.dcmread(path)
            files[relative] = apply_modality_lut(dataset.pixel_array, dataset)
    return files


def assert_same_conversion(folder: Path, reference: Path) -> None:
    """The same files with the same pixel values as the reference conversion, and complete."""
    assert not marked_incomplete(folder), f"{folder}: still marked incomplete"
    got, want = converted_files(folder), converted_files(reference)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"{folder}: {len(got)} files, the uninterrupted run wrote {len(want)}; "
        f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}, extra {extra[:3]}"
    )
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=f"{folder / name}")


# -- file system faults ---------------------------------------------------------------------


@contextlib.contextmanager
def explained(context: str) -> Iterator[None]:
    """Prefix the message of an `AssertionError` raised in the block with ``context``."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{context}: {error}") from None


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str | None]:
    """Make ``folder`` read-only for this process and its children, also for root.

    ``chmod`` does not stop root, so as root the folder is also made immutable
    with ``chattr +i``.

    Yields:
        `None`, or why the folder could not be made read-only (then skip).
    """
    folder.chmod(0o555)
    immutable = False
    problem = None
    try:
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
            immutable = done.returncode == 0
            if not immutable:
                problem = f"cannot make {folder} read-only for root: {done.stderr.strip()}"
        yield problem
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut ``path`` to ``fraction`` of its size (as a full disk or a killed copy would)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
