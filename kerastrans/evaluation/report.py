"""The report of `kerastrans.evaluate.evaluate`: metrics per image and mean, as text and figure."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np

from kerastrans.atomic import atomic_path, atomic_write_text
from kerastrans.metrics import METRICS, bias, mae, psnr, rmse, ssim

__all__ = ["COLUMNS", "SOFT_TISSUE", "EvaluationReport", "Sample", "column_means", "image_scores"]

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
            method: dict(zip(COLUMNS, column_means(values).tolist(), strict=True))
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
        writer.writerow(["mean", *(repr(float(value)) for value in column_means(table))])
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


def image_scores(image: np.ndarray, target: np.ndarray, data_range: float | None) -> list[float]:
    """`COLUMNS` of one image against its target (PSNR/SSIM NaN without a data range)."""
    return [
        psnr(image, target, data_range),
        ssim(image, target, data_range),
        rmse(image, target),
        mae(image, target),
        bias(image, target),
        bias(image, target, SOFT_TISSUE),
    ]


def column_means(values: np.ndarray) -> np.ndarray:
    """Means over images (rows), leaving out NaN (PSNR/SSIM of a constant ground truth,
    soft-tissue bias of an image without soft tissue)."""
    counts = np.sum(~np.isnan(values), axis=0)
    return np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)


def _number(value: float) -> str:
    """A metric for the table: 4 significant digits, ``inf`` for identical images."""
    return "inf" if math.isinf(value) else f"{value:.4g}"
