"""Image-quality metrics in physical units: PSNR, SSIM, RMSE, MAE, bias (NumPy).

PSNR and SSIM follow the dival library (``dival/measure.py``) exactly, so our
numbers compare with published reconstruction benchmarks: the data range is
``max - min`` of each ground-truth image, PSNR is ``20 log10(range) - 10
log10(MSE)`` and SSIM is ``skimage.metrics.structural_similarity`` with that
data range and skimage's defaults (7 x 7 uniform window).

All functions take one image (``H x W`` or ``H x W x C``) and return a float in
the images' units (e.g. HU for RMSE/MAE); `evaluate` averages them over a stack.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["METRICS", "bias", "evaluate", "image_metrics", "mae", "psnr", "rmse", "ssim"]

#: Metric names, in the order `evaluate` reports them.
METRICS = ("psnr", "ssim", "rmse", "mae")


def _pair(reconstruction: np.ndarray, ground_truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both images as float arrays after checking that their shapes match.

    Float input keeps its dtype (as in dival, float32 images are compared in
    float32); integer input becomes float64.
    """
    reconstruction, ground_truth = _as_float(reconstruction), _as_float(ground_truth)
    if reconstruction.shape != ground_truth.shape:
        raise ValueError(
            "reconstruction and ground_truth need the same shape, got "
            f"{reconstruction.shape} and {ground_truth.shape}"
        )
    return reconstruction, ground_truth


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image if np.issubdtype(image.dtype, np.floating) else image.astype(np.float64)


def _data_range(ground_truth: np.ndarray, data_range: float | None) -> float:
    return float(np.max(ground_truth) - np.min(ground_truth)) if data_range is None else data_range


def rmse(reconstruction: np.ndarray, ground_truth: np.ndarray) -> float:
    """Root-mean-square error, in the images' units."""
    reconstruction, ground_truth = _pair(reconstruction, ground_truth)
    return float(np.sqrt(np.mean((reconstruction - ground_truth) ** 2)))


def mae(reconstruction: np.ndarray, ground_truth: np.ndarray) -> float:
    """Mean absolute error, in the images' units."""
    reconstruction, ground_truth = _pair(reconstruction, ground_truth)
    return float(np.mean(np.abs(reconstruction - ground_truth)))


def bias(
    reconstruction: np.ndarray,
    ground_truth: np.ndarray,
    target_range: tuple[float, float] | None = None,
) -> float:
    """Mean error ``reconstruction - ground_truth``, in the images' units (e.g. HU).

    A CT reader judges HU: a soft-tissue shift of a few HU matters where a
    PSNR figure hides it, and a positive bias means the image is too bright.

    Args:
        reconstruction: The image to judge.
        ground_truth: The reference image, same shape.
        target_range: ``(low, high)``: average only over the pixels whose
            ground truth lies in ``[low, high]`` (e.g. ``(-200, 200)`` HU,
            soft tissue); `None` for all pixels.

    Returns:
        The mean error; ``nan`` when no ground-truth pixel is in ``target_range``.

    >>> bias(np.array([[10.0, 0.0, 500.0]]), np.array([[0.0, 0.0, 1000.0]]), (-200, 200))
    5.0
    """
    reconstruction, ground_truth = _pair(reconstruction, ground_truth)
    error = reconstruction - ground_truth
    if target_range is not None:
        low, high = target_range
        error = error[(ground_truth >= low) & (ground_truth <= high)]
        if error.size == 0:
            return math.nan
    return float(np.mean(error, dtype=np.float64))


def psnr(
    reconstruction: np.ndarray, ground_truth: np.ndarray, data_range: float | None = None
) -> float:
    """Peak signal-to-noise ratio in dB, as dival computes it.

    Args:
        reconstruction: The image to judge.
        ground_truth: The reference image, same shape.
        data_range: Peak value range; default ``max - min`` of ``ground_truth``.

    Returns:
        ``20 log10(data_range) - 10 log10(MSE)``; ``inf`` for identical images;
        ``nan`` when the data range is 0 (a constant ground truth, e.g. a
        slice of air, has no peak to compare with).

    >>> round(psnr(np.array([[0.0, 0.5]]), np.array([[0.0, 1.0]])), 4)
    9.0309
    """
    reconstruction, ground_truth = _pair(reconstruction, ground_truth)
    peak = _data_range(ground_truth, data_range)
    if peak <= 0.0:
        return math.nan
    mse = float(np.mean((reconstruction - ground_truth) ** 2))
    if mse == 0.0:
        return math.inf
    return 20 * math.log10(peak) - 10 * math.log10(mse)


def ssim(
    reconstruction: np.ndarray, ground_truth: np.ndarray, data_range: float | None = None
) -> float:
    """Structural similarity, as dival computes it.

    ``skimage.metrics.structural_similarity`` with skimage's defaults (7 x 7
    uniform window, sample covariance) and ``data_range`` defaulting to
    ``max - min`` of ``ground_truth``. ``H x W x C`` images are compared per
    channel and averaged (a trailing single channel is dropped first).

    Reference: Wang et al., "Image quality assessment: from error visibility
    to structural similarity", IEEE TIP 13(4), 2004.

    Returns ``nan`` when the data range is 0 (constant ground truth).
    """
    from skimage.metrics import structural_similarity

    reconstruction, ground_truth = _pair(reconstruction, ground_truth)
    if reconstruction.ndim == 3 and reconstruction.shape[-1] == 1:
        reconstruction, ground_truth = reconstruction[..., 0], ground_truth[..., 0]
    channel_axis = -1 if reconstruction.ndim == 3 else None
    peak = _data_range(ground_truth, data_range)
    if peak <= 0.0:  # skimage divides by it: a constant ground truth has no SSIM
        return math.nan
    return float(
        structural_similarity(
            reconstruction,
            ground_truth,
            data_range=peak,
            channel_axis=channel_axis,
        )
    )


def image_metrics(reconstruction: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """Return all of `METRICS` for one image pair."""
    return {
        "psnr": psnr(reconstruction, ground_truth),
        "ssim": ssim(reconstruction, ground_truth),
        "rmse": rmse(reconstruction, ground_truth),
        "mae": mae(reconstruction, ground_truth),
    }


def evaluate(reconstructions: np.ndarray, ground_truths: np.ndarray) -> dict[str, float]:
    """Average `METRICS` over a stack of images, as dival averages per-image values.

    Args:
        reconstructions: Stack ``(N, H, W[, C])``.
        ground_truths: Stack of the same shape.

    Returns:
        ``{"psnr", "ssim", "rmse", "mae"}`` means over the ``N`` images, and
        ``"n"``: the number of images.

    Raises:
        ValueError: On mismatched or empty stacks.
    """
    if len(reconstructions) != len(ground_truths) or len(ground_truths) == 0:
        raise ValueError(
            "evaluate needs two non-empty stacks of the same length, got "
            f"{len(reconstructions)} and {len(ground_truths)}"
        )
    values = [image_metrics(r, t) for r, t in zip(reconstructions, ground_truths, strict=True)]
    summary = {name: float(np.mean([v[name] for v in values])) for name in METRICS}
    summary["n"] = len(values)
    return summary
