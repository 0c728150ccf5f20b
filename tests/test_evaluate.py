"""Tests of `kerastrans.evaluate`: metrics that match a direct NumPy computation."""

import csv
import io

import keras
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from kerastrans.config import Window
from kerastrans.data.records import write_dataset
from kerastrans.errors import DataError
from kerastrans.evaluate import COLUMNS, evaluate
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import apply_batch, fbp_reconstruct, ray_transform
from kerastrans.tomo.phantoms import random_ellipses
from kerastrans.translate import Translator

WIDE = Window(-2000, 4000)  # no clipping of the test images


def halving():
    """In the window's [-1, 1] scale, halves every value."""
    return keras.Sequential([keras.Input((None, None, 1)), keras.layers.Rescaling(0.5)])


def direct_metrics(output, target, data_range=None):
    """PSNR, SSIM, RMSE, MAE, bias, soft-tissue bias written out with NumPy (and skimage)."""
    output, target = output[..., 0].astype(np.float64), target[..., 0].astype(np.float64)
    span = target.max() - target.min() if data_range is None else data_range
    mse = np.mean((output - target) ** 2)
    soft = (target >= -200) & (target <= 200)
    return [
        10 * np.log10(span**2 / mse),
        structural_similarity(output, target, data_range=span),
        np.sqrt(mse),
        np.mean(np.abs(output - target)),
        np.mean(output - target),
        np.mean((output - target)[soft]),
    ]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Denoising pairs in HU: 5 test images of 16 x 20, input = target + noise."""
    rng = np.random.default_rng(0)
    targets = rng.normal(0, 300, (5, 16, 20, 1)).astype(np.float32)
    inputs = targets + rng.normal(0, 50, targets.shape).astype(np.float32)
    path = tmp_path_factory.mktemp("evaluate") / "noisy"
    examples = [
        {"input": x, "target": t, "id": f"slice{i}"}
        for i, (x, t) in enumerate(zip(inputs, targets, strict=True))
    ]
    write_dataset(path, {"test": examples}, progress=False)
    return path, inputs, targets


@pytest.fixture(scope="module")
def report(noisy):
    path, _, _ = noisy
    return evaluate(Translator(halving(), WIDE, WIDE), path, batch_size=2, progress=False)


def test_model_and_input_metrics_match_numpy(noisy, report):
    _, inputs, targets = noisy
    outputs = inputs / 2  # the window is centred on 0: halving [-1, 1] halves the HU
    np.testing.assert_allclose(report.scores["model"][2], direct_metrics(outputs[2], targets[2]),
                               rtol=1e-4)  # fmt: skip
    expected_input = np.array([direct_metrics(x, t) for x, t in zip(inputs, targets, strict=True)])
    np.testing.assert_allclose(report.scores["input"], expected_input, rtol=1e-5)
    assert report.ids == tuple(f"slice{i}" for i in range(5))
    means = report.means()
    assert means["input"]["psnr"] == pytest.approx(expected_input[:, 0].mean())
    assert report.baseline == "input (the input as is)"


def test_fixed_data_range_is_used_for_psnr_and_ssim(noisy):
    path, inputs, targets = noisy
    identity = Translator(
        keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()]), WIDE, WIDE
    )
    fixed = evaluate(identity, path, data_range=1000.0, baseline="none", progress=False)
    assert list(fixed.scores) == ["model"]
    expected = direct_metrics(inputs[0], targets[0], data_range=1000)
    np.testing.assert_allclose(fixed.scores["model"][0], expected, rtol=1e-4)
    window = evaluate(identity, path, data_range="window", max_images=2, progress=False)
    assert window.data_range == 4000.0
    assert len(window.ids) == 2
    assert "fixed 4000" in window.to_markdown()


def test_markdown_csv_and_figure(report, tmp_path):
    table = report.to_markdown().splitlines()
    assert table[0] == "| method | PSNR (dB) | SSIM | RMSE | MAE | bias | bias in -200..200 |"
    model_row = table[2].split(" | ")
    assert model_row[0] == "| model"
    assert float(model_row[1]) == pytest.approx(report.means()["model"]["psnr"], abs=0.01)
    assert "max - min of each ground truth" in report.to_markdown()

    paths = report.save(tmp_path / "report")
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == [*report.ids, "mean"]
    assert float(rows[3]["model_rmse"]) == pytest.approx(report.scores["model"][3][2])
    assert float(rows[-1]["input_mae"]) == pytest.approx(report.means()["input"]["mae"])
    with Image.open(paths["figure"]) as figure:
        assert figure.size[0] > figure.size[1] / 2 > 0
    assert paths["markdown"].read_text(encoding="utf-8").startswith("| method |")


@pytest.fixture(scope="module")
def sinograms(tmp_path_factory):
    """Sinogram -> image pairs (16 x 16 phantoms, 12 angles) with the geometry in the metadata."""
    geometry = GeometrySpec((16, 16), num_angles=12).resolve()
    images = np.stack(list(random_ellipses(6, 0, shape=(16, 16)))).astype(np.float32)
    sinos = apply_batch(ray_transform(geometry, impl="astra_cpu"), images)
    examples = [
        {"input": s[..., None], "target": t[..., None], "id": f"phantom{i}"}
        for i, (s, t) in enumerate(zip(sinos, images, strict=True))
    ]
    path = tmp_path_factory.mktemp("evaluate") / "sinograms"
    splits = {"test": examples[:4], "validation": examples[4:]}
    write_dataset(path, splits, metadata={"geometry": geometry.to_dict()}, progress=False)
    return path, geometry, sinos[:4], images[:4]


def zeros(batch):
    return np.zeros((len(batch), 16, 16, 1), np.float32)


def test_fbp_baseline_for_sinograms_matches_direct_fbp(sinograms):
    path, geometry, sinos, images = sinograms
    report = evaluate(zeros, path, fbp_frequency_scaling=0.8, impl="astra_cpu", progress=False)
    assert list(report.scores) == ["model", "fbp"]
    assert report.baseline.startswith("fbp (Hann filter, frequency scaling 0.8")
    recos = fbp_reconstruct(sinos, geometry, frequency_scaling=0.8, impl="astra_cpu")
    expected = [
        direct_metrics(r[..., None], t[..., None]) for r, t in zip(recos, images, strict=True)
    ]
    np.testing.assert_allclose(report.scores["fbp"], expected, rtol=1e-4)
    tuned = evaluate(zeros, path, baseline="fbp", impl="astra_cpu", progress=False, num_samples=0)
    assert "tuned on 2 validation images" in tuned.baseline


def test_bad_datasets_and_arguments_are_refused(noisy, sinograms):
    path, _, _ = noisy
    with pytest.raises(DataError, match=r"no split 'validation' \(splits: test\)"):
        evaluate(zeros, path, "validation", progress=False)
    with pytest.raises(DataError, match="has no 'geometry' entry"):
        evaluate(zeros, path, baseline="fbp", progress=False)
    with pytest.raises(
        DataError, match=r"slice0: model output has shape \(16, 16, 1\), the target"
    ):
        evaluate(zeros, path, baseline="none", progress=False)
    with pytest.raises(ValueError, match="baseline must be one of"):
        evaluate(zeros, path, baseline="tv")
    with pytest.raises(ValueError, match="data_range must be > 0, 'window' or None, got -1"):
        evaluate(zeros, path, data_range=-1)
    sinogram_path, _, _, _ = sinograms
    with pytest.raises(DataError, match="input has shape"):
        evaluate(zeros, sinogram_path, baseline="input", progress=False)


def test_constant_ground_truth_has_no_psnr_and_is_left_out_of_the_means(tmp_path):
    air = np.full((8, 8, 1), -1000, np.float32)
    body = np.random.default_rng(2).normal(0, 100, (8, 8, 1)).astype(np.float32)
    examples = [
        {"input": air + 10, "target": air, "id": "air"},
        {"input": body + 10, "target": body, "id": "body"},
    ]
    write_dataset(tmp_path / "ds", {"test": examples}, progress=False)
    report = evaluate(lambda batch: batch, tmp_path / "ds", baseline="none", progress=False)
    assert np.isnan(report.scores["model"][0, :2]).all()
    assert report.scores["model"][0, 2:5].tolist() == [10.0, 10.0, 10.0]  # RMSE, MAE, bias
    means = report.means()["model"]
    assert means["psnr"] == pytest.approx(report.scores["model"][1, 0])
    assert means["rmse"] == pytest.approx(10.0)
    assert "1 images have a constant ground truth" in report.to_markdown()


def test_btoa_translates_the_targets_and_scores_them_against_the_inputs(noisy):
    path, inputs, targets = noisy
    translator = Translator(halving(), WIDE, WIDE)
    report = evaluate(translator, path, direction="BtoA", progress=False)
    outputs = translator(targets).numpy()
    expected = [direct_metrics(o, x) for o, x in zip(outputs, inputs, strict=True)]
    np.testing.assert_allclose(report.scores["model"], expected, rtol=1e-4)
    baseline = [direct_metrics(t, x) for t, x in zip(targets, inputs, strict=True)]
    np.testing.assert_allclose(report.scores["input"], baseline, rtol=1e-4)
    with pytest.raises(ValueError, match="baseline 'fbp' reconstructs the inputs"):
        evaluate(translator, path, direction="BtoA", baseline="fbp", progress=False)


def test_bias_overall_and_in_soft_tissue_per_image_and_as_mean(tmp_path):
    # four 2-row bands of 8 x 8 images (SSIM needs 7 x 7): air, two soft tissues, bone
    target = np.repeat([-1000, 0, 100, 1000], 16).reshape(8, 8, 1).astype(np.float32)
    error = np.repeat([5, 3, -1, 21], 16).reshape(8, 8, 1).astype(np.float32)
    bone = np.full((8, 8, 1), 1000, np.float32) + np.arange(8, dtype=np.float32)[:, None, None]
    examples = [
        {"input": target + error, "target": target, "id": "mixed"},
        {"input": bone - 4, "target": bone, "id": "bone"},  # no soft tissue
    ]
    write_dataset(tmp_path / "ds", {"test": examples}, progress=False)
    report = evaluate(lambda batch: batch, tmp_path / "ds", baseline="none", progress=False)
    bias, soft = COLUMNS.index("bias"), COLUMNS.index("bias_soft_tissue")
    assert report.scores["model"][0, [bias, soft]].tolist() == [7.0, 1.0]  # (5+3-1+21)/4, (3-1)/2
    assert report.scores["model"][1, bias] == -4.0 and np.isnan(report.scores["model"][1, soft])
    means = report.means()["model"]
    assert (means["bias"], means["bias_soft_tissue"]) == (1.5, 1.0)  # the NaN is left out
    table = report.to_markdown()
    assert "| MAE | bias | bias in -200..200 |" in table
    assert table.splitlines()[2].endswith("| 1.5 | 1 |")
    csv_lines = report.to_csv().splitlines()
    assert csv_lines[0].endswith("model_bias,model_bias_soft_tissue")
    assert csv_lines[1].endswith(",7.0,1.0") and csv_lines[-1].endswith(",1.5,1.0")
