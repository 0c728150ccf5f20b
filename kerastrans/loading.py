"""Load a model for translation from a path: an exported SavedModel or a run directory.

`load_translator` is what ``convert`` and ``evaluate`` take a model path
through. It sits above `kerastrans.export` (SavedModels) and `kerastrans.runs`
(run directories of ``kerastrans fit``), so that `kerastrans.translate` needs
neither and each module imports only the ones below it.

>>> translator = load_translator("models/ldct")              # doctest: +SKIP
>>> translator(low_dose_hu).shape                            # doctest: +SKIP
TensorShape([1, 512, 512, 1])
"""

from __future__ import annotations

import os
from pathlib import Path

from kerastrans.errors import file_error
from kerastrans.export import find_saved_model, load_exported
from kerastrans.runs import load_run
from kerastrans.translate import DIRECTIONS, ImageTranslator

__all__ = ["load_translator"]


def load_translator(
    model: str | os.PathLike,
    direction: str = "AtoB",
    *,
    version: int | None = None,
    which: str = "auto",
) -> ImageTranslator:
    """Load a model for translation: an exported SavedModel or a run directory.

    Args:
        model: A folder written by `kerastrans.export.export_translator` (a
            version folder holding ``saved_model.pb``, or the model folder
            above numbered versions), or a run directory of ``kerastrans fit``.
        direction: ``"AtoB"`` or ``"BtoA"`` (CycleGAN runs, or a SavedModel
            exported with that direction).
        version: The version folder of a model folder; by default the highest.
        which: The model of a run directory (see `kerastrans.runs.load_run`):
            ``"auto"`` (its best epoch's if it keeps one, else its latest),
            ``"best"`` or ``"latest"``. A SavedModel holds one model: only
            ``"auto"`` applies to it.

    Returns:
        A callable from physical units to physical units.

    Raises:
        ValueError: If ``direction`` is not one of `DIRECTIONS`, or is
            ``"BtoA"`` for a run that has one generator.
        DataError: If ``model`` is neither a SavedModel nor a run directory,
            has no version ``version``, or is a SavedModel of the other
            direction, or is a SavedModel and ``which`` asks for an epoch.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    path = Path(model)
    saved_model = find_saved_model(path, version)
    if saved_model is not None:
        if which != "auto":
            raise file_error(
                saved_model,
                f"is an exported SavedModel, which holds one model: {which!r} picks an epoch "
                "of a run directory of kerastrans fit",
            )
        translator = load_exported(saved_model)
        if translator.direction != direction:
            raise file_error(
                saved_model,
                f"holds the {translator.direction} direction only, not {direction} "
                f"(export the run with --direction {direction})",
            )
        return translator
    # load_run raises DataError for a folder that is not a run.
    return load_run(path, which).translator(direction)
