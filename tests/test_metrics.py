"""Tests of the metrics: dival's PSNR/SSIM conventions, RMSE, MAE, averaging."""

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from kerastrans.metrics import evaluate, image_metrics, mae, psnr, rmse, ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    truth = rng.random((32, 32)).astype(np.float32) * 3.0 - 1.0
    return truth + 0.1 * rng.standard_normal((32, 32)).astype(np.float32), truth


def test_psnr_uses_ground_truth_max_minus_min(pair):
    recon, truth = pair
    mse = np.mean((recon - truth) ** 2)
    data_range = truth.max() - truth.min()
    assert psnr(recon, truth) == pytest.approx(20 * np.log10(data_range) - 10 * np.log10(mse))
    assert psnr(recon, truth, data_range=1.0) == pytest.approx(-10 * np.log10(mse))


def test_psnr_of_shifted_ground_truth_is_unchanged(pair):
    recon, truth = pair
    assert psnr(recon + 1000, truth + 1000) == pytest.approx(psnr(recon, truth), rel=1e-4)


def test_psnr_of_identical_images_is_infinite(pair):
    assert psnr(pair[1], pair[1]) == math.inf


def test_ssim_is_skimage_with_ground_truth_range(pair):
    recon, truth = pair
    expected = structural_similarity(recon, truth, data_range=float(truth.max() - truth.min()))
    assert ssim(recon, truth) == pytest.approx(expected, rel=1e-12)
    assert ssim(recon[..., None], truth[..., None]) == pytest.approx(expected, rel=1e-12)
    assert ssim(truth, truth) == pytest.approx(1.0)


def test_rmse_and_mae_in_image_units():
    truth = np.zeros((2, 2))
    recon = np.array([[3.0, -3.0], [0.0, 0.0]])
    assert rmse(recon, truth) == pytest.approx(math.sqrt(4.5))
    assert mae(recon, truth) == pytest.approx(1.5)


def test_evaluate_averages_per_image_values(pair):
    recon, truth = pair
    recons, truths = np.stack([recon, truth + 0.5]), np.stack([truth, truth])
    summary = evaluate(recons, truths)
    first, second = image_metrics(recon, truth), image_metrics(truth + 0.5, truth)
    assert summary["n"] == 2
    for name in ("psnr", "ssim", "rmse", "mae"):
        assert summary[name] == pytest.approx((first[name] + second[name]) / 2)


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape, got \(4, 4\) and \(4, 5\)"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="same length, got 1 and 0"):
        evaluate(np.zeros((1, 4, 4)), np.zeros((0, 4, 4)))


def test_psnr_and_ssim_are_nan_for_a_constant_ground_truth():
    air = np.full((16, 16), -1000.0)
    noisy = air + np.random.default_rng(0).normal(0, 5, air.shape)
    assert math.isnan(psnr(noisy, air))
    assert math.isnan(ssim(noisy, air))
    assert math.isfinite(psnr(noisy, air, data_range=2000.0))
