"""Multi-worker training: two worker processes on localhost agree with one process,
and ``kerastrans fit --strategy multiworker`` on one machine trains to the end.

Each run is a separate process (`multiworker_fit.py`, or the command line): a
`MultiWorkerMirroredStrategy` must be created before TensorFlow starts.

A cluster of two workers and a single worker take different paths through
Keras (only several workers average the logs over the workers), so both are
tested: the two-worker test alone never ran the single-worker path, which
crashed at the first epoch end.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerastrans.training.callbacks import read_history
from kerastrans.training.lock import run_lock

SCRIPT = Path(__file__).with_name("multiworker_fit.py")
TIMEOUT = 240  # seconds for the slowest process (TensorFlow start-up dominates)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on every interface (TensorFlow's servers bind 0.0.0.0).

    The sockets stay open until all are chosen, so the kernel cannot hand out one port twice
    (two workers on one port failed with "Could not start gRPC server").
    """
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(dataset, run_dir, strategy, tf_config=None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, str(SCRIPT), str(dataset), str(run_dir), strategy]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def _result(process: subprocess.Popen) -> dict:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"training process timed out:\n{output[-3000:]}") from None
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_workers_train_like_one_process_on_the_same_global_batch(paired_dataset, tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    workers = [
        _start(paired_dataset, tmp_path / "cluster", "multiworker",
               {"cluster": cluster, "task": {"type": "worker", "index": index}})
        for index in range(2)
    ]  # fmt: skip
    single = _result(_start(paired_dataset, tmp_path / "single", "default"))
    chief, other = (_result(worker) for worker in workers)

    # Both workers hold the same weights, and those of one process (float tolerance).
    np.testing.assert_allclose(chief["weights"], other["weights"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(chief["weights"], single["weights"], rtol=1e-4, atol=1e-6)
    assert chief["iterations"] == single["iterations"] == 2
    for key in ("g_loss", "l1", "d_loss", "val_l1"):
        np.testing.assert_allclose(chief["history"][key], single["history"][key], rtol=1e-4)
    # Only the chief wrote the run directory.
    assert {"config.yaml", "model.keras", "checkpoints", "history.csv", "grids"} <= set(
        chief["files"]
    )
    assert sorted((tmp_path / "cluster").iterdir()) == sorted(
        tmp_path / "cluster" / name for name in chief["files"]
    )


def _output(process: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"worker hangs:\n{output[-3000:]}") from None
    return process.returncode, output


def test_when_the_chief_is_refused_the_lock_every_worker_stops(paired_dataset, tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    with run_lock(tmp_path / "cluster"):  # another fit holds the run directory
        workers = [
            _start(paired_dataset, tmp_path / "cluster", "multiworker",
                   {"cluster": cluster, "task": {"type": "worker", "index": index}})
            for index in range(2)
        ]  # fmt: skip
        (chief_status, chief), (other_status, other) = (_output(w) for w in workers)
    assert chief_status != 0 and other_status != 0
    assert f"in use by another kerastrans fit (pid {os.getpid()} " in chief
    assert "the chief worker cannot write the run directory (see its error)" in other
    assert "RESULT" not in chief + other


#: A pix2pix of a few kB, as the other training tests use.
TINY = ["model.generator.depth=2", "model.generator.base_channels=4",
        "model.discriminator.base_channels=4", "model.discriminator.depth=1"]  # fmt: skip


@pytest.mark.parametrize("with_tf_config", [False, True], ids=["no-TF_CONFIG", "TF_CONFIG"])
def test_one_worker_cli_fit_multiworker_trains_two_epochs(
    with_tf_config, paired_dataset, tmp_path, run_cli
):
    run = tmp_path / "run"
    env = {}
    if with_tf_config:
        cluster = {"worker": [f"localhost:{port}" for port in _free_ports(1)]}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    result = run_cli(["fit", "--data", paired_dataset, "--out", run, "--strategy", "multiworker",
                      "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2", *TINY],
                     env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "trained 4 steps: 2 epochs of 2 steps are done" in result.stdout
    assert {"config.yaml", "model.keras", "checkpoints", "history.csv", "grids", "logs",
            "finished.json"} <= {path.name for path in run.iterdir()}  # fmt: skip
    history = read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == ["1", "2"]
    for row in history:  # plain numbers, one per loss and validation metric
        assert np.isfinite([float(row[key]) for key in ("g_loss", "l1", "d_loss", "val_l1")]).all()
    assert json.loads((run / "finished.json").read_text())["global_step"] == 4
