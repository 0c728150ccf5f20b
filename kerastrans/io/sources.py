"""Pairs of files for image-to-image translation, and reading a pair into arrays.

Paired data come from a tab-separated list file or from ``trainA``/``trainB``
(``testA``/``testB`` ...) folders matched by file name; unpaired data
(CycleGAN) are the two folders listed independently. Files that cannot be
paired are never dropped or mis-paired quietly: one `DataError` lists them
all (the first few names and how many).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kerastrans.errors import file_error
from kerastrans.io.files import find_images, read_image

__all__ = ["Pair", "pairs_from_folders", "pairs_from_list", "read_pair", "unpaired_from_folders"]

#: How many offending names an error message shows before "... and N more".
_SHOWN_NAMES = 5


@dataclasses.dataclass(frozen=True)
class Pair:
    """Files of one training example: input channels and target channels.

    Attributes:
        inputs: Files whose images are stacked, in order, as input channels.
        targets: Files whose images are stacked, in order, as target channels.
        id: Name of the example, unique within its source (for a folder
            pair, the relative path without extension).
    """

    inputs: tuple[Path, ...]
    targets: tuple[Path, ...]
    id: str


def pairs_from_list(
    list_file: str | os.PathLike,
    *,
    input_columns: Sequence[int] | None = None,
    target_columns: Sequence[int] | None = None,
) -> list[Pair]:
    """Read pairs from a tab-separated list file, one example per line.

    Each line holds file paths separated by tabs. Blank lines and lines whose
    first non-blank character is ``#`` are skipped. Relative paths are
    relative to the folder of the list file. By default all columns but the
    last are input channels and the last is the target; extra columns are
    thus extra input channels (e.g. neighbouring slices).

    Args:
        list_file: The ``.txt``/``.tsv`` list.
        input_columns: 0-based column indices stacked as input channels.
        target_columns: 0-based column indices stacked as target channels.

    Returns:
        The pairs in file order; ``id`` is the first input path as written.

    Raises:
        DataError: If the list is missing or empty, lines have too few
            columns, listed files do not exist, or an input appears twice;
            one error lists every offending line.
        ValueError: If ``input_columns``/``target_columns`` are empty.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise file_error(list_file, "no such list file")
    with open(list_file, encoding="utf-8") as file:
        rows = [
            (number, line.rstrip("\r\n").split("\t"))
            for number, line in enumerate(file, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not rows:
        raise file_error(list_file, "lists no files")
    width = len(rows[0][1])
    inputs = _columns(input_columns, range(width - 1), "input_columns")
    targets = _columns(target_columns, [width - 1], "target_columns")
    needed = max(2, max([*inputs, *targets]) + 1)
    if input_columns is None or target_columns is None:
        # "All but the last" and "the last" column mean one thing only if all lines agree.
        rule = f"every line needs the same number (>= {needed}) of tab-separated columns"
        bad = [f"line {n} ({len(cols)})" for n, cols in rows if len(cols) != max(width, needed)]
    else:
        rule = f"every line needs at least {needed} tab-separated columns"
        bad = [f"line {n} ({len(cols)})" for n, cols in rows if len(cols) < needed]
    if bad:
        raise file_error(list_file, f"{rule}; {_listing(bad)}")
    folder = list_file.parent
    missing, pairs, seen = [], [], {}
    for number, columns in rows:
        names = [column.strip() for column in columns]
        missing += [f"{name} (line {number})" for name in names if not (folder / name).is_file()]
        seen.setdefault(names[inputs[0]], []).append(number)
        pairs.append(
            Pair(
                tuple(folder / names[i] for i in inputs),
                tuple(folder / names[i] for i in targets),
                names[inputs[0]],
            )
        )
    if missing:
        raise file_error(
            list_file, f"{len(missing)} listed files do not exist: {_listing(missing)}"
        )
    repeated = [f"{key} (lines {', '.join(map(str, n))})" for key, n in seen.items() if len(n) > 1]
    if repeated:
        raise file_error(list_file, f"inputs listed more than once: {_listing(repeated)}")
    return pairs


def pairs_from_folders(root: str | os.PathLike, split: str = "train") -> list[Pair]:
    """Pair the images of ``root/<split>A`` with those of ``root/<split>B`` by name.

    Two files pair when their paths relative to their folder, without
    extension, are equal: ``trainA/p1/001.dcm`` pairs with ``trainB/p1/001.png``.

    Args:
        root: Folder holding ``<split>A`` and ``<split>B``.
        split: Split name, e.g. ``"train"`` or ``"test"``.

    Returns:
        Pairs sorted by ``id`` (the shared relative path without extension).

    Raises:
        DataError: If a folder is missing or empty, two files of one folder
            share a name, or any file has no partner; one error lists the
            unpaired names of both sides.
    """
    side_a, side_b = _split_folders(root, split)
    files_a, files_b = _by_stem(side_a), _by_stem(side_b)
    only_a = sorted(files_a.keys() - files_b.keys())
    only_b = sorted(files_b.keys() - files_a.keys())
    if only_a or only_b:
        problems = [
            f"{len(names)} in {folder.name} without a partner in {other.name}: {_listing(names)}"
            for names, folder, other in ((only_a, side_a, side_b), (only_b, side_b, side_a))
            if names
        ]
        raise file_error(root, "files cannot be paired by name; " + "; ".join(problems))
    return [Pair((files_a[key],), (files_b[key],), key) for key in sorted(files_a)]


def unpaired_from_folders(
    root: str | os.PathLike, split: str = "train"
) -> tuple[list[Path], list[Path]]:
    """List the images of ``root/<split>A`` and ``root/<split>B`` independently.

    For unpaired training (CycleGAN): the two domains need not match in
    names or counts.

    Returns:
        ``(files_a, files_b)``, each sorted.

    Raises:
        DataError: If a folder is missing or holds no images.
    """
    side_a, side_b = _split_folders(root, split)
    return find_images(side_a), find_images(side_b)


def read_pair(pair: Pair, *, same_size: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a pair into float32 ``(input, target)`` arrays, channels stacked in order.

    Args:
        pair: The files.
        same_size: Whether input and target must have the same ``H x W``.
            Pass ``False`` when sizes differ by design (super-resolution,
            sinogram -> image).

    Returns:
        ``(input H x W x C_in, target H' x W' x C_out)`` in physical units.

    Raises:
        DataError: If a file cannot be read, the channel images of one side
            differ in size, or (with ``same_size``) input and target differ
            in size; the message names both files and both shapes.
    """
    inputs = _stack_channels(pair.inputs)
    targets = _stack_channels(pair.targets)
    if same_size and inputs.shape[:2] != targets.shape[:2]:
        raise file_error(
            pair.inputs[0],
            f"input of shape {inputs.shape} and target {pair.targets[0]} of shape "
            f"{targets.shape} differ in size (H x W)",
        )
    return inputs, targets


def _stack_channels(paths: Sequence[Path]) -> np.ndarray:
    """Read ``paths`` and concatenate their channels; all must share ``H x W``."""
    images = [read_image(path) for path in paths]
    for path, image in zip(paths[1:], images[1:], strict=True):
        if image.shape[:2] != images[0].shape[:2]:
            raise file_error(
                path,
                f"shape {image.shape} differs in size (H x W) from {paths[0]} of shape "
                f"{images[0].shape}; channel images must have one size",
            )
    return np.concatenate(images, axis=-1)


def _split_folders(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """``root/<split>A`` and ``root/<split>B``, which must both be folders."""
    root = Path(root)
    folders = (root / f"{split}A", root / f"{split}B")
    missing = [folder.name for folder in folders if not folder.is_dir()]
    if missing:
        raise file_error(root, f"no folder {' or '.join(missing)} for split {split!r}")
    return folders


def _by_stem(folder: Path) -> dict[str, Path]:
    """Map relative path without extension (POSIX) -> file, refusing duplicate names."""
    files: dict[str, list[Path]] = {}
    for path in find_images(folder):
        files.setdefault(path.relative_to(folder).with_suffix("").as_posix(), []).append(path)
    clashes = [" and ".join(p.name for p in paths) for paths in files.values() if len(paths) > 1]
    if clashes:
        raise file_error(
            folder, f"files share a name, so pairing is ambiguous: {_listing(clashes)}"
        )
    return {key: paths[0] for key, paths in files.items()}


def _columns(columns: Iterable[int] | None, default: Iterable[int], name: str) -> list[int]:
    """Column indices from an argument (or the default), checked to be non-negative ints."""
    if columns is None:
        return list(default)
    result = list(columns)
    if not result or any(not isinstance(c, int) or c < 0 for c in result):
        raise ValueError(f"{name} must be non-empty 0-based column indices, got {columns!r}")
    return result


def _listing(names: Sequence[str]) -> str:
    """The first few ``names``, comma-separated, then "... and N more"."""
    shown = ", ".join(names[:_SHOWN_NAMES])
    rest = len(names) - _SHOWN_NAMES
    return f"{shown} ... and {rest} more" if rest > 0 else shown
