"""``kill -9`` at random points of records, fit, export and convert, then the same command again.

Each case kills the command after a delay drawn from a seeded generator
(`fault_helpers.kill_fractions`: a fraction of the time the uninterrupted
run spends from its first to its last write, counted from the killed run's
own first write; the seed and fraction are in the test id) and asserts,
whatever the moment the kill hit:

1. nothing looks complete unless it is: an output that a user would take for
   finished (a dataset that TFDS opens, a run with ``finished.json``, a
   SavedModel that loads, a converted folder without an "incomplete" marker)
   equals the uninterrupted run's output;
2. a command that exited before the kill exited 0 with a complete output;
3. the same command run again finishes (exit 0; or, if the killed run had
   already finished, a one-line refusal to redo it) with the same result as
   the uninterrupted run, and leaves no temporary files of the killed run
   (nor TFDS temporary folders in its ``TMPDIR``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_helpers import (
    SEED,
    assert_one_line_error,
    assert_same_conversion,
    assert_same_dataset,
    assert_same_weights,
    explained,
    export_outputs,
    kill_fractions,
    leftovers,
    looks_like_conversion,
    looks_like_dataset,
    looks_like_export,
    looks_like_finished_run,
    run_and_kill,
    run_cli,
)
from numpy.testing import assert_array_equal


@dataclasses.dataclass(frozen=True)
class Judge:
    """How to tell whether a command's output looks complete and equals the reference's."""

    looks_complete: Callable[[Path], bool]
    assert_same: Callable[[Path, Path], None]


def _assert_same_export(model_dir: Path, reference: Path) -> None:
    assert_array_equal(export_outputs(model_dir), export_outputs(reference))


JUDGES = {
    "records": Judge(looks_like_dataset, assert_same_dataset),
    "fit": Judge(looks_like_finished_run, assert_same_weights),
    "export": Judge(looks_like_export, _assert_same_export),
    "convert": Judge(looks_like_conversion, assert_same_conversion),
}

CASES = [
    pytest.param(command, fraction, id=f"{command}-seed{SEED}-at{fraction:.3f}")
    for command in JUDGES
    for fraction in kill_fractions(command)
]


@pytest.mark.parametrize(("command", "fraction"), CASES)
def test_kill_9_then_the_same_command_gives_the_uninterrupted_result(
    command, fraction, request, tmp_path
):
    reference = request.getfixturevalue(f"{command}_reference")
    judge = JUDGES[command]
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    arguments = reference.arguments(out)
    first, last = reference.writes
    delay = fraction * (last - first)
    where = (
        f"seed {SEED}, kill {delay:.2f} s after the first write (uninterrupted: writes "
        f"from {first:.2f} s to {last:.2f} s, exit at {reference.result.seconds:.2f} s)"
    )

    killed, _ = run_and_kill(arguments, tmp_path / "tmp-killed", out.parent, delay)
    print(f"{where}: {'killed' if killed.killed else f'exited {killed.returncode} first'}")
    if not killed.killed:
        assert killed.returncode == 0, f"{where}: exited on its own\n{killed.describe()}"
        assert judge.looks_complete(out), f"{where}: exit 0 but the output is not complete"
    complete = judge.looks_complete(out)
    if complete:  # whatever looks complete must be the finished result
        with explained(f"{where}: the killed run's output looks complete"):
            judge.assert_same(out, reference.output)

    rerun = run_cli(arguments, tmp_path / "tmp-rerun")
    if rerun.returncode != 0:
        assert complete, f"{where}: the rerun failed\n{rerun.describe()}"
        assert_one_line_error(rerun, codes=(1,))  # refuses to redo a finished job, in one line
    assert judge.looks_complete(out), f"{where}: the rerun left no complete output"
    with explained(f"{where}: the rerun's output"):
        judge.assert_same(out, reference.output)
    assert leftovers(out.parent) == [], f"{where}: the rerun left temporary files"
    stray = sorted(path.name for path in (tmp_path / "tmp-rerun").glob("tmp*tfds*"))
    assert stray == [], f"{where}: the rerun left TFDS folders in its TMPDIR: {stray}"


@pytest.mark.parametrize("command", list(JUDGES))
def test_an_uninterrupted_command_leaves_nothing_in_tmpdir(command, request):
    reference = request.getfixturevalue(f"{command}_reference")
    tmp_dir = reference.output.parent.parent / "tmp"  # the TMPDIR of the reference run
    stray = sorted(path.name for path in tmp_dir.glob("tmp*tfds*"))
    assert stray == [], f"kerastrans {command} left TFDS folders in TMPDIR: {stray}"
