"""Atomic writes leave either the complete result or nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerastrans import atomic
from kerastrans.atomic import atomic_directory, atomic_path, atomic_write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_existing_file(tmp_path):
    target = tmp_path / "note.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == ["note.txt"]


def test_atomic_path_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "image.npy"
    target.write_bytes(b"complete")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"complete"
    assert _leftovers(tmp_path) == ["image.npy"]


def test_atomic_path_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "slice.png") as tmp:
        assert tmp.suffix == ".png"
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"x")


def test_atomic_directory_appears_only_when_complete(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "shard-0").write_text("partial")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert _leftovers(tmp_path) == []

    with atomic_directory(target) as tmp:
        (tmp / "shard-0").write_text("done")
    assert (target / "shard-0").read_text() == "done"


def test_atomic_directory_refuses_to_overwrite(tmp_path):
    (tmp_path / "dataset").mkdir()
    with (
        pytest.raises(FileExistsError, match="dataset: already exists"),
        atomic_directory(tmp_path / "dataset"),
    ):
        pass


def test_atomic_results_follow_the_umask_not_the_temp_file_mode(tmp_path):
    # The umask is read when kerastrans.atomic is imported: set it before, in a fresh process.
    code = (
        "import os, sys\nos.umask(0o027)\n"
        "from kerastrans.atomic import atomic_directory, atomic_write_text\n"
        "atomic_write_text(os.path.join(sys.argv[1], 'a.txt'), 'x')\n"
        "with atomic_directory(os.path.join(sys.argv[1], 'd')):\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def test_writes_never_change_the_umask(tmp_path, monkeypatch):
    # Setting the umask to read it races with other threads creating files (convert's writer).
    def umask(mask):
        raise AssertionError(f"os.umask({mask:#o}) called while writing")

    expected = 0o666 & ~atomic._UMASK, 0o777 & ~atomic._UMASK
    monkeypatch.setattr(os, "umask", umask)
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_directory(tmp_path / "d"):
        pass
    modes = (tmp_path / "a.txt").stat().st_mode & 0o777, (tmp_path / "d").stat().st_mode & 0o777
    assert modes == expected


@pytest.fixture
def flushes(monkeypatch):
    """Records ``("fsync", inode)`` and ``("replace", name)`` in the order they happen."""
    events = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recorded_replace(source, target):
        events.append(("replace", Path(target).name))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    return events


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
def test_a_file_is_flushed_before_the_rename_and_its_folder_after(tmp_path, flushes):
    atomic_write_text(tmp_path / "note.txt", "new")
    file, folder = (tmp_path / "note.txt").stat().st_ino, tmp_path.stat().st_ino
    assert flushes == [("fsync", file), ("replace", "note.txt"), ("fsync", folder)]


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
def test_a_folder_is_flushed_file_by_file_before_the_rename(tmp_path, flushes):
    with atomic_directory(tmp_path / "dataset") as tmp:
        (tmp / "shards").mkdir()
        (tmp / "shards" / "shard-0").write_text("done")
        (tmp / "info.json").write_text("{}")
    target = tmp_path / "dataset"
    inode = {path: path.stat().st_ino for path in (target, target / "shards", tmp_path)}
    files = {(target / name).stat().st_ino for name in ("info.json", "shards/shard-0")}
    before, after = flushes[:-2], flushes[-2:]
    assert sorted(before) == sorted(
        [("fsync", inode[target]), ("fsync", inode[target / "shards"])]
        + [("fsync", ino) for ino in files]
    )
    assert after == [("replace", "dataset"), ("fsync", inode[tmp_path])]


def test_atomic_directory_replace_swaps_only_a_complete_result(tmp_path):
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "old").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(target, replace=True) as tmp:
        (tmp / "new").write_text("partial")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["old"]

    with atomic_directory(target, replace=True) as tmp:
        (tmp / "new").write_text("v2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert _leftovers(tmp_path) == ["dataset"]


def _killed_build(target):
    """Start a build of ``target`` in another process and SIGKILL it mid-build."""
    import signal

    code = (
        "import sys, time\nfrom kerastrans.atomic import atomic_directory\n"
        "with atomic_directory(sys.argv[1]) as tmp:\n"
        "    (tmp / 'shard').write_text('partial'); print(tmp, flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True
    )
    folder = process.stdout.readline().strip()
    process.send_signal(signal.SIGKILL)
    process.wait()
    return folder


def test_incomplete_folders_of_killed_builds_are_removed_by_the_next(tmp_path):
    target = tmp_path / "dataset"
    stale = _killed_build(target)
    assert _leftovers(tmp_path) == [stale.rsplit("/", 1)[1]]
    foreign = tmp_path / ".dataset.incomplete-otherhost-1-abc"  # another host: kept
    unowned = tmp_path / ".dataset.incomplete-abc123"  # no owner in the name: kept
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = tmp_path / f".dataset.incomplete-{_host()}-{sleeper.pid}-abc"  # live process: kept
    for folder in (foreign, unowned, live):
        folder.mkdir()
    try:
        with atomic_directory(target) as tmp:
            (tmp / "shard").write_text("done")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert _leftovers(tmp_path) == sorted(["dataset", foreign.name, unowned.name, live.name])


def _host():
    from kerastrans import atomic

    return atomic._HOST
