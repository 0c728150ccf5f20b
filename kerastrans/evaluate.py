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

import csv
import dataclasses
import io
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kerastrans.atomic import atomic_path, atomic_write_text
from kerastrans.errors import file_error
from kerastrans.metrics import METRICS, bias, mae, psnr, rmse, ssim
from kerastrans.tiling import auto_tiled
from kerastrans.translate import DIRECTIONS, translate_in_batches

__all__ = ["BASELINES", "COLUMNS", "SOFT_TISSUE", "EvaluationReport", "Sample", "evaluate"]

logger = logging.getLogger(__name__)

#: Baselines `evaluate` can score next to the model.
BASELINES = ("auto", "input", "fbp", "none")
#: Target range (physical units) of the second bias column: soft tissue in HU.
SOFT_TISSUE = (-200.0, 200.0)
#: Columns of the scores: the metrics, the bias and the bias inside `SOFT_TISSUE`.
COLUMNS = (*METRICS, "bias", "bias_soft_tissue")
#: Metric headers of the markdown table.
_HEADERS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "rmse": "RMSE",
    "mae": "MAE",
    "bias": "bias",
    "bias_soft_tissue": f"bias in {SOFT_TISSUE[0]:g}..{SOFT_TISSUE[1]:g}",
}
#: Validation images used to tune the FBP cut-off.
_TUNE_IMAGES = 32


@dataclasses.dataclass(frozen=True)
class _Example:
    id: str
    input: np.ndarray
    target: np.ndarray
    #: 2.5D: the input stacked with its neighbours (what the model takes), else `None`.
    stack: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Sample:
    """One example kept for the figure (float32 ``H x W x C`` images)."""

    id: str
    input: np.ndarray
    baseline: np.ndarray | None
    output: np.ndarray
    target: np.ndarray


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Per-image and mean metrics of a model (and a baseline) on one split.

    Attributes:
        dataset: The dataset folder.
        split: The split evaluated.
        ids: Example ids, in dataset order.
        scores: ``{method: float64 array N x 6}``, columns in `COLUMNS`
            order (psnr, ssim, rmse, mae, bias, bias_soft_tissue);
            methods are ``"model"`` and the baseline's name.
        data_range: Fixed PSNR/SSIM data range, or `None` for ``max - min`` of
            each ground truth.
        baseline: How the baseline was made, or `None` without one.
        samples: The first examples, for `save_figure`.
    """

    dataset: Path
    split: str
    ids: tuple[str, ...]
    scores: dict[str, np.ndarray]
    data_range: float | None = None
    baseline: str | None = None
    samples: tuple[Sample, ...] = ()

    def means(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean over the images}}``."""
        return {
            method: dict(zip(COLUMNS, _column_means(values).tolist(), strict=True))
            for method, values in self.scores.items()
        }

    def describe_range(self) -> str:
        """The PSNR/SSIM data range in words."""
        if self.data_range is None:
            return "max - min of each ground truth (as dival)"
        return f"fixed {self.data_range:g}"

    def to_markdown(self) -> str:
        """Mean metrics as a markdown table, with the data range and image count."""
        lines = [
            "| method | " + " | ".join(_HEADERS[m] for m in COLUMNS) + " |",
            "| --- | " + " | ".join("---:" for _ in COLUMNS) + " |",
        ]
        for method, means in self.means().items():
            lines.append(f"| {method} | " + " | ".join(_number(means[m]) for m in COLUMNS) + " |")
        lines.append("")
        lines.append(
            f"{len(self.ids)} images of split '{self.split}' of {self.dataset}; RMSE, MAE and "
            "bias (mean of output - target; the last column over target pixels in that "
            f"range) in physical units; PSNR/SSIM data range: {self.describe_range()}"
        )
        if self.baseline:
            lines.append(f"baseline: {self.baseline}")
        constant = int(np.isnan(self.scores["model"][:, 0]).sum())
        if constant:
            lines.append(f"{constant} images have a constant ground truth: no PSNR/SSIM for them")
        return "\n".join(lines)

    def to_csv(self) -> str:
        """One row per image (``id`` then ``<method>_<metric>``) and a last ``mean`` row."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", *(f"{method}_{m}" for method in self.scores for m in COLUMNS)])
        table = np.concatenate(list(self.scores.values()), axis=1)
        for key, row in zip(self.ids, table, strict=True):
            writer.writerow([key, *(repr(float(value)) for value in row)])
        writer.writerow(["mean", *(repr(float(value)) for value in _column_means(table))])
        return buffer.getvalue()

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``metrics.csv``, ``report.md`` and ``samples.png`` into ``out_dir``.

        Each file is written atomically (files of an earlier report are
        replaced). Returns the paths by kind (``csv``, ``markdown``, ``figure``).
        """
        out_dir = Path(out_dir)
        paths = {
            "csv": out_dir / "metrics.csv",
            "markdown": out_dir / "report.md",
            "figure": out_dir / "samples.png",
        }
        atomic_write_text(paths["csv"], self.to_csv())
        atomic_write_text(paths["markdown"], self.to_markdown() + "\n")
        self.save_figure(paths["figure"])
        return paths

    def save_figure(self, path: str | os.PathLike) -> None:
        """Save the samples side by side: input or baseline, model, target, difference."""
        from matplotlib.figure import Figure

        samples = self.samples
        if not samples:
            raise ValueError("the report holds no samples (num_samples=0)")
        titles = (self.baseline.split(" ")[0] if self.baseline else "input", "model", "target")
        figure = Figure(figsize=(12, 3 * len(samples)), layout="constrained")
        axes = figure.subplots(len(samples), 4, squeeze=False)
        for row, sample in zip(axes, samples, strict=True):
            first = sample.baseline if sample.baseline is not None else sample.input
            target = sample.target[..., 0]
            low, high = float(target.min()), float(target.max())
            difference = sample.output[..., 0] - target
            limit = float(np.abs(difference).max()) or 1.0
            for ax, image, title in zip(row, (first, sample.output, sample.target), titles,
                                        strict=False):  # fmt: skip
                shown = ax.imshow(image[..., 0], cmap="gray", vmin=low, vmax=high)
                ax.set_title(f"{title}\n{sample.id}" if title == titles[0] else title, fontsize=8)
            figure.colorbar(shown, ax=row[2], shrink=0.8)
            shown = row[3].imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
            row[3].set_title("model - target", fontsize=8)
            figure.colorbar(shown, ax=row[3], shrink=0.8)
            for ax in row:
                ax.set_axis_off()
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)


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
    make_baseline, description = _baseline(
        baseline, dataset_dir, split, summary, fbp_frequency_scaling, impl
    )
    name = description.split(" ")[0] if description else None
    total = summary.splits[split].num_examples
    total = total if max_images is None else min(total, max_images)
    ids: list[str] = []
    scores: dict[str, list] = {"model": [], **({name: []} if name else {})}
    samples: list[Sample] = []
    with tqdm(total=total, desc=f"evaluating {split}", unit="image", disable=not progress) as bar:
        examples = _examples(dataset_dir, split, max_images, neighbours, swap=direction == "BtoA")
        for chunk in _chunks(examples, batch_size):
            items = (
                (index, example.input if example.stack is None else example.stack)
                for index, example in enumerate(chunk)
            )
            outputs = dict(translate_in_batches(translator, items, batch_size))
            baselines = make_baseline(chunk) if make_baseline else [None] * len(chunk)
            for index, example in enumerate(chunk):
                output = outputs[index]
                _check_match(example.id, "model output", output, example.target)
                ids.append(example.id)
                scores["model"].append(_scores(output, example.target, data_range))
                if name:
                    _check_match(example.id, name, baselines[index], example.target)
                    scores[name].append(_scores(baselines[index], example.target, data_range))
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


def _examples(
    dataset_dir: Path,
    split: str,
    max_images: int | None,
    neighbours: int = 0,
    *,
    swap: bool = False,
) -> Iterator[_Example]:
    """The examples of ``split`` in stored order, as NumPy arrays (``swap``: target first).

    With ``neighbours``, each input is also stacked with its neighbours by the
    training pipeline's `kerastrans.data.stack.stack_neighbours`.
    """
    import tensorflow_datasets as tfds

    from kerastrans.data.records import load_builder
    from kerastrans.data.shards import shard_errors
    from kerastrans.data.stack import stack_neighbours

    dataset = load_builder(dataset_dir).as_dataset(split=split, shuffle_files=False)
    first, second = ("target", "input") if swap else ("input", "target")
    if neighbours:
        dataset = dataset.map(lambda example: {**example, "stack": example[first]})
        dataset = stack_neighbours(dataset, neighbours, "stack", ("stack", "input", "target"))
    if max_images is not None:
        dataset = dataset.take(max_images)
    with shard_errors([dataset_dir]):
        for example in tfds.as_numpy(dataset):
            stack = example.get("stack") if neighbours else None
            yield _Example(example["id"].decode(), example[first], example[second], stack)


def _chunks(items: Iterable[_Example], size: int) -> Iterator[list[_Example]]:
    chunk: list[_Example] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _scores(image: np.ndarray, target: np.ndarray, data_range: float | None) -> list[float]:
    """`COLUMNS` of one image against its target (PSNR/SSIM NaN without a data range)."""
    return [
        psnr(image, target, data_range),
        ssim(image, target, data_range),
        rmse(image, target),
        mae(image, target),
        bias(image, target),
        bias(image, target, SOFT_TISSUE),
    ]


def _column_means(values: np.ndarray) -> np.ndarray:
    """Means over images (rows), leaving out NaN (PSNR/SSIM of a constant ground truth,
    soft-tissue bias of an image without soft tissue)."""
    counts = np.sum(~np.isnan(values), axis=0)
    return np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)


def _check_match(key: str, what: str, image: np.ndarray, target: np.ndarray) -> None:
    if np.shape(image) != np.shape(target):
        raise file_error(key, f"{what} has shape {np.shape(image)}, the target {np.shape(target)}")


def _baseline(
    baseline: str,
    dataset_dir: Path,
    split: str,
    summary: Any,
    frequency_scaling: float | None,
    impl: str | None,
) -> tuple[Callable[[list[_Example]], list[np.ndarray]] | None, str | None]:
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
) -> tuple[Callable[[list[_Example]], list[np.ndarray]], str]:
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
            tuning = list(_examples(dataset_dir, tuning_split, _TUNE_IMAGES))
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

    def reconstruct(chunk: list[_Example]) -> list[np.ndarray]:
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


def _number(value: float) -> str:
    """A metric for the table: 4 significant digits, ``inf`` for identical images."""
    return "inf" if math.isinf(value) else f"{value:.4g}"
