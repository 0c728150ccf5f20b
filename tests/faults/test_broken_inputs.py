"""Broken inputs on the command line: a one-line message and exit status 1 or 2, never a traceback.

Each case of `CASES` builds one broken input (the issue's list) and the
command that gets it; the test runs the CLI in a subprocess and checks the
refusal with `fault_helpers.assert_one_line_error` (the message must name the
offending file or value). The broken DICOM files of pydicom and pydicom-data
(`broken_dicom.BROKEN_DICOM`) go through ``convert`` at once, which reports
each unreadable file on its own line, and through ``records``. A truncated
newest checkpoint is not an error: ``fit`` must fall back to the previous one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
from broken_dicom import broken_dicom_files
from fault_helpers import (
    CliResult,
    assert_one_line_error,
    assert_same_weights,
    error_lines,
    read_only,
    run_cli,
    truncate,
)
from fault_inputs import SIZE, write_pairs
from PIL import Image
from pydicom.data import get_testdata_file

from kerastrans.data import write_dataset


@dataclasses.dataclass
class Workspace:
    """What a case builds its input from: a private folder and the shared references."""

    tmp: Path
    request: pytest.FixtureRequest
    stack: contextlib.ExitStack
    skip_reason: str | None = None

    def reference(self, command: str):
        """The uninterrupted run of ``command`` (`conftest.Reference`)."""
        return self.request.getfixturevalue(f"{command}_reference")

    def run(self, args: Sequence) -> CliResult:
        """Run the CLI with a private TMPDIR."""
        return run_cli(args, self.tmp / "tmp")

    def dataset(self, name: str, splits: dict) -> Path:
        """Write a paired dataset with the library (no CLI) under ``tmp/name``."""
        write_dataset(self.tmp / name, splits, progress=False)
        return self.tmp / name

    def fit_args(self, dataset: Path, *more) -> list:
        """The reference ``fit`` arguments on ``dataset`` into ``tmp/run``."""
        args = self.reference("fit").arguments(self.tmp / "run")
        args[args.index("--data") + 1] = dataset
        return [*args, *more]


@dataclasses.dataclass(frozen=True)
class Case:
    """A broken input: how to build it and what the refusal must name."""

    build: Callable[[Workspace], list]
    names: Callable[[Workspace], Sequence[str]] = lambda ws: ()
    codes: tuple[int, ...] = (1, 2)
    #: Text the message must not hold (what the issue reported as misleading).
    not_in: tuple[str, ...] = ()


def _pair(seed: int, input_size: int, target_size: int, key: str) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "input": rng.normal(0, 300, (input_size, input_size, 1)).astype(np.float32),
        "target": rng.normal(0, 300, (target_size, target_size, 1)).astype(np.float32),
        "id": key,
    }


def _grey_png(path: Path, seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 255, (SIZE, SIZE), dtype=np.uint8)
    Image.fromarray(values, "L").save(path)


def _sizes_differ(ws: Workspace) -> list:
    sizes = ws.dataset("sizes", {"train": [_pair(i, SIZE, 24, f"p{i}") for i in range(4)]})
    return ws.fit_args(sizes)


def _mixed_sizes(ws: Workspace) -> list:
    pairs = [_pair(i, size, size, f"p{i}") for i, size in enumerate((SIZE, 24, SIZE, 24))]
    return ws.fit_args(ws.dataset("mixed", {"train": pairs}))


def _truncated_shard(ws: Workspace, split: str) -> Path:
    dataset = Path(shutil.copytree(ws.reference("records").output, ws.tmp / "truncated_ds"))
    [shard] = sorted(dataset.rglob(f"*-{split}.tfrecord*"))
    truncate(shard, 0.6)
    return dataset


def _read_only_out(ws: Workspace, make_args: Callable[[Path], list]) -> list:
    folder = ws.tmp / "readonly"
    folder.mkdir()
    ws.skip_reason = ws.stack.enter_context(read_only(folder))
    return make_args(folder / "out")


def _file_as_out(ws: Workspace, make_args: Callable[[Path], list]) -> list:
    (ws.tmp / "taken").write_text("a file where the output should go\n")
    return make_args(ws.tmp / "taken")


def _plain_keras(ws: Workspace) -> list:
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
    model.save(ws.tmp / "plain.keras")
    return ["convert", ws.tmp / "plain.keras", _one_ct(ws), ws.tmp / "out"]


def _truncated_model_keras(ws: Workspace) -> list:
    run = Path(shutil.copytree(ws.reference("fit").output, ws.tmp / "run"))
    truncate(run / "model.keras")
    return ["convert", run, _one_ct(ws), ws.tmp / "out"]


def _one_ct(ws: Workspace) -> Path:
    folder = ws.tmp / "in"
    folder.mkdir(exist_ok=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    return folder


def _rgb_among_grey(ws: Workspace) -> list:
    folder = ws.tmp / "pngs"
    folder.mkdir()
    for index in range(4):  # the RGB file sorts first: the grey files are the rule
        _grey_png(folder / f"grey{index}.png", index)
    rgb = np.random.default_rng(9).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(folder / "colour.png")
    return ["records", folder, "--out", ws.tmp / "ds", "--no-progress"]


def _nan_npy(ws: Workspace) -> list:
    folder = ws.tmp / "npys"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.npy", "nan.npy", "z.npy"):
        np.save(folder / name, rng.normal(0, 100, (SIZE, SIZE)).astype(np.float32))
    values = np.load(folder / "nan.npy")
    values[5, 7] = np.nan
    np.save(folder / "nan.npy", values)
    return ["records", folder, "--out", ws.tmp / "ds", "--no-progress"]


def _pairs_list_missing(ws: Workspace) -> list:
    pairs = write_pairs(ws.tmp / "src", {"train": 3})
    lines = [f"trainA/s{i}.npy\ttrainB/s{i}.npy" for i in range(3)]
    lines.insert(1, "trainA/missing.npy\ttrainB/s1.npy")
    (pairs / "pairs.tsv").write_text("\n".join(lines) + "\n")
    return ["records", "--pairs", pairs / "pairs.tsv", "--out", ws.tmp / "ds", "--no-progress"]


def _mismatched_names(ws: Workspace) -> list:
    pairs = write_pairs(ws.tmp / "src", {"train": 3})
    (pairs / "trainB" / "s1.npy").rename(pairs / "trainB" / "t1.npy")
    return ["records", pairs, "--paired", "--out", ws.tmp / "ds", "--no-progress"]


def _config(ws: Workspace, text: str) -> list:
    (ws.tmp / "bad.yaml").write_text(text)
    return ws.fit_args(ws.reference("records").output, "--config", ws.tmp / "bad.yaml")


def _btoa(ws: Workspace, command: str) -> list:
    model = ws.reference("export").output
    if command == "convert":
        return ["convert", model, _one_ct(ws), ws.tmp / "out", "--direction", "BtoA"]
    return ["evaluate", model, ws.reference("records").output, "--direction", "BtoA"]


def _records_to(ws: Workspace, out: Path) -> list:
    return ws.reference("records").arguments(out)


def _fit_to(ws: Workspace, out: Path) -> list:
    return ws.reference("fit").arguments(out)


def _export_to(ws: Workspace, out: Path) -> list:
    return ws.reference("export").arguments(out)


def _evaluate_to(ws: Workspace, out: Path) -> list:
    model, data = ws.reference("export").output, ws.reference("records").output
    return ["evaluate", model, data, "--out", out, "--no-progress"]


def _broken_dicom_records(ws: Workspace) -> list:
    broken_dicom_files(ws.tmp / "broken")
    return ["records", ws.tmp / "broken", "--out", ws.tmp / "ds", "--no-progress"]


#: Every broken input of the issue's list (and pydicom's files for ``records``).
CASES = {
    "records-broken-dicom-files": Case(_broken_dicom_records, lambda ws: ["broken"]),
    "fit-pairs-of-different-sizes": Case(_sizes_differ, lambda ws: ["sizes"]),
    "fit-mixed-sizes-batch-2": Case(_mixed_sizes, lambda ws: ["mixed"]),
    "fit-truncated-tfrecord-shard": Case(
        lambda ws: ws.fit_args(_truncated_shard(ws, "train")), lambda ws: ["truncated_ds"]
    ),
    "evaluate-truncated-tfrecord-shard": Case(
        lambda ws: [
            "evaluate",
            ws.reference("export").output,
            _truncated_shard(ws, "test"),
            "--no-progress",
        ],
        lambda ws: ["truncated_ds"],
    ),
    **{
        f"{command}-read-only-output-folder": Case(
            lambda ws, to=to: _read_only_out(ws, lambda out: to(ws, out)),
            lambda ws: ["readonly"],
        )
        for command, to in (
            ("records", _records_to),
            ("fit", _fit_to),
            ("export", _export_to),
            ("evaluate", _evaluate_to),
        )
    },
    **{
        f"{command}-output-path-is-a-file": Case(
            lambda ws, to=to: _file_as_out(ws, lambda out: to(ws, out)),
            lambda ws: ["taken"],
            not_in=("[Errno 17]",),
        )
        for command, to in (("records", _records_to), ("fit", _fit_to), ("export", _export_to))
    },
    "convert-plain-keras-model": Case(_plain_keras, lambda ws: ["plain.keras"]),
    "convert-truncated-model-keras": Case(
        _truncated_model_keras, lambda ws: ["model.keras"], not_in=("not found",)
    ),
    "records-rgb-among-grey-files": Case(_rgb_among_grey, lambda ws: ["colour.png"]),
    "records-nan-in-npy": Case(_nan_npy, lambda ws: ["nan.npy"]),
    "records-missing-file-in-pairs-list": Case(_pairs_list_missing, lambda ws: ["missing.npy"]),
    "records-mismatched-pair-names": Case(_mismatched_names, lambda ws: ["s1"]),
    "fit-yaml-syntax-error": Case(
        lambda ws: _config(ws, "model: [unclosed\n"), lambda ws: ["bad.yaml"]
    ),
    "fit-yaml-unknown-key": Case(
        lambda ws: _config(ws, "model:\n  generator:\n    dept: 3\n"), lambda ws: ["dept"]
    ),
    "fit-key-value-typo": Case(
        lambda ws: ws.fit_args(ws.reference("records").output, "model.generator.dept=3"),
        lambda ws: ["dept"],
        codes=(2,),
    ),
    "fit-crop-larger-than-images": Case(
        lambda ws: ws.fit_args(ws.reference("records").output, "--crop", "64", "64"),
        lambda ws: ["64"],
    ),
    "convert-btoa-on-pix2pix-model": Case(lambda ws: _btoa(ws, "convert"), lambda ws: ["BtoA"]),
    "evaluate-btoa-on-pix2pix-model": Case(lambda ws: _btoa(ws, "evaluate"), lambda ws: ["BtoA"]),
}


@pytest.fixture(scope="module")
def refusals(request, tmp_path_factory) -> dict[str, tuple[Workspace, CliResult]]:
    """Build the selected cases one by one, then run their commands two at a time.

    The commands spend most of their time starting Python and TensorFlow;
    two at once halve the wall time on a 2-core machine. Read-only folders
    stay read-only until the module's tests are done.
    """
    selected = [
        item.callspec.params["name"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_broken_input_is_refused_in_one_line"
    ]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        built = {}
        for name in selected:
            ws = Workspace(tmp_path_factory.mktemp(name), request, stack)
            built[name] = (ws, pool.submit(ws.run, CASES[name].build(ws)))
        results = {name: (ws, future.result()) for name, (ws, future) in built.items()}
        yield results


@pytest.mark.parametrize("name", list(CASES))
def test_broken_input_is_refused_in_one_line(name, refusals):
    case = CASES[name]
    ws, result = refusals[name]
    if ws.skip_reason:
        pytest.skip(ws.skip_reason)
    message = assert_one_line_error(result, names=case.names(ws), codes=case.codes)
    print(message)
    for text in case.not_in:
        assert text.lower() not in message.lower(), f"misleading message\n{result.describe()}"


def test_convert_reports_each_broken_dicom_file_on_its_own_line(export_reference, tmp_path):
    broken = broken_dicom_files(tmp_path / "in" / "broken")
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "in" / "good.dcm")
    args = ["convert", export_reference.output, tmp_path / "in", tmp_path / "out"]
    result = run_cli([*args, "--no-progress"], tmp_path / "tmp")

    context = result.describe()
    assert "Traceback" not in result.stderr, context
    assert result.returncode == 1, context
    lines = [line for line in error_lines(result) if line.startswith("kerastrans convert: ")]
    for path, reason in broken.items():
        naming = [line for line in lines if f"{path}:" in line]
        assert len(naming) == 1, f"{path.name} ({reason}): {len(naming)} lines\n{context}"
    assert len(lines) == len(broken), context
    out = tmp_path / "out"
    written = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert written == ["good.dcm", "kerastrans-convert.json"], f"outputs of unreadable: {written}"
    manifest = json.loads((out / "kerastrans-convert.json").read_text(encoding="utf-8"))
    assert (manifest["complete"], manifest["failed"]) == (True, len(broken))  # all were tried


def test_fit_falls_back_when_the_newest_checkpoint_is_truncated(fit_reference, tmp_path):
    run = Path(shutil.copytree(fit_reference.output, tmp_path / "run"))
    # As a kill during the last steps leaves it: the newest checkpoint damaged, no model yet.
    (run / "finished.json").unlink()
    (run / "model.keras").unlink()
    newest = sorted((run / "checkpoints").glob("ckpt-*"))[-1]
    truncate(newest / "model.weights.h5")
    result = run_cli(fit_reference.arguments(run), tmp_path / "tmp")

    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    finished = json.loads((run / "finished.json").read_text())
    assert finished["global_step"] == 8, finished
    assert_same_weights(run, fit_reference.output)
