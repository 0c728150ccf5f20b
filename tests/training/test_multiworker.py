"""Multi-worker training: two worker processes on localhost agree with one process.

Each run is a separate process (`multiworker_fit.py`): a
`MultiWorkerMirroredStrategy` must be created before TensorFlow starts.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("multiworker_fit.py")
TIMEOUT = 240  # seconds for the slowest process (TensorFlow start-up dominates)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


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
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
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
