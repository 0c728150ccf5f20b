"""The manifest of a `kerastrans.convert` output folder: incomplete until the end, resumable.

``convert`` writes ``kerastrans-convert.json`` into its output folder before
the first image, with ``"complete": false`` and the settings of the
conversion (input, model fingerprint, direction, format), and sets
``"complete": true`` (with the counts) only when every file has been tried.
A killed conversion therefore leaves a folder that says it is incomplete.

Rerunning the same conversion into that folder resumes it: output files
already there are complete (each is written atomically) and are kept; the
rest are written. A conversion with other settings is refused, so one folder
never mixes two models' outputs. The manifest also holds a random token from
which the new DICOM SeriesInstanceUIDs are derived, so a resumed series keeps
one UID.

>>> settings = {"input": "/data/ct", "model": "sha256:..", "direction": "AtoB", "format": "same"}
>>> state = begin("out", settings, overwrite=False)         # doctest: +SKIP
>>> finish(state, {"files": 3, "slices": 3, "failed": 0})   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kerastrans.atomic import atomic_write_text, writable_directory
from kerastrans.errors import file_error

__all__ = ["MANIFEST", "ConversionState", "begin", "fingerprint", "finish"]

#: File name of the manifest in the output folder.
MANIFEST = "kerastrans-convert.json"
#: Prefix of the temporary files of `kerastrans.atomic.atomic_path` (left by a killed writer).
_TEMPORARY_GLOB = ".*.tmp-*"


@dataclasses.dataclass(frozen=True)
class ConversionState:
    """An output folder claimed by one conversion.

    Attributes:
        output_dir: The output folder.
        settings: What the conversion depends on (JSON-serialisable).
        token: Random hex string kept across resumes (seeds the series UIDs).
        resumed: Whether an incomplete (or complete) earlier run is continued.
    """

    output_dir: Path
    settings: dict[str, Any]
    token: str
    resumed: bool


def begin(
    output_dir: str | os.PathLike, settings: Mapping[str, Any], *, overwrite: bool
) -> ConversionState:
    """Claim ``output_dir`` for a conversion and mark it incomplete.

    Args:
        output_dir: The output folder (created if missing).
        settings: The conversion's settings; a folder holding a manifest
            with equal settings is resumed.
        overwrite: Start afresh in a folder holding anything (files are
            replaced as they are written).

    Returns:
        The `ConversionState`.

    Raises:
        DataError: If ``output_dir`` cannot be written, or holds the output
            of a conversion with other settings (and not ``overwrite``).
        FileExistsError: If ``output_dir`` holds other files (and not ``overwrite``).
    """
    output_dir = writable_directory(output_dir)
    settings = json.loads(json.dumps(dict(settings)))  # the form it has once read back
    earlier = None if overwrite else _read(output_dir / MANIFEST)
    if earlier is not None:
        if settings.get("model") is None:
            raise file_error(
                output_dir,
                "holds the output of an earlier conversion and the model has no fingerprint to "
                "tell whether it is the same; use another folder, or --overwrite",
            )
        if earlier.get("settings") != settings:
            raise file_error(
                output_dir,
                "holds the output of another conversion "
                f"({_difference(earlier.get('settings'), settings)}); use another folder, "
                "or --overwrite",
            )
        token, resumed = str(earlier["token"]), True
        for leftover in output_dir.rglob(_TEMPORARY_GLOB):  # of writes that were killed
            leftover.unlink(missing_ok=True)
    else:
        if not overwrite and any(output_dir.iterdir()):
            raise FileExistsError(
                f"{output_dir}: exists and is not empty (--overwrite writes into it)"
            )
        token, resumed = secrets.token_hex(16), False
    state = ConversionState(output_dir, settings, token, resumed)
    _write(state, {"complete": False})
    return state


def finish(state: ConversionState, counts: Mapping[str, int]) -> None:
    """Mark the conversion of ``state`` complete, with its ``counts``."""
    _write(state, {"complete": True, **counts})


def fingerprint(translator: Any) -> str | None:
    """A digest of what a translator computes, to recognise the same model on a rerun.

    A `kerastrans.translate.Translator` is digested by its windows, size
    multiple and generator weights; an exported model by the files of its
    SavedModel folder; a `kerastrans.tiling.TiledTranslator` by the model it
    tiles and its tiles. Other callables have no fingerprint (`None`).
    """
    digest = hashlib.sha256()
    if isinstance(getattr(translator, "translator", None), Callable):  # tiled: the model inside
        digest.update(repr(("tiles", translator.tile, translator.overlap)).encode())
        translator = translator.translator
    generator = getattr(translator, "generator", None)
    path = getattr(translator, "path", None)
    if generator is not None:
        digest.update(repr((translator.input_window, translator.output_window)).encode())
        digest.update(repr(translator.size_multiple).encode())
        for weight in generator.weights:
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    elif path is not None and Path(path).is_dir():
        for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            digest.update(file.relative_to(path).as_posix().encode())
            digest.update(file.read_bytes())
    else:
        return None
    return f"sha256:{digest.hexdigest()}"


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise file_error(path, f"unreadable conversion manifest ({error})") from None
    if not isinstance(record, dict) or "token" not in record:
        raise file_error(path, "not a conversion manifest of kerastrans convert")
    return record


def _write(state: ConversionState, status: Mapping[str, Any]) -> None:
    record = {**status, "settings": state.settings, "token": state.token}
    atomic_write_text(state.output_dir / MANIFEST, json.dumps(record, indent=2) + "\n")


def _difference(earlier: Any, settings: dict[str, Any]) -> str:
    """The first setting that differs, as ``key X, now Y``."""
    earlier = earlier if isinstance(earlier, dict) else {}
    for key, value in settings.items():
        if earlier.get(key) != value:
            return f"{key} {earlier.get(key)!r}, now {value!r}"
    return "other settings"
