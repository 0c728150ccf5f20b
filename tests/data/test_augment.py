"""Paired augmentation: one transform for input and target, exact geometry, noise on input."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kerastrans.config import AugmentConfig
from kerastrans.data.augment import FILL_VALUE, affine_transform, augment, random_crop

EVERYTHING = AugmentConfig(
    flip_left_right=True, flip_up_down=True, rotation=30, scale=0.2, translation=0.1
)


def scaled_image(shape=(32, 32, 1), seed=0):
    """A smooth-ish image in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-0.9, 0.9, shape).astype(np.float32)


def seed(value):
    return tf.constant([value, 7], tf.int64)


@pytest.mark.parametrize("value", range(4))
def test_identical_images_stay_identical(value):
    image = scaled_image()
    out_input, out_target = augment((image, image.copy()), seed(value), EVERYTHING, crop=(20, 16))
    assert out_input.shape == (20, 16, 1)
    np.testing.assert_array_equal(out_input.numpy(), out_target.numpy())
    assert not np.array_equal(out_input.numpy(), image[:20, :16])


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_target_stays_the_same_function_of_the_input(interpolation):
    # Resampling is linear, so an affine intensity map commutes with it (no constant fill).
    config = AugmentConfig(
        flip_left_right=True,
        rotation=40,
        scale=0.3,
        translation=0.2,
        interpolation=interpolation,
        fill_mode="nearest",
    )
    image = scaled_image(seed=1)
    for value in range(3):
        out_input, out_target = augment((image, 0.5 * image + 0.25), seed(value), config)
        np.testing.assert_allclose(out_target.numpy(), 0.5 * out_input.numpy() + 0.25, atol=1e-6)


def test_super_resolution_pair_is_cropped_at_corresponding_regions():
    low = scaled_image((16, 12, 1), seed=2)
    high = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)  # 2x larger target
    config = AugmentConfig(flip_left_right=True, flip_up_down=True)
    crops = set()
    for value in range(6):
        out_low, out_high = augment((low, high), seed(value), config, crop=(8, 6))
        assert out_low.shape == (8, 6, 1) and out_high.shape == (16, 12, 1)
        expected = np.repeat(np.repeat(out_low.numpy(), 2, axis=0), 2, axis=1)
        np.testing.assert_array_equal(out_high.numpy(), expected)
        crops.add(out_low.numpy().tobytes())
    assert len(crops) > 1


def test_noise_goes_to_the_input_only_with_the_given_std():
    image = np.zeros((64, 64, 1), np.float32)
    noisy, target = augment((image, image), seed(3), AugmentConfig(), noise_std=0.05)
    np.testing.assert_array_equal(target.numpy(), image)
    assert np.std(noisy.numpy()) == pytest.approx(0.05, rel=0.05)


def test_same_seed_gives_the_same_transform_and_other_seeds_differ():
    image = scaled_image(seed=4)
    first = augment((image,), seed(5), EVERYTHING, crop=(16, 16))[0].numpy()
    again = augment((image,), seed(5), EVERYTHING, crop=(16, 16))[0].numpy()
    other = augment((image,), seed(6), EVERYTHING, crop=(16, 16))[0].numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_quarter_turn_is_a_counter_clockwise_rot90():
    image = scaled_image((9, 9, 1), seed=5)
    turned = affine_transform(image, tf.constant(math.pi / 2), tf.constant(1.0), tf.zeros([2]))
    np.testing.assert_allclose(turned.numpy(), np.rot90(image), atol=1e-5)


def test_shift_moves_content_and_fills_with_the_window_low_end():
    image = scaled_image((8, 8, 1), seed=6)
    shifted = affine_transform(image, tf.constant(0.0), tf.constant(1.0), tf.constant([0, 0.25]))
    np.testing.assert_allclose(shifted.numpy()[:, 2:], image[:, :-2], atol=1e-6)
    np.testing.assert_array_equal(shifted.numpy()[:, :2], FILL_VALUE)


def test_zoom_two_samples_at_half_the_distance_from_the_centre():
    image = np.arange(16, dtype=np.float32).reshape(4, 4, 1) / 16
    zoomed = affine_transform(image, tf.constant(0.0), tf.constant(2.0), tf.zeros([2]))
    # Output pixel (0, 0) samples the input at (0.75, 0.75): centre 1.5 + (0 - 1.5) / 2.
    weights = np.outer([0.25, 0.75], [0.25, 0.75])
    expected = np.sum(weights * image[0:2, 0:2, 0])
    np.testing.assert_allclose(zoomed.numpy()[0, 0, 0], expected, atol=1e-6)
    np.testing.assert_allclose(zoomed.numpy()[1:3, 1:3].mean(), image[1:3, 1:3].mean(), atol=1e-6)


def test_crop_larger_than_the_image_pads_with_the_low_end():
    image = scaled_image((6, 5, 1), seed=7)
    (crop,) = random_crop([image], seed(8), (8, 8))
    assert crop.shape == (8, 8, 1)
    np.testing.assert_array_equal(crop.numpy()[:6, :5], image)
    assert np.all(crop.numpy()[6:] == FILL_VALUE) and np.all(crop.numpy()[:, 5:] == FILL_VALUE)
