"""Padding to a size multiple and cropping back, in the [-1, 1] scale.

Networks that down-sample ``k`` times take sizes that are multiples of
``2 ** k``. `pad_to_multiple` pads at the bottom/right with the window's low
end (-1) and returns the size before padding; `crop_to_size` undoes it. Both
are plain TensorFlow ops, used by the tf.data pipeline and by
`kerastrans.translate` (hence by exported SavedModels).

>>> import tensorflow as tf
>>> padded, size = pad_to_multiple(tf.zeros([5, 6, 1]), 4)
>>> padded.shape.as_list(), size.numpy().tolist()
([8, 8, 1], [5, 6])
>>> crop_to_size(padded, size).shape.as_list()
[5, 6, 1]
"""

from __future__ import annotations

import tensorflow as tf

from kerastrans.data.augment import FILL_VALUE

__all__ = ["crop_to_size", "pad_to_multiple"]


def pad_to_multiple(
    image: tf.Tensor, multiple: int, *, value: float = FILL_VALUE
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pad ``H x W x C`` (or ``B x H x W x C``) at the bottom/right to multiples of ``multiple``.

    Args:
        image: The image(s), already in the [-1, 1] scale.
        multiple: Height and width become multiples of this.
        value: Value of the added pixels (default -1, the window's low end).

    Returns:
        ``(padded, size)``: the padded image and the int32 ``[height, width]``
        before padding, for `crop_to_size`.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    size = tf.shape(image)[-3:-1]
    extra = (-size) % multiple
    paddings = tf.concat(
        [
            tf.zeros([tf.rank(image) - 3, 2], tf.int32),
            tf.stack([[0, extra[0]], [0, extra[1]], [0, 0]]),
        ],
        0,
    )
    return tf.pad(image, paddings, constant_values=value), size


def crop_to_size(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Undo `pad_to_multiple`: keep the top-left ``size = [height, width]`` pixels."""
    return image[..., : size[0], : size[1], :]
