"""The FBP baseline: tune the filter cut-off on validation data, evaluate on test data.

FBP with a Hann filter is the reference every learned reconstruction is
compared with. Its one free parameter, the relative frequency cut-off
(``frequency_scaling``), trades resolution for noise; it is chosen by a grid
search that maximises the mean PSNR on the *validation* split, never on test
data. Metrics are computed exactly as dival computes them (`kerastrans.metrics`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kerastrans.metrics import evaluate, psnr
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import apply_batch, fbp, fbp_reconstruct, ray_transform

__all__ = ["FREQUENCY_GRID", "FbpTuning", "evaluate_fbp", "tune_fbp"]

#: Frequency scalings tried by `tune_fbp`: 0.20, 0.22, ..., 1.00.
FREQUENCY_GRID = tuple(round(0.2 + 0.02 * i, 2) for i in range(41))


@dataclasses.dataclass(frozen=True)
class FbpTuning:
    """Result of `tune_fbp`.

    Attributes:
        filter_type: The FBP filter.
        frequency_scaling: The cut-off with the best mean validation PSNR.
        psnr: That PSNR in dB.
        scores: Mean validation PSNR (dB) of every cut-off tried.
        n: Number of validation images.
    """

    filter_type: str
    frequency_scaling: float
    psnr: float
    scores: dict[float, float]
    n: int


def tune_fbp(
    sinograms: np.ndarray,
    ground_truths: np.ndarray,
    geometry: GeometrySpec,
    *,
    filter_type: str = "Hann",
    frequency_scalings: Sequence[float] = FREQUENCY_GRID,
    impl: str | None = None,
    threads: int | None = None,
) -> FbpTuning:
    """Grid-search the FBP cut-off that maximises the mean PSNR on validation data.

    Args:
        sinograms: Validation sinograms ``(N, num_angles, det_shape[, 1])``.
        ground_truths: Their images ``(N, rows, columns[, 1])``.
        geometry: The scan geometry.
        filter_type: FBP filter, default ``"Hann"``.
        frequency_scalings: Cut-offs to try, each in ``(0, 1]``.
        impl: ASTRA back-end.
        threads: Worker threads.

    Returns:
        The best cut-off, its PSNR and every score.
    """
    sinograms, ground_truths = _stacks(sinograms, ground_truths)
    if len(frequency_scalings) == 0:
        raise ValueError("frequency_scalings must name at least one cut-off, got none")
    forward = ray_transform(geometry, impl=impl)
    scores = {}
    for scaling in frequency_scalings:
        operator = fbp(forward, filter_type=filter_type, frequency_scaling=scaling)
        recos = apply_batch(operator, sinograms, threads=threads)
        scores[float(scaling)] = float(
            np.mean([psnr(r, t) for r, t in zip(recos, ground_truths, strict=True)])
        )
    best = max(scores, key=scores.get)
    return FbpTuning(filter_type, best, scores[best], scores, len(sinograms))


def evaluate_fbp(
    sinograms: np.ndarray,
    ground_truths: np.ndarray,
    geometry: GeometrySpec,
    *,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    impl: str | None = None,
    threads: int | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Reconstruct test sinograms by FBP and score them as dival does.

    Args:
        sinograms: Test sinograms ``(N, num_angles, det_shape[, 1])``.
        ground_truths: Their images ``(N, rows, columns[, 1])``.
        geometry: The scan geometry.
        filter_type: FBP filter.
        frequency_scaling: Cut-off, chosen beforehand on validation data.
        impl: ASTRA back-end.
        threads: Worker threads.

    Returns:
        ``(metrics, reconstructions)``: mean PSNR, SSIM, RMSE, MAE and ``n``
        (`kerastrans.metrics.evaluate`), and the float32 images ``(N, rows,
        columns)``.
    """
    sinograms, ground_truths = _stacks(sinograms, ground_truths)
    recos = fbp_reconstruct(
        sinograms,
        geometry,
        filter_type=filter_type,
        frequency_scaling=frequency_scaling,
        impl=impl,
        threads=threads,
    )
    return evaluate(recos, ground_truths), recos


def _stacks(sinograms: np.ndarray, ground_truths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop a trailing channel axis of size 1 from both stacks."""

    def squeeze(stack: np.ndarray) -> np.ndarray:
        stack = np.asarray(stack, dtype=np.float32)
        return stack[..., 0] if stack.ndim == 4 and stack.shape[-1] == 1 else stack

    return squeeze(sinograms), squeeze(ground_truths)
