"""Shared inputs of the fault-injection suite and one uninterrupted run of each command.

Every kill test and most broken-input tests start from the same few inputs:
a paired folder of 32 x 32 NPY slices, the dataset ``kerastrans records``
builds from it, a run of ``kerastrans fit`` on that dataset (networks of a few
kB, 2 epochs of 4 steps), its SavedModel from ``kerastrans export`` and a
folder of DICOM slices plus NPY files for ``kerastrans convert``. Each
reference is made once per session by the CLI in a subprocess; the time from
its first to its last write sets the range of the kill points.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import CliResult, run_and_kill
from fault_inputs import SIZE, TINY, write_ct_series, write_pairs


@dataclasses.dataclass(frozen=True)
class Reference:
    """One uninterrupted run of a command.

    Attributes:
        name: The command (``records``, ``fit``, ``export``, ``convert``).
        arguments: Its arguments for an output path (the same for every run).
        output: Where the reference run wrote.
        result: The reference run.
        writes: Seconds from its start to its first and to its last write next to
            ``output`` (see `fault_helpers.run_and_kill`).
    """

    name: str
    arguments: Callable[[Path], list]
    output: Path
    result: CliResult
    writes: tuple[float, float]


def _reference(name: str, arguments: Callable[[Path], list], folder: Path) -> Reference:
    output = folder / "work" / "out"
    output.parent.mkdir(parents=True)
    result, writes = run_and_kill(arguments(output), folder / "tmp", output.parent)
    assert result.returncode == 0, f"the uninterrupted {name} failed\n{result.describe()}"
    assert writes is not None, f"{name} wrote nothing next to {output}"
    return Reference(name, arguments, output, result, writes)


@pytest.fixture(scope="session")
def pair_folder(tmp_path_factory) -> Path:
    """Paired NPY folder: 96 training and 4 test pairs of 32 x 32.

    Enough pairs that ``records`` spends a few tenths of a second writing, so
    that kill points land inside the build.
    """
    return write_pairs(tmp_path_factory.mktemp("pairs"), {"train": 96, "test": 4})


@pytest.fixture(scope="session")
def convert_inputs(tmp_path_factory) -> Path:
    """A folder to convert: ``ct/`` (a series of 32 DICOM slices of 128 x 128), ``npy/`` (3)."""
    root = tmp_path_factory.mktemp("convert_inputs")
    write_ct_series(root / "ct", 32)
    (root / "npy").mkdir()
    rng = np.random.default_rng(5)
    for index in range(3):
        values = rng.uniform(-1000, 1000, (SIZE, SIZE)).astype(np.float32)
        np.save(root / "npy" / f"image{index}.npy", values)
    return root


@pytest.fixture(scope="session")
def records_reference(pair_folder, tmp_path_factory) -> Reference:
    """``kerastrans records PAIRS --paired --out OUT``, uninterrupted."""

    def arguments(out: Path) -> list:
        return ["records", pair_folder, "--paired", "--out", out, "--no-progress"]

    return _reference("records", arguments, tmp_path_factory.mktemp("records_reference"))


@pytest.fixture(scope="session")
def fit_reference(records_reference, tmp_path_factory) -> Reference:
    """``kerastrans fit`` of tiny networks, 2 epochs of 4 steps, a checkpoint every step."""
    dataset = records_reference.output

    def arguments(out: Path) -> list:
        return ["fit", "--data", dataset, "--out", out, "--epochs", "2", "--steps-per-epoch",
                "4", "--batch-size", "2", "--seed", "1", "--no-progress",
                "--set", "training.checkpoint_every=1", *TINY]  # fmt: skip

    return _reference("fit", arguments, tmp_path_factory.mktemp("fit_reference"))


@pytest.fixture(scope="session")
def export_reference(fit_reference, tmp_path_factory) -> Reference:
    """``kerastrans export RUN --out MODEL_DIR`` of the reference run."""
    run_dir = fit_reference.output

    def arguments(out: Path) -> list:
        return ["export", run_dir, "--out", out]

    return _reference("export", arguments, tmp_path_factory.mktemp("export_reference"))


@pytest.fixture(scope="session")
def convert_reference(export_reference, convert_inputs, tmp_path_factory) -> Reference:
    """``kerastrans convert MODEL INPUT OUT`` with the exported reference model."""
    model = export_reference.output

    def arguments(out: Path) -> list:
        return ["convert", model, convert_inputs, out, "--batch-size", "2", "--no-progress"]

    return _reference("convert", arguments, tmp_path_factory.mktemp("convert_reference"))


@pytest.fixture
def copy_of(tmp_path) -> Callable[[Path, str], Path]:
    """``copy_of(folder, name)``: a private copy of a shared folder under ``tmp_path``."""

    def copy(folder: Path, name: str) -> Path:
        return Path(shutil.copytree(folder, tmp_path / name))

    return copy
