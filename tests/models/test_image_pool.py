"""Tests of the pool of past generated images."""

import numpy as np
import pytest
from keras import ops

from kerastrans.models import ImagePool


def batch(start: int, size: int = 2) -> np.ndarray:
    """Images whose every pixel holds their serial number."""
    return np.arange(start, start + size, dtype="float32")[:, None, None, None] * np.ones(
        (1, 4, 4, 1), "float32"
    )


def labels(images) -> list[float]:
    return [float(v) for v in ops.convert_to_numpy(images)[:, 0, 0, 0]]


def test_pool_returns_new_images_while_filling_then_past_or_new_ones():
    pool = ImagePool(4, (4, 4, 1), seed=0)
    assert labels(pool(batch(0))) == [0.0, 1.0]
    assert labels(pool(batch(2))) == [2.0, 3.0]
    assert int(pool.count.numpy()) == 4
    seen, returned = set(range(4)), []
    for step in range(2, 12):
        new = batch(2 * step)
        out = labels(pool(new))
        for position, label in enumerate(out):
            # Each image is either the incoming one or one seen before.
            assert label == 2 * step + position or label in seen
        seen.update(labels(new))
        returned += out
    swapped = [label for label in returned if label < 4]
    assert swapped, "a full pool should return some stored images"
    assert int(pool.count.numpy()) == 4


def test_pool_needs_a_known_image_shape_and_round_trips_its_config():
    with pytest.raises(ValueError, match=r"image_shape must be .* got \(None, None, 1\)"):
        ImagePool(4, (None, None, 1))
    with pytest.raises(ValueError, match="size must be an integer >= 1, got 0"):
        ImagePool(0, (4, 4, 1))
    pool = ImagePool(3, (4, 4, 1), seed=2)
    assert ImagePool.from_config(pool.get_config()).get_config() == pool.get_config()
