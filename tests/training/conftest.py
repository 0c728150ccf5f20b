"""Tiny datasets and configs for the training tests (16 x 16 images, networks of a few kB)."""

from __future__ import annotations

import numpy as np
import pytest

from kerastrans.config import Config, DataConfig, ModelConfig, TrainingConfig
from kerastrans.data import write_dataset

SIZE = 16


def noisy_pair(seed: int, size: int = SIZE) -> dict:
    """A clean image in HU-like units and a noisy copy as input."""
    rng = np.random.default_rng(seed)
    target = rng.normal(-300.0, 300.0, (size, size, 1)).astype(np.float32)
    noise = rng.normal(0.0, 50.0, target.shape).astype(np.float32)
    return {"input": target + noise, "target": target, "id": f"pair{seed}"}


@pytest.fixture(scope="session")
def paired_dataset(tmp_path_factory):
    """Paired dataset: 8 training pairs, 2 test pairs, 16 x 16 x 1."""
    folder = tmp_path_factory.mktemp("data") / "paired"
    splits = {
        "train": [noisy_pair(i) for i in range(8)],
        "test": [noisy_pair(100 + i) for i in range(2)],
    }
    write_dataset(folder, splits, progress=False)
    return folder


@pytest.fixture(scope="session")
def unpaired_dataset(tmp_path_factory):
    """Unpaired dataset: domains of 4 and 6 images, 2 test images each."""
    folder = tmp_path_factory.mktemp("data") / "unpaired"
    images = {
        split: [{"image": noisy_pair(seed + i)["target"], "id": f"{split}{i}"} for i in range(n)]
        for split, n, seed in (
            ("trainA", 4, 0),
            ("trainB", 6, 50),
            ("testA", 2, 200),
            ("testB", 2, 300),
        )
    }
    write_dataset(folder, images, progress=False)
    return folder


@pytest.fixture
def tiny_config():
    """Factory: a pix2pix run of 2 epochs x 4 steps on a dataset, networks of a few kB."""
    return _tiny_config


def _tiny_config(dataset, **training) -> Config:
    return Config(
        data=DataConfig(dataset=str(dataset), batch_size=2, seed=3),
        model=ModelConfig(
            generator={"depth": 2, "base_channels": 4},
            discriminator={"base_channels": 4, "depth": 1},
        ),
        training=TrainingConfig(
            **{"epochs": 2, "checkpoint_every": 1, "grid_images": 2, **training}
        ),
    )
