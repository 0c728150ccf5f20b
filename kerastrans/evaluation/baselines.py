"""What `kerastrans.evaluate.evaluate` compares a model with: the input, or FBP of sinograms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kerastrans.evaluation.examples import Example, read_examples

__all__ = ["BASELINES", "make_baseline"]

#: Baselines `evaluate` can score next to the model.
BASELINES = ("auto", "input", "fbp", "none")
#: Validation images used to tune the FBP cut-off.
_TUNE_IMAGES = 32


def make_baseline(
    baseline: str,
    dataset_dir: Path,
    split: str,
    summary: Any,
    frequency_scaling: float | None,
    impl: str | None,
) -> tuple[Callable[[list[Example]], list[np.ndarray]] | None, str | None]:
    """The baseline function of a chunk of examples and its description."""
    from kerastrans.data.records import read_metadata

    if baseline == "auto":
        features = summary.splits[split].features
        same = features["input"].shapes == features["target"].shapes
        has_geometry = "geometry" in read_metadata(dataset_dir)
        baseline = "input" if same else "fbp" if has_geometry else "none"
    if baseline == "none":
        return None, None
    if baseline == "input":
        return (lambda chunk: [example.input for example in chunk]), "input (the input as is)"
    return _fbp_baseline(dataset_dir, split, summary, frequency_scaling, impl)


def _fbp_baseline(
    dataset_dir: Path, split: str, summary: Any, frequency_scaling: float | None, impl: str | None
) -> tuple[Callable[[list[Example]], list[np.ndarray]], str]:
    """FBP of the sinogram inputs, in the targets' units."""
    from kerastrans.data.geometry import geometry_from_dataset
    from kerastrans.data.records import read_metadata
    from kerastrans.tomo.baseline import tune_fbp
    from kerastrans.tomo.operators import apply_batch, fbp

    geometry = geometry_from_dataset(dataset_dir)
    scale, offset = _fbp_units(read_metadata(dataset_dir))
    how = "given"
    if frequency_scaling is None:
        tuning_split = "validation"
        if tuning_split in summary.splits and tuning_split != split:
            tuning = list(read_examples(dataset_dir, tuning_split, _TUNE_IMAGES))
            result = tune_fbp(
                np.stack([example.input for example in tuning]),
                (np.stack([example.target for example in tuning]) - offset) / scale,
                geometry,
                impl=impl,
            )
            frequency_scaling = result.frequency_scaling
            how = f"tuned on {len(tuning)} validation images"
        else:
            frequency_scaling, how = 1.0, "default, no validation split to tune it"
    operator = fbp(geometry, filter_type="Hann", frequency_scaling=frequency_scaling, impl=impl)

    def reconstruct(chunk: list[Example]) -> list[np.ndarray]:
        sinograms = np.stack([example.input[..., 0] for example in chunk])
        images = apply_batch(operator, sinograms) * np.float32(scale) + np.float32(offset)
        return list(images[..., np.newaxis])

    return reconstruct, f"fbp (Hann filter, frequency scaling {frequency_scaling:g}, {how})"


def _fbp_units(metadata: dict) -> tuple[float, float]:
    """``(scale, offset)`` with ``target = scale * FBP + offset`` for a simulated dataset.

    ``kerastrans simulate`` projects attenuation ``mu = mu_water * value`` of
    phantoms (targets in phantom values, 1 = water) and ``mu = mu_water (1 +
    HU / 1000)`` of CT images (targets in HU); the dival ellipses protocol
    projects the phantom values themselves (no ``mu_water`` recorded).
    """
    mu_water = metadata.get("simulation", {}).get("mu_water")
    if mu_water is None:
        return 1.0, 0.0
    if metadata.get("units", {}).get("target") == "HU":
        return 1000.0 / mu_water, -1000.0
    return 1.0 / mu_water, 0.0
