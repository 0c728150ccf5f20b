"""Tests of the dival "ellipses" protocol and of the tuned FBP baseline."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from kerastrans.metrics import evaluate
from kerastrans.tomo.baseline import evaluate_fbp, tune_fbp
from kerastrans.tomo.ellipses import EllipsesProtocol
from kerastrans.tomo.geometry import geometry_from_metadata
from kerastrans.tomo.simulate import SinogramSimulator

PROTOCOL = EllipsesProtocol()
DEFINITION = Path(__file__).parents[2] / "datasets" / "ellipses" / "protocol.json"


def stack(records, key):
    return np.stack([record[key] for record in records])


def test_protocol_geometry_is_dival_parallel_beam():
    geometry = PROTOCOL.geometry()
    assert geometry.image_shape == (128, 128)
    assert geometry.sinogram_shape == (30, 183)
    assert geometry.physical_extent == (128.0, 128.0)
    assert geometry_from_metadata(PROTOCOL.metadata()) == geometry
    assert PROTOCOL.metadata()["simulation"]["simulation_shape"] == [400, 400]


def test_protocol_matches_its_declared_definition():
    definition = json.loads(DEFINITION.read_text(encoding="utf-8"))
    assert dataclasses.asdict(PROTOCOL) == definition["protocol"]
    assert PROTOCOL.geometry().to_dict() == definition["geometry"]


def test_protocol_examples_are_reproducible_prefixes():
    two = list(PROTOCOL.examples("validation", 2))
    three = list(PROTOCOL.examples("validation", 3, threads=1))
    np.testing.assert_array_equal(stack(two, "input"), stack(three[:2], "input"))
    assert [r["id"] for r in three] == ["validation-00000", "validation-00001", "validation-00002"]
    assert two[0]["input"].shape == (30, 183, 1)


def test_protocol_noise_is_two_and_a_half_percent():
    record = next(PROTOCOL.examples("test", 1))
    # Noise-free data of the same phantom, simulated on the 400 x 400 grid.
    exact = SinogramSimulator(PROTOCOL.geometry(), (400, 400))(record["target"][..., 0])
    noise = record["input"][..., 0] - exact
    assert noise.std() == pytest.approx(0.025 * np.mean(np.abs(exact)), rel=0.05)


def test_protocol_rejects_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        next(PROTOCOL.examples("training", 1))


def test_tune_fbp_picks_the_best_cutoff_and_evaluate_uses_it():
    records = list(PROTOCOL.examples("validation", 6))
    sinograms, truths = stack(records, "input"), stack(records, "target")
    tuning = tune_fbp(sinograms, truths, PROTOCOL.geometry(), frequency_scalings=[0.3, 0.7, 1.0])
    assert tuning.frequency_scaling == max(tuning.scores, key=tuning.scores.get)
    assert tuning.frequency_scaling < 1.0  # noisy data: some smoothing pays
    metrics, recos = evaluate_fbp(
        sinograms, truths, PROTOCOL.geometry(), frequency_scaling=tuning.frequency_scaling
    )
    assert metrics["psnr"] == pytest.approx(tuning.psnr)
    assert metrics == evaluate(recos, truths[..., 0])
    assert recos.shape == (6, 128, 128)
