"""TFRecord shards of a dataset: truncation found before reading, corruption named when met.

A TFRecord file is a sequence of records, each ``length`` (8 bytes, little
endian), a checksum of the length (4 bytes), ``length`` bytes of data and a
checksum of the data (4 bytes). `check_shards` walks the length fields only
(no data is read) and compares the record count of each shard with the one
``dataset_info.json`` lists, so a truncated shard (a copy cut short, a full
disk) is refused by name before training or evaluation starts. A shard whose
bytes are damaged in place shows up only when read: `shard_errors` turns
TensorFlow's ``DataLossError``, which names no file, into a `DataError` naming
the shard, found by reading each shard again.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from kerastrans.errors import DataError, file_error

__all__ = ["check_shards", "shard_errors"]

#: Bytes around a record's data: length (8), its checksum (4); the data's checksum (4).
_HEADER, _FOOTER = 12, 4
_REBUILD = "rebuild the dataset (kerastrans records/simulate with --overwrite)"


def check_shards(splits: Iterable[Any]) -> None:
    """Check that every shard of ``splits`` holds the records the dataset lists.

    Args:
        splits: TFDS ``SplitInfo`` objects (``builder.info.splits.values()``),
            each with ``filepaths`` and ``shard_lengths``.

    Raises:
        DataError: ``"<shard>: truncated or corrupt TFRecord (...)"`` for the
            first shard that is missing, cut short or holds another number of
            records.
    """
    for split in splits:
        for path, expected in zip(split.filepaths, split.shard_lengths, strict=True):
            _check_shard(os.fspath(path), int(expected))


@contextlib.contextmanager
def shard_errors(dataset_dirs: Sequence[str | os.PathLike | None]) -> Iterator[None]:
    """Turn a ``DataLossError`` met while reading into a `DataError` naming the shard.

    Args:
        dataset_dirs: The dataset folders read inside the block (`None`
            entries are skipped).

    Raises:
        DataError: ``"<shard>: truncated or corrupt TFRecord (<reason>); ..."``,
            or the dataset folder when no single shard is found at fault.
    """
    try:
        yield
    except tf.errors.DataLossError as error:
        reason = _reason(error)
        folders = [os.fspath(folder) for folder in dataset_dirs if folder is not None]
        for shard in (shard for folder in folders for shard in _shards(folder)):
            try:
                for _ in tf.data.TFRecordDataset(shard):
                    pass
            except tf.errors.DataLossError as shard_error:
                raise file_error(
                    shard, f"truncated or corrupt TFRecord ({_reason(shard_error)}); {_REBUILD}"
                ) from None
        raise DataError(
            f"{', '.join(folders)}: truncated or corrupt TFRecord ({reason}); {_REBUILD}"
        ) from None


def _check_shard(path: str, expected: int) -> None:
    """Walk the record headers of one shard; raise `DataError` when it is cut short."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            offset, count = 0, 0
            while offset < size:
                file.seek(offset)
                header = file.read(8)
                if len(header) < 8:
                    raise _truncated(path, f"record {count + 1} has no length at byte {offset}")
                (length,) = struct.unpack("<Q", header)
                end = offset + _HEADER + length + _FOOTER
                if end > size:
                    raise _truncated(
                        path, f"record {count + 1} ends at byte {end}, the file has {size}"
                    )
                offset, count = end, count + 1
    except OSError as error:
        raise file_error(path, f"unreadable TFRecord shard ({error.strerror or error})") from None
    if count != expected:
        raise _truncated(path, f"{count} records, dataset_info.json lists {expected}")


def _truncated(path: str, detail: str) -> DataError:
    return file_error(path, f"truncated or corrupt TFRecord ({detail}); {_REBUILD}")


def _shards(folder: str) -> list[str]:
    """The TFRecord shards of a dataset folder, sorted."""
    names = sorted(name for name in os.listdir(folder) if ".tfrecord-" in name)
    return [os.path.join(folder, name) for name in names]


def _reason(error: tf.errors.OpError) -> str:
    """TensorFlow's message without the function and op names around it."""
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", error.message)
    return re.sub(r"\s*\[Op:.*$", "", message, flags=re.DOTALL).strip() or "data loss"
