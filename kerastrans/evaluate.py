"""Evaluate a model on a dataset split: PSNR, SSIM, RMSE, MAE and bias in physical units.

`evaluate` translates the inputs of a paired dataset and scores the outputs
against the targets with `kerastrans.metrics` (computed as dival does), next
to a baseline:

- ``"input"``: the input as it is, when it has the target's shape
  (denoising: the low-dose image; the score to beat);
- ``"fbp"``: filtered back-projection (Hann filter) of sinogram inputs, with
  the geometry stored in the dataset metadata (`kerastrans.tomo`); its
  frequency cut-off is tuned on the ``validation`` split when there is one
  (`kerastrans.tomo.baseline.tune_fbp`, never on the evaluated split);
- ``"auto"`` picks ``"input"`` for equal shapes, else ``"fbp"`` when the
  dataset has a geometry, else none.

With ``direction="BtoA"`` (the second generator of a CycleGAN) the roles of
the dataset's images swap: its targets are translated and scored against its
inputs; the baseline is then the target as is (or none).

PSNR and SSIM need a data range: by default ``max - min`` of each ground
truth (dival's convention, comparable with published tables); a fixed range
(e.g. the window width, ``data_range="window"``) is used when given.

The bias is the mean error (output - target) of each image in physical units,
over all pixels and over the pixels whose target lies in `SOFT_TISSUE`
(-200..200, soft tissue when the units are HU; NaN for an image without such
pixels); the mean row averages the images' values, as for the other metrics.

The `EvaluationReport` prints as a markdown table and saves a CSV (one row per
image and a mean row) and a PNG of sample images side by side.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kerastrans.errors import file_error
from kerastrans.evaluation.baselines import BASELINES, make_baseline
from kerastrans.evaluation.examples import chunks, read_examples
from kerastrans.evaluation.report import (
    COLUMNS,
    SOFT_TISSUE,
    EvaluationReport,
    Sample,
    image_scores,
)
from kerastrans.tiling import auto_tiled
from kerastrans.translate import DIRECTIONS, translate_in_batches

__all__ = ["BASELINES", "COLUMNS", "SOFT_TISSUE", "EvaluationReport", "Sample", "evaluate"]


def evaluate(
    translator: Callable[[np.ndarray], Any],
    dataset_dir: str | os.PathLike,
    split: str = "test",
    *,
    baseline: str = "auto",
    data_range: float | str | None = None,
    batch_size: int = 8,
    max_images: int | None = None,
    num_samples: int = 4,
    fbp_frequency_scaling: float | None = None,
    impl: str | None = None,
    direction: str = "AtoB",
    progress: bool = True,
) -> EvaluationReport:
    """Score a model (and a baseline) on a split of a paired dataset.

    Args:
        translator: Maps ``N x H x W x C`` float32 inputs in physical units to
            outputs in the target's physical units (a
            `kerastrans.translate.Translator`, an exported model, any callable).
            Images over `kerastrans.tiling.AUTO_TILE_PIXELS` are translated in
            tiles; wrap it in a `kerastrans.tiling.TiledTranslator` to choose them.
        dataset_dir: A paired dataset (`kerastrans.data.records`).
        split: The split to evaluate.
        baseline: One of `BASELINES`.
        data_range: PSNR/SSIM data range: `None` for ``max - min`` of each
            ground truth, a number, or ``"window"`` for the width of the
            translator's output window.
        batch_size: Images per model call.
        max_images: Evaluate only the first this many images.
        num_samples: Examples kept for the figure.
        fbp_frequency_scaling: FBP cut-off in (0, 1]; `None` tunes it on the
            ``validation`` split (first 32 images), or uses 1 without one.
        impl: ASTRA back-end of the FBP baseline.
        direction: ``"AtoB"``: ``translator`` maps the dataset's inputs to
            its targets; ``"BtoA"``: it maps targets to inputs (CycleGAN's
            second generator), so targets are fed and inputs scored against.
        progress: Show a progress bar.

    Returns:
        The `EvaluationReport`.

    Raises:
        ValueError: For a bad argument.
        DataError: If the dataset is not paired, lacks the split, has no
            geometry for ``baseline="fbp"``, or outputs do not match targets.
    """
    from kerastrans.data.records import read_summary

    _check_arguments(baseline, batch_size, max_images, num_samples, fbp_frequency_scaling)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "BtoA" and baseline == "fbp":
        raise ValueError("baseline 'fbp' reconstructs the inputs: it has no BtoA direction")
    dataset_dir = Path(dataset_dir)
    summary = read_summary(dataset_dir)
    if summary.kind != "paired":
        raise file_error(dataset_dir, "evaluate needs a paired dataset (input and target)")
    if split not in summary.splits:
        raise file_error(dataset_dir, f"no split {split!r} (splits: {', '.join(summary.splits)})")
    data_range = _resolve_range(data_range, translator)
    if direction == "BtoA" and baseline == "auto":  # fbp makes no sense from the targets
        features = summary.splits[split].features
        same = features["input"].shapes == features["target"].shapes
        baseline = "input" if same else "none"
    neighbours = int(getattr(translator, "neighbours", 0))  # 2.5D: stacked as in training
    if neighbours and not summary.splits[split].series_ordered:
        raise file_error(
            dataset_dir,
            f"split {split!r} does not store the slices of each series together in "
            "order of position, which 2.5D models need",
        )
    translator = auto_tiled(translator, batch_size)  # large images in tiles (with a note)
    baseline_of, description = make_baseline(
        baseline, dataset_dir, split, summary, fbp_frequency_scaling, impl
    )
    name = description.split(" ")[0] if description else None
    total = summary.splits[split].num_examples
    total = total if max_images is None else min(total, max_images)
    ids: list[str] = []
    scores: dict[str, list] = {"model": [], **({name: []} if name else {})}
    samples: list[Sample] = []
    with tqdm(total=total, desc=f"evaluating {split}", unit="image", disable=not progress) as bar:
        examples = read_examples(
            dataset_dir, split, max_images, neighbours, swap=direction == "BtoA"
        )
        for chunk in chunks(examples, batch_size):
            items = (
                (index, example.input if example.stack is None else example.stack)
                for index, example in enumerate(chunk)
            )
            outputs = dict(translate_in_batches(translator, items, batch_size))
            baselines = baseline_of(chunk) if baseline_of else [None] * len(chunk)
            for index, example in enumerate(chunk):
                output = outputs[index]
                _check_match(example.id, "model output", output, example.target)
                ids.append(example.id)
                scores["model"].append(image_scores(output, example.target, data_range))
                if name:
                    _check_match(example.id, name, baselines[index], example.target)
                    scores[name].append(image_scores(baselines[index], example.target, data_range))
                if len(samples) < num_samples:
                    samples.append(Sample(example.id, example.input, baselines[index], output,
                                          example.target))  # fmt: skip
            bar.update(len(chunk))
    if not ids:
        raise file_error(dataset_dir, f"split {split!r} holds no examples")
    return EvaluationReport(
        dataset=dataset_dir,
        split=split,
        ids=tuple(ids),
        scores={method: np.array(values, np.float64) for method, values in scores.items()},
        data_range=data_range,
        baseline=description,
        samples=tuple(samples),
    )


def _check_arguments(
    baseline: str, batch_size: int, max_images: int | None, samples: int, scaling: float | None
) -> None:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be >= 1 or None, got {max_images}")
    if samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {samples}")
    if scaling is not None and not 0 < scaling <= 1:
        raise ValueError(f"fbp_frequency_scaling must be in (0, 1] or None, got {scaling}")


def _resolve_range(data_range: float | str | None, translator: Any) -> float | None:
    """The fixed data range, or `None` for the per-image ground-truth range."""
    if data_range is None:
        return None
    if data_range == "window":
        window = getattr(translator, "output_window", None)
        if window is None:
            raise ValueError("data_range='window' needs a translator with an output window")
        return float(window.range)
    if isinstance(data_range, str) or not (
        isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0
    ):
        raise ValueError(f"data_range must be > 0, 'window' or None, got {data_range!r}")
    return float(data_range)


def _check_match(key: str, what: str, image: np.ndarray, target: np.ndarray) -> None:
    if np.shape(image) != np.shape(target):
        raise file_error(key, f"{what} has shape {np.shape(image)}, the target {np.shape(target)}")
