"""A buffer of past generated images for the discriminator (Shrivastava et al. 2017).

CycleGAN (Zhu et al. 2017, section 4) updates each discriminator with a
history of generated images rather than only the latest ones, which damps
oscillation between generator and discriminator.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

__all__ = ["ImagePool"]


@keras.saving.register_keras_serializable(package="kerastrans")
class ImagePool(keras.layers.Layer):
    """Return a batch in which each image is, with probability 1/2, swapped for a past one.

    While the pool is filling, images are stored and returned unchanged. Once
    full, each incoming image is returned as is or swapped with a random
    stored image (which it replaces), as in the reference implementations.
    Two images of one batch that draw the same slot both receive the old
    image and only one of them is stored.

    The buffer lives in non-trainable float32 variables that each replica of
    a `tf.distribute` strategy keeps for itself (synchronised on read, the
    first replica's buffer is what a checkpoint saves).

    Args:
        size: Number of images kept (50 in CycleGAN).
        image_shape: ``(height, width, channels)`` of the images.
        seed: Seed of the random choices.
    """

    def __init__(self, size: int, image_shape: Sequence[int], seed: int | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # keep the images in float32 under mixed precision
        super().__init__(**kwargs)
        if int(size) != size or size < 1:
            raise ValueError(f"size must be an integer >= 1, got {size}")
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in image_shape):
            raise ValueError(
                f"image_shape must be (height, width, channels) of known sizes for an image "
                f"pool, got {image_shape}"
            )
        self.size = int(size)
        self.image_shape = image_shape
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.images = keras.Variable(
            "zeros",
            shape=(self.size, *image_shape),
            dtype="float32",
            trainable=False,
            synchronization="on_read",
            aggregation="only_first_replica",
            name="images",
        )
        self.count = keras.Variable(
            0,
            dtype="int32",
            trainable=False,
            synchronization="on_read",
            aggregation="only_first_replica",
            name="count",
        )
        self.built = True

    def call(self, images):
        images = ops.cast(images, "float32")
        batch = ops.shape(images)[0]
        count = ops.convert_to_tensor(self.count.value)
        slots = count + ops.arange(batch, dtype="int32")
        filling = slots < self.size
        swap = keras.random.uniform((batch,), seed=self.seed_generator) < 0.5
        picks = keras.random.randint(
            (batch,), 0, self.size, dtype="int32", seed=self.seed_generator
        )
        index = ops.where(filling, slots, picks)
        stored = ops.take(self.images.value, index, axis=0)
        returned = ops.logical_and(ops.logical_not(filling), swap)[:, None, None, None]
        written = ops.logical_or(filling, swap)[:, None, None, None]
        updates = ops.where(written, images, stored)
        self.images.assign(ops.scatter_update(self.images.value, index[:, None], updates))
        self.count.assign(ops.minimum(count + batch, self.size))
        return ops.where(returned, stored, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"size": self.size, "image_shape": self.image_shape, "seed": self.seed})
        return config
