"""Helpers shared by the data tests (a unique module name: test folders have no __init__)."""

from __future__ import annotations

import numpy as np


def noise_image(seed: int, shape=(16, 16, 1), scale: float = 300.0) -> np.ndarray:
    """A float32 image of Gaussian noise in HU-like units, reproducible from ``seed``."""
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(np.float32)
