"""What every recipe writes alike: name, version, units and window hint, then the dataset."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from kerastrans.data.records import DatasetSummary, write_dataset

__all__ = ["CT_DISPLAY_WINDOW", "write_recipe"]

#: Display window hint of HU-valued recipes (air -1000 HU to +1000 HU); training uses the
#: whole CT range (`kerastrans.training.resolve.CT_WINDOW`).
CT_DISPLAY_WINDOW = {"base": -1000.0, "range": 2000.0}


def write_recipe(
    out_dir: str | os.PathLike,
    splits: Mapping[str, Iterable[dict[str, Any]]],
    *,
    name: str,
    version: str,
    doc: str,
    metadata: Mapping[str, Any],
    overwrite: bool,
    progress: bool,
) -> DatasetSummary:
    """Write a recipe's splits with its metadata (HU units and `CT_DISPLAY_WINDOW` added).

    Args:
        out_dir: Dataset folder.
        splits: Examples per split.
        name: Recipe name (a key of `kerastrans.data.recipes.RECIPES`).
        version: Recipe version, bumped when the content changes.
        doc: The recipe module's docstring; its first line is the description.
        metadata: The recipe's own metadata (seed, sizes, sources, ...).
        overwrite: Rebuild an existing dataset.
        progress: Show progress bars.
    """
    return write_dataset(
        out_dir,
        splits,
        metadata={
            "name": name,
            "version": version,
            "units": "HU",
            "window": CT_DISPLAY_WINDOW,
            **metadata,
        },
        description=doc.splitlines()[0],
        overwrite=overwrite,
        progress=progress,
    )
