"""The project's reproducible datasets, built offline in seconds.

Each recipe is a function ``build_<name>(out_dir, *, seed=..., overwrite=False,
progress=True, ...) -> DatasetSummary`` that writes a TFDS-format dataset with
`kerastrans.data.records.write_dataset`. ``datasets/<name>/README.md`` in the
repository describes each one; ``kerastrans records --recipe NAME --out DIR``
and the demo build them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from kerastrans.data.recipes.pydicom_ct import build_pydicom_ct
from kerastrans.data.recipes.shapes import build_shapes
from kerastrans.data.summary import DatasetSummary

__all__ = ["RECIPES", "build_pydicom_ct", "build_recipe", "build_shapes"]

#: Recipe name -> builder.
RECIPES: dict[str, Callable[..., DatasetSummary]] = {
    "pydicom_ct": build_pydicom_ct,
    "shapes": build_shapes,
}


def build_recipe(name: str, out_dir: str | os.PathLike, **kwargs: Any) -> DatasetSummary:
    """Build the dataset ``name`` (a key of `RECIPES`) into ``out_dir``.

    Raises:
        ValueError: If ``name`` is not a recipe.
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)}, got {name!r}")
    return RECIPES[name](out_dir, **kwargs)
