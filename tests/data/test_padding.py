"""Padding to a size multiple and cropping back exactly."""

import numpy as np
import tensorflow as tf
from data_helpers import noise_image

from kerastrans.data.padding import crop_to_size, pad_to_multiple


def test_pad_to_multiple_records_the_size_and_crops_back_exactly():
    image = tf.constant(noise_image(0, (13, 17, 2), scale=0.5))
    padded, size = pad_to_multiple(image, 8)
    assert padded.shape == (16, 24, 2) and size.numpy().tolist() == [13, 17]
    np.testing.assert_array_equal(padded.numpy()[13:], -1.0)
    np.testing.assert_array_equal(crop_to_size(padded, size).numpy(), image.numpy())
    batch, _ = pad_to_multiple(tf.stack([image, image]), 16)
    assert batch.shape == (2, 16, 32, 2)
