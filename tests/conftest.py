"""Fixtures shared by every test folder.

The ``kerastrans`` command line in its own process, and the benchmark scripts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: Seconds a command may take in a subprocess (TensorFlow's start-up dominates).
CLI_TIMEOUT = 240


def _cli_env(env: dict[str, str] | None) -> dict[str, str]:
    """The environment of a ``kerastrans`` process: this one's, without GPUs nor TF_CONFIG.

    ``TF_CPP_MIN_LOG_LEVEL`` is removed too, so that the command line's own
    default applies, as for a user who never heard of it.
    """
    base = {key: value for key, value in os.environ.items()
            if key not in ("TF_CONFIG", "TF_CPP_MIN_LOG_LEVEL")}  # fmt: skip
    return {**base, "CUDA_VISIBLE_DEVICES": "", **(env or {})}


def _start(args, env=None, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "kerastrans.cli.main", *map(str, args)]
    return subprocess.Popen(command, env=_cli_env(env), text=True, **popen)


def _run(args, env=None, timeout=CLI_TIMEOUT) -> subprocess.CompletedProcess:
    process = _start(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"kerastrans {args} timed out:\n{err[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture
def start_cli():
    """Factory: ``start_cli(args, env=None, **popen)`` starts ``kerastrans ARGS``; a `Popen`."""
    return _start


@pytest.fixture
def run_cli():
    """Factory: ``run_cli(args, env=None)`` runs ``kerastrans ARGS`` with stdout and stderr
    piped (not terminals); returns the `subprocess.CompletedProcess` (text)."""
    return _run


@pytest.fixture(scope="module")
def benchmark():
    """``benchmark(name)`` imports ``benchmarks/<name>.py``.

    The scripts import each other as top-level modules, so their folder is on
    the path while the test module runs.
    """
    import importlib
    from pathlib import Path

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(folder)
