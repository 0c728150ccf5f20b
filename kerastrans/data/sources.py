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
(``held_out={"validation": 0.1}``), whole groups at a time: a DICOM series
(SeriesInstanceUID) never lands in two splits, and any other file (PNG, TIFF,
NPY, DICOM without a series UID) is a group of its own, all its frames
together. The draw is seeded; what it reached is in `SourceSplits.draws`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from kerastrans.data.examples import (
    Examples,
    folder_examples,
    hold_out,
    paired_examples,
    unpaired_examples,
)
from kerastrans.errors import DataError, file_error
from kerastrans.io.sources import pairs_from_folders, pairs_from_list, unpaired_from_folders

__all__ = ["MODES", "Draw", "SourceSplits", "folder_splits", "source_splits"]

MODES = ("paired", "unpaired", "list", "folder")
#: Split names listed first, in this order; others follow alphabetically.
_ORDER = ("train", "validation", "val", "test")


@dataclasses.dataclass(frozen=True)
class Draw:
    """What one random split reached: whole groups, so maybe not the fraction asked.

    Attributes:
        split: The new split, e.g. ``"validation"`` (``"validationA"`` per domain).
        source: The split it was drawn from (``"train"``, ``"trainA"``, ...).
        asked: The fraction asked for.
        groups: Groups (DICOM series or files) moved.
        total_groups: Groups of the source split before the draw.
        count: Sources (examples, or files of a domain) moved.
        total: Sources of the source split before the draw.
        unit: What a source is: ``"examples"`` or ``"files"``.
    """

    split: str
    source: str
    asked: float
    groups: int
    total_groups: int
    count: int
    total: int
    unit: str

    def describe(self) -> str:
        """One line, e.g. ``validation: 1 of 3 groups (DICOM series or files), ...``."""
        return (
            f"{self.split}: {self.groups} of {self.total_groups} groups (DICOM series or "
            f"files) from {self.source}, {self.count} of {self.total} {self.unit} = "
            f"{self.count / self.total:.1%} (asked {self.asked:.1%})"
        )


class SourceSplits(dict):
    """Examples per split name (a dict), with the `Draw` of each random split in ``draws``."""

    def __init__(self, splits: Mapping[str, Examples], draws: Sequence[Draw] = ()) -> None:
        super().__init__(splits)
        self.draws = list(draws)


def source_splits(
    source: str | os.PathLike,
    mode: Literal["paired", "unpaired", "list", "folder"],
    *,
    keep: Sequence[str] = (),
    held_out: Mapping[str, float] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> SourceSplits:
    """Return the examples of ``source`` per split.

    Args:
        source: Folder (``paired``, ``unpaired``, ``folder``) or list file (``list``).
        mode: Kind of source, one of `MODES`.
        keep: Source splits to write (default: all found).
        held_out: New split name -> fraction of the ``train`` examples moved
            into it at random, whole DICOM series (or files) at a time.
        seed: Seed of the random split.
        progress: Show a progress bar while a plain folder is read.

    Returns:
        Examples per split name, in a stable order (train, validation, test,
        ...), with the fractions the random splits reached in ``draws``.

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
    draws = [
        draw
        for name, fraction in (held_out or {}).items()
        for draw in _move_random_part(splits, source, name, fraction, seed)
    ]
    return SourceSplits(dict(sorted(splits.items(), key=lambda item: _rank(item[0]))), draws)


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
) -> list[Draw]:
    """Move ``fraction`` of each train part (``train``, or ``trainA``/``trainB``) to ``name``."""
    parts = [key for key in splits if key in ("train", "trainA", "trainB")]
    if not parts:
        raise file_error(
            source,
            f"split {name!r} is drawn from the train examples, but no train split is written",
        )
    draws = []
    for key in parts:
        suffix = key[len("train") :]
        if f"{name}{suffix}" in splits:
            raise DataError(f"split {name!r} exists in the source: choose another name")
        examples = splits[key]
        sources = examples.sources
        labels = [examples.group(item) if examples.group else i for i, item in enumerate(sources)]
        try:
            kept, held = hold_out(range(len(sources)), fraction, seed, group=labels.__getitem__)
        except ValueError as error:
            raise file_error(source, f"cannot draw split {name!r}: {error}") from None
        splits[f"{name}{suffix}"] = examples.subset([sources[i] for i in held])
        splits[key] = examples.subset([sources[i] for i in kept])
        draws.append(
            Draw(
                f"{name}{suffix}",
                key,
                fraction,
                len({labels[i] for i in held}),
                len(set(labels)),
                len(held),
                len(sources),
                examples.unit,
            )
        )
    return draws


def _rank(name: str) -> tuple[int, str]:
    base = name[:-1] if name[-1:] in ("A", "B") and name[:-1] in _ORDER else name
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), name)
