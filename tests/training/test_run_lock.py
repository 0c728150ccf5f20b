"""The run directory lock: one ``fit`` per ``--out``; a killed holder does not block the rerun."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kerastrans.cli.main import main
from kerastrans.errors import DataError
from kerastrans.training.lock import LOCK_NAME, run_lock

TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1"]  # fmt: skip


def test_second_holder_is_refused_naming_the_first(tmp_path):
    with run_lock(tmp_path / "run"), pytest.raises(DataError) as error, run_lock(tmp_path / "run"):
        pass
    assert str(error.value).startswith(
        f"{tmp_path / 'run'}: in use by another kerastrans fit "
        f"(pid {os.getpid()} on host {socket.gethostname()}, since 20"
    )
    with run_lock(tmp_path / "run"):  # released at the end of the block
        pass


def test_failed_start_leaves_no_run_directory(tmp_path):
    with pytest.raises(ValueError, match="bad config"), run_lock(tmp_path / "run"):
        raise ValueError("bad config")
    assert not (tmp_path / "run").exists()


def _read_only_folder(tmp_path):
    """A folder this process cannot write: a 0555 folder, or one in /sys for root."""
    if os.geteuid() != 0:
        (tmp_path / "read-only").mkdir(mode=0o555)
        return tmp_path / "read-only" / "run", "Permission denied"
    return Path("/sys/kerastrans-run"), "Operation not permitted"


@pytest.mark.parametrize("case", ["existing file", "read-only folder"])
def test_unwritable_out_is_one_line_exit_1_before_training(case, paired_dataset, tmp_path, capsys):
    if case == "existing file":
        out, problem = tmp_path / "run", "exists and is not a folder"
        out.write_text("not a folder")
    else:
        out, problem = _read_only_folder(tmp_path)
        problem = f"cannot write the run directory: {problem}"
    command = ["fit", "--data", str(paired_dataset), "--out", str(out), "--epochs", "1", *TINY]
    assert main(command) == 1
    captured = capsys.readouterr()
    assert captured.err == f"kerastrans fit: error: {out}: {problem}\n"
    assert "trained" not in captured.out


def _lock_holder(run_dir) -> str:
    path = run_dir / LOCK_NAME
    return path.read_text() if path.is_file() else ""


def test_two_fit_processes_on_one_out_then_a_rerun_after_kill_9(
    paired_dataset, tmp_path, start_cli, run_cli
):
    run = tmp_path / "run"
    command = ["fit", "--data", paired_dataset, "--out", run, "--epochs", "1",
               "--steps-per-epoch", "4", "--batch-size", "2", "--no-progress", *TINY]  # fmt: skip
    first = start_cli(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _lock_holder(run).startswith(f"pid {first.pid} "):
            assert first.poll() is None and time.monotonic() < deadline, "first fit never locked"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGSTOP)  # holds the lock, but stands still

        second = run_cli(command)
        assert second.returncode == 1
        assert second.stderr == (
            f"kerastrans fit: error: {run}: in use by another kerastrans fit "
            f"({_lock_holder(run).strip()})\n"
        )
        assert f"pid {first.pid} on host {socket.gethostname()}, since " in second.stderr
        assert "trained" not in second.stdout
    finally:
        first.kill()  # kill -9: the lock goes with the process
        first.wait(timeout=30)

    rerun = run_cli(command)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "trained" in rerun.stdout
    assert (run / "finished.json").is_file() and (run / "model.keras").is_file()
