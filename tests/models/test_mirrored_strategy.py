"""MirroredStrategy on two logical CPUs gives the losses and updates of one device."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HELPER = Path(__file__).with_name("distributed_step.py")


@pytest.fixture(scope="module")
def results() -> dict:
    # Logical devices must be set before TensorFlow starts: run in a fresh process.
    completed = subprocess.run(
        [sys.executable, str(HELPER)], capture_output=True, text=True, timeout=600, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_two_replicas_report_the_losses_and_make_the_update_of_one_device(results, model):
    single, mirrored = results[model]["single"], results[model]["mirrored"]
    assert results[model]["replicas"] == 2
    assert mirrored["logs"].keys() == single["logs"].keys()
    for key, value in single["logs"].items():
        assert mirrored["logs"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    # Gradients are summed over replicas of losses scaled to the global batch.
    assert mirrored["weights"] == pytest.approx(single["weights"], rel=1e-6)
