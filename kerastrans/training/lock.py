"""The lock of a run directory: one ``fit`` writes it at a time.

Two ``kerastrans fit`` on one ``--out`` would mix their files (the config of
one, the model of the other). `run_lock` holds an exclusive ``flock`` on
``RUN_DIR/.lock`` for the whole of ``fit``; a second ``fit`` is refused at
once with a one-line error naming the holder::

    runs/ldct: in use by another kerastrans fit (pid 4242 on host gpu1, since
    2026-12-02T10:00:00+00:00)

The operating system releases the lock when its process ends, however it
ends (``kill -9`` included), so a killed run never blocks its rerun; the file
itself stays, holding the last holder's description. Only one process of a
multi-worker cluster (the chief) writes, hence locks, the run directory.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from kerastrans.errors import file_error

__all__ = ["LOCK_NAME", "run_lock"]

#: Name of the lock file inside the run directory.
LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` (created if needed) for the block.

    If the block raises and ``run_dir`` was created here and holds nothing
    but the lock file, the folder is removed again: a failed start leaves no
    run directory behind.

    Args:
        run_dir: The run directory.

    Yields:
        ``run_dir`` as a `Path`.

    Raises:
        DataError: If another process holds the lock (the message names its
            pid, host and start time), or ``run_dir`` cannot be created or
            written (a file of that name, no permission).
    """
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    fd = _acquire(run_dir)
    try:
        yield run_dir
    except BaseException:
        if created:
            _remove_if_only_lock(run_dir)
        raise
    finally:
        os.close(fd)  # releases the lock


def _acquire(run_dir: Path) -> int:
    """Open and lock ``RUN_DIR/.lock``; write this process into it; return the descriptor."""
    if run_dir.exists() and not run_dir.is_dir():
        raise file_error(run_dir, "exists and is not a folder")
    path = run_dir / LOCK_NAME
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise file_error(run_dir, f"in use by another kerastrans fit ({holder})") from None
            # The file may have been removed and created anew between open and
            # flock (`_remove_if_only_lock` of another process): lock the new one.
            if _same_file(fd, path):
                break
            os.close(fd)
        since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        text = f"pid {os.getpid()} on host {socket.gethostname()}, since {since}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
    except OSError as error:
        raise file_error(
            run_dir, f"cannot write the run directory: {error.strerror or error}"
        ) from None
    return fd


def _holder(fd: int) -> str:
    """The description of the process holding the lock (as written in the lock file)."""
    text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    return text or "a process that is starting"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _remove_if_only_lock(run_dir: Path) -> None:
    """Remove ``run_dir`` if it holds only the lock file (a start that failed)."""
    if [path.name for path in run_dir.iterdir()] == [LOCK_NAME]:
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
