"""Checks of the examples `kerastrans.data.records.write_dataset` writes, one by one.

Each example is a dict with an ``id``, its float32 ``H x W x C`` images
(finite, not empty) and optional ``series``, ``position`` and ``modality``;
the images of one key in a split share one channel count (the odd one out is
named), and the images of one domain one DICOM modality. A bad example raises
a `DataError` naming it, before anything is stored.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kerastrans.data.summary import SplitAccumulator
from kerastrans.errors import DataError, file_error
from kerastrans.io.slice import modality_mismatch

__all__ = ["Modalities", "check_example", "checked_examples"]


def checked_examples(
    split: str,
    examples: Iterator[Mapping[str, Any]],
    source: Iterable[Any],
    keys: tuple[str, ...],
    accumulator: SplitAccumulator,
    modalities: Modalities,
    progress: bool,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Check, count and key the examples of one split (keys give the stored order).

    All images of one key in a split have one channel count (domains of an
    unpaired dataset may differ); all images of one domain, one modality.
    """
    total = operator.length_hint(source) or None
    stream = iter(tqdm(examples, desc=split, total=total, unit=" slices", disable=not progress))
    count, first = 0, None
    for count, example in enumerate(stream, start=1):
        checked, modality = check_example(example, keys)
        first = first or checked
        for key in keys:
            if checked[key].shape[-1] != first[key].shape[-1]:
                raise _odd_channels(split, key, first, checked, count - 1, stream, keys)
            modalities.check(split, key, checked["id"], modality.get(key))
        accumulator.add(checked, modality)
        yield count - 1, checked
    if count == 0:
        raise DataError(f"split {split!r}: no examples")


class Modalities:
    """The DICOM Modality of each domain: two different ones in a domain are refused.

    Files without one (not DICOM) may join any domain; the domain's recorded
    modality is then `None` (see `SplitAccumulator.add`).
    """

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._first: dict[str, tuple[str, str]] = {}

    def check(self, split: str, key: str, example_id: str, modality: str | None) -> None:
        """Raise `DataError` naming both examples if ``modality`` differs from its domain's."""
        if modality is None:
            return
        domain = key
        if self._kind == "unpaired" and split[-1:] in ("A", "B"):
            domain = f"domain {split[-1]}"
        first_id, first = self._first.setdefault(domain, (example_id, modality))
        if modality != first:
            raise modality_mismatch(example_id, modality, first_id, first, f"({domain})")


def _odd_channels(
    split: str,
    key: str,
    first: Mapping[str, Any],
    example: Mapping[str, Any],
    agreeing: int,
    stream: Iterator[Mapping[str, Any]],
    keys: tuple[str, ...],
) -> DataError:
    """The error for ``example`` whose ``key`` differs in channels from the ``agreeing`` first.

    It names the odd one out: ``example`` when at least two examples before
    it agree; with one before it, the next example (read from ``stream``)
    decides which of the two is odd.
    """
    this, before = example[key].shape[-1], first[key].shape[-1]
    odd, odd_channels, others, others_channels = example, this, first["id"], before
    if agreeing >= 2:
        others = f"the {agreeing} examples before it"
    else:
        following = next(stream, None)
        third = None if following is None else check_example(following, keys)[0]
        if third is not None and third[key].shape[-1] == this:
            odd, odd_channels, others_channels = first, before, this
            others = f"the examples after it ({example['id']}, {third['id']})"
        elif third is not None and third[key].shape[-1] == before:
            others = f"the examples around it ({first['id']}, {third['id']})"
    return file_error(
        odd["id"],
        f"{key} has {_describe_channels(odd_channels)}, but {others} in split {split!r} "
        f"{'has' if others == first['id'] else 'have'} {_describe_channels(others_channels)}; "
        "the images of one split need one number of channels "
        "(convert the odd file or leave it out)",
    )


def _describe_channels(count: int) -> str:
    """``"1 channel (grey)"``, ``"3 channels (RGB)"`` ..."""
    name = {1: " (grey)", 2: " (grey + alpha)", 3: " (RGB)", 4: " (RGBA)"}.get(count, "")
    return f"{count} channel{'s' if count != 1 else ''}{name}"


def check_example(
    example: Mapping[str, Any], keys: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Return the example as stored and its modality per key, or raise `DataError` naming it."""
    if not isinstance(example, Mapping) or "id" not in example:
        raise DataError(f"examples must be dicts with an 'id', got {type(example).__name__}")
    example_id = str(example["id"])
    expected = {*keys, "id", "series", "position", "modality"}
    missing = [key for key in keys if key not in example]
    extra = sorted(set(example) - expected)
    if missing or extra:
        raise file_error(
            example_id,
            f"example keys must be {sorted(expected)} (series, position and "
            f"modality optional), got {sorted(example)}",
        )
    modality = example.get("modality") or {}
    if not isinstance(modality, Mapping) or not all(
        value is None or isinstance(value, str) for value in modality.values()
    ):
        raise file_error(
            example_id, f"modality must map image keys to str or None, got {modality!r}"
        )
    checked = {"id": example_id}
    for key in keys:
        image = example[key]
        if not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.ndim != 3:
            raise file_error(
                example_id,
                f"{key} must be a float32 H x W x C array, got "
                f"{getattr(image, 'dtype', type(image).__name__)} "
                f"{getattr(image, 'shape', '')}",
            )
        if 0 in image.shape:
            raise file_error(example_id, f"{key} is empty, shape {image.shape}")
        if not np.isfinite(image).all():
            raise file_error(example_id, f"{key} holds NaN or infinite values")
        checked[key] = image
    series, position = example.get("series"), example.get("position")
    checked["series"] = "" if series is None else str(series)
    checked["position"] = np.float32(math.nan if position is None else position)
    return checked, {key: modality.get(key) for key in keys}
