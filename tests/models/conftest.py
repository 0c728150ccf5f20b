"""Fixtures of the model tests."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def pair():
    """A fixed batch of two (source, target) 32 x 32 images in [-1, 1]."""
    rng = np.random.default_rng(0)
    source = rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    target = np.tanh(2.0 * source[:, ::-1]).astype("float32")
    return source, target
