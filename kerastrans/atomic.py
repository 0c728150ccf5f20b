"""Atomic writes: outputs appear complete or not at all.

A file is written to a temporary sibling and renamed over the target with
`os.replace`, which is atomic on POSIX and Windows when both paths are on the
same filesystem. A killed process therefore never leaves a half-written image,
checkpoint or dataset behind that later loads as if it were complete.

The content is flushed to disk (``fsync``) before the rename, and the folder
holding the new name after it (on POSIX; Windows cannot flush a folder), so
that after a power cut the target is the old or the new result, never an
empty or partial file under the new name.

Results get the permissions `open` and `mkdir` would give: ``0o666`` (files)
or ``0o777`` (folders) without the bits of the process umask. The umask is
read once, when this module is imported, never set: changing it (even to set
it back) while another thread creates files, as convert's writer thread does,
would give that thread's files the wrong permissions.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kerastrans.errors import file_error

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write_text",
    "check_output_folder",
    "remove_stale_folders",
    "writable_directory",
]

#: This host's name as it appears in incomplete folder names (letters, digits, dots).
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Use it with writers that want a file name (pydicom, PIL, numpy, tifffile).
    If the block raises, the temporary file is removed and ``path`` is untouched.

    Args:
        path: The final destination. Its parent folder is created if missing.
        suffix: Suffix of the temporary file, so that writers which choose the
            format from the extension still see the right one. Defaults to the
            suffix of ``path``.

    Yields:
        The temporary path to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.tmp-",
        suffix=path.suffix if suffix is None else suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(_default_mode(0o666))  # mkstemp makes 0600; a result should follow the umask
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; rename it onto ``path`` on success.

    The folder is filled under a hidden name
    (``.<name>.incomplete-<host>-<pid>-XXXX``) and only renamed to ``path``
    when the block finishes, so an interrupted build never leaves a folder at
    ``path`` that looks finished. A process killed mid-build cannot remove its
    folder; the next build of ``path`` does, once the owning process (same
    host, that pid) is gone. Folders of live processes, of other hosts or
    without an owner in their name are left alone.

    Args:
        path: The final folder.
        replace: If ``path`` exists, swap it out only once the new folder is
            complete (two renames, then the old folder is deleted), so a
            failure never damages it. If false, an existing ``path`` is an error.

    Raises:
        FileExistsError: If ``path`` already exists and ``replace`` is false.
    """
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{path}: already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_folders(path)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.incomplete-{_HOST}-{os.getpid()}-", dir=path.parent)
    )
    tmp.chmod(_default_mode(0o777))  # mkdtemp makes 0700; a result should follow the umask
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.replaced-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            _fsync_folder(path.parent)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
            _fsync_folder(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def writable_directory(path: str | os.PathLike) -> Path:
    """Create folder ``path`` (with its parents) and check that files can be written in it.

    Commands call it before long work, so that an output they cannot write
    fails at once, in one line, not after the work or as a traceback.

    Args:
        path: The output folder.

    Returns:
        ``path`` as a `Path`.

    Raises:
        DataError: If ``path`` (or a parent) is a file, or the folder cannot
            be created or written (permissions, read-only file system).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise file_error(path, "is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(prefix=".kerastrans-write-test-", dir=path):
            pass
    except (FileExistsError, NotADirectoryError):
        raise file_error(path, "cannot create the folder: a parent is a file") from None
    except OSError as error:
        raise file_error(path, f"cannot write here ({error.strerror or error})") from None
    return path


def check_output_folder(path: str | os.PathLike) -> None:
    """Check, before any work, that the folder ``path`` can be created (or replaced).

    Args:
        path: The output folder; it and its parents need not exist.

    Raises:
        NotADirectoryError: If a parent of ``path`` is a file
            (``"<parent>: is a file, not a folder; cannot create <path>"``).
        PermissionError: If the nearest existing parent is not writable
            (``"<parent>: folder is not writable; cannot create <path>"``).
    """
    path = Path(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"{parent}: is a file, not a folder; cannot create {path}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{parent}: folder is not writable; cannot create {path}")


def remove_stale_folders(path: str | os.PathLike) -> list[Path]:
    """Remove the incomplete folders of `atomic_directory` builds of ``path`` whose process died.

    Only folders named by this host with the pid of a process that no longer
    exists are removed; anything else (a live build, another host's build on a
    shared filesystem, names without an owner) is kept.

    Returns:
        The folders removed.
    """
    path = Path(path)
    owned = re.compile(rf"^\.{re.escape(path.name)}\.incomplete-(?P<host>[^-]+)-(?P<pid>\d+)-")
    removed = []
    for folder in path.parent.glob(f".{glob.escape(path.name)}.incomplete-*"):
        match = owned.match(folder.name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _fsync(path: Path) -> None:
    """Flush the content of file ``path`` to disk."""
    # Windows flushes only descriptors open for writing; POSIX any descriptor.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    """Flush folder ``path`` (its list of names) to disk, where the OS allows it.

    Windows cannot open a folder to flush it; some file systems (network
    shares) refuse to flush one: the names then reach the disk when the OS
    decides, as they would without this call.
    """
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` (and ``folder`` itself) to disk."""
    for root, _, files in os.walk(folder):
        for name in files:
            if not os.path.islink(file := Path(root, name)):  # a link's target is not ours
                _fsync(file)
        _fsync_folder(Path(root))


def _read_umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux >= 4.7)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0)  # elsewhere: set it and back, once, at import
    os.umask(umask)
    return umask


#: The process umask when this module was imported.
_UMASK = _read_umask()


def _default_mode(base: int) -> int:
    """Return ``base`` masked by the process umask (what `open`/`mkdir` would give)."""
    return base & ~_UMASK
