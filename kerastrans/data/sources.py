"""Splits of examples from a source folder or list file, as ``kerastrans records`` reads them.

`source_splits` turns one of four kinds of source into the ``splits``
mapping `kerastrans.data.records.write_dataset` takes:

- ``"paired"``: ``root/<split>A`` + ``root/<split>B`` paired by name; one split
  per ``<split>`` found (``train``, ``test``, ...);
- ``"unpaired"``: the same folders as two domains; splits ``<split>A`` and
  ``<split>B``;
- ``"list"``: a tab-separated list file; split ``train``;
- ``"folder"``: every slice of a plain folder with ``input = target``; split
  ``train``.

A random part of the ``train`` examples can be moved to new splits
(``hold_out={"validation": 0.1}``); whole DICOM series stay together.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from kerastrans.data.examples import (
    Examples,
    folder_examples,
    hold_out,
    paired_examples,
    unpaired_examples,
)
from kerastrans.errors import DataError, file_error
from kerastrans.io.sources import pairs_from_folders, pairs_from_list, unpaired_from_folders

__all__ = ["MODES", "folder_splits", "source_splits"]

MODES = ("paired", "unpaired", "list", "folder")
#: Split names listed first, in this order; others follow alphabetically.
_ORDER = ("train", "validation", "val", "test")


def source_splits(
    source: str | os.PathLike,
    mode: Literal["paired", "unpaired", "list", "folder"],
    *,
    keep: Sequence[str] = (),
    held_out: Mapping[str, float] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Iterable[dict[str, Any]]]:
    """Return the examples of ``source`` per split.

    Args:
        source: Folder (``paired``, ``unpaired``, ``folder``) or list file (``list``).
        mode: Kind of source, one of `MODES`.
        keep: Source splits to write (default: all found).
        held_out: New split name -> fraction of the ``train`` examples moved
            into it at random.
        seed: Seed of the random split.
        progress: Show a progress bar while a plain folder is read.

    Returns:
        Examples per split name, in a stable order (train, validation, test, ...).

    Raises:
        DataError: If the source is missing, has no usable split, a requested
            split is absent, or files cannot be paired.
        ValueError: If ``mode`` is unknown or a random split is impossible.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    source = Path(source)
    if mode in ("paired", "unpaired"):
        found = folder_splits(source)
        names = _requested(source, found, keep)
        if mode == "paired":
            splits = {name: paired_examples(pairs_from_folders(source, name)) for name in names}
        else:
            splits = {}
            for name in names:
                files_a, files_b = unpaired_from_folders(source, name)
                splits[f"{name}A"] = unpaired_examples(files_a)
                splits[f"{name}B"] = unpaired_examples(files_b)
    else:
        _requested(source, ("train",), keep)
        examples = (
            paired_examples(pairs_from_list(source))
            if mode == "list"
            else folder_examples(source, progress=progress)
        )
        splits = {"train": examples}
    for name, fraction in (held_out or {}).items():
        _move_random_part(splits, source, name, fraction, seed)
    return dict(sorted(splits.items(), key=lambda item: _rank(item[0])))


def folder_splits(root: str | os.PathLike) -> list[str]:
    """Names ``s`` for which ``root/<s>A`` and ``root/<s>B`` are both folders.

    Raises:
        DataError: If ``root`` is not a folder or holds no such pair.
    """
    root = Path(root)
    if not root.is_dir():
        raise file_error(root, "no such folder")
    found = sorted(
        path.name[:-1]
        for path in root.iterdir()
        if path.is_dir() and path.name.endswith("A") and (root / f"{path.name[:-1]}B").is_dir()
    )
    if not found:
        raise file_error(root, "no <split>A/<split>B folders (e.g. trainA and trainB)")
    return sorted(found, key=_rank)


def _requested(source: Path, found: Sequence[str], keep: Sequence[str]) -> list[str]:
    missing = [name for name in keep if name not in found]
    if missing:
        raise file_error(source, f"no split {missing[0]!r} (found: {', '.join(found)})")
    return list(keep) or list(found)


def _move_random_part(
    splits: dict[str, Examples], source: Path, name: str, fraction: float, seed: int
) -> None:
    """Move ``fraction`` of each train part (``train``, or ``trainA``/``trainB``) to ``name``."""
    parts = [key for key in splits if key in ("train", "trainA", "trainB")]
    if not parts:
        raise file_error(
            source,
            f"split {name!r} is drawn from the train examples, but no train split is written",
        )
    for key in parts:
        suffix = key[len("train") :]
        if f"{name}{suffix}" in splits:
            raise DataError(f"split {name!r} exists in the source: choose another name")
        try:
            kept, held = hold_out(splits[key].sources, fraction, seed, group=_group)
        except ValueError as error:
            raise file_error(source, f"cannot draw split {name!r}: {error}") from None
        splits[f"{name}{suffix}"] = splits[key].subset(held)
        splits[key] = splits[key].subset(kept)


def _group(item: Any) -> Any:
    """Group of a source: the DICOM series of a slice, else the pair id or file itself."""
    return getattr(item, "series", None) or getattr(item, "id", None) or item


def _rank(name: str) -> tuple[int, str]:
    base = name[:-1] if name[-1:] in ("A", "B") and name[:-1] in _ORDER else name
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), name)
