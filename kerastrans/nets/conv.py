"""Convolutions that compute small feature maps as one matrix product.

The deep levels of a U-Net hold most of its weights on the fewest pixels:
pix2pix's 256 x 256 generator has 8.4 M weights in each of its three deepest
decoder convolutions, applied to 2 x 2 to 8 x 8 maps. There a convolution is a
matrix product with very few rows, and the oneDNN convolution kernels spend
their time elsewhere: measured on a 2-core Xeon with AMX (batch 1, mixed
bfloat16), the weight gradient of one such layer took 24-34 ms, and converting
its weights between layouts another 7 ms per conversion, three times a step.
Written as ``patches @ kernel`` (convolution) and ``(inputs @ kernel^T)``
folded back onto the output grid (transposed convolution), forward and both
gradients are plain matrix products on the kernel's own layout. Forward and
backward of one layer, same machine, bfloat16: transposed 1024 -> 512
channels from 2 x 2, 31.6 -> 12.7 ms, from 8 x 8, 35.4 -> 17.0 ms; 512 -> 512
channels onto 8 x 8, 11.2 -> 5.9 ms (``benchmarks/README.md``, "train_step",
has the whole step).

`Conv2D` and `Conv2DTranspose` are the Keras layers with that path added:
same arguments, weights, checkpoints and config, the same function up to
rounding. They take it where it was measured to win (``MATMUL_MAX_POSITIONS``,
counted on the smaller of the input and output maps, per image) and keep the
Keras convolution everywhere else, and for what the matrix form does not
cover (dilation, groups, channels-first, unknown map sizes, output padding).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

__all__ = ["Conv2D", "Conv2DTranspose", "conv2d_as_matmul", "conv2d_transpose_as_matmul"]


def conv2d_as_matmul(inputs, kernel, strides: tuple[int, int], padding: str):
    """``tf.nn.conv2d(inputs, kernel, strides, padding)`` as patches times the kernel.

    Args:
        inputs: ``(batch, height, width, channels)`` with static height and width.
        kernel: ``(kernel_h, kernel_w, channels, filters)``, Keras' layout.
        strides: ``(stride_h, stride_w)``.
        padding: ``"same"`` or ``"valid"``, with TensorFlow's convention (the
            extra row or column of an odd padding goes to the bottom or right).
    """
    kernel_h, kernel_w, _, filters = kernel.shape
    patches = tf.image.extract_patches(
        inputs, [1, kernel_h, kernel_w, 1], [1, *strides, 1], [1, 1, 1, 1], padding.upper()
    )
    _, height, width, depth = patches.shape
    # A patch is ordered (row, column, channel): the order of the kernel's first three axes.
    outputs = tf.matmul(tf.reshape(patches, (-1, depth)), tf.reshape(kernel, (depth, filters)))
    return tf.reshape(outputs, (-1, height, width, filters))


def conv2d_transpose_as_matmul(inputs, kernel, strides: tuple[int, int], padding: str):
    """``tf.nn.conv2d_transpose`` with ``padding`` for kernels at least as large as the strides.

    Each input pixel's contribution to the output, a kernel-sized block, is
    one row of ``inputs @ kernel^T``; the blocks are then added onto the output
    grid. Splitting kernel offsets as ``stride * q + r``, the pixel ``i`` adds its
    offset ``(q, r)`` to output row ``stride * (i + q) + r``: for each ``q`` that is
    a shift of the whole map by ``q`` rows, and the ``r`` phases interleave by a
    reshape. So the fold is ``ceil(kernel / stride)**2`` shifted additions.

    Args:
        inputs: ``(batch, height, width, channels)`` with static height and width.
        kernel: ``(kernel_h, kernel_w, filters, channels)``, Keras' layout.
        strides: ``(stride_h, stride_w)``, each at most the kernel's side.
        padding: ``"same"`` (output ``stride`` times the input) or ``"valid"``.
    """
    kernel_h, kernel_w, filters, channels = kernel.shape
    _, height, width, _ = inputs.shape
    stride_h, stride_w = strides
    shifts_h, shifts_w = -(-kernel_h // stride_h), -(-kernel_w // stride_w)
    blocks = tf.matmul(
        tf.reshape(inputs, (-1, channels)),
        tf.reshape(kernel, (kernel_h * kernel_w * filters, channels)),
        transpose_b=True,
    )
    blocks = tf.reshape(blocks, (-1, height, width, kernel_h, kernel_w, filters))
    blocks = tf.pad(
        blocks,
        [[0, 0]] * 3
        + [[0, shifts_h * stride_h - kernel_h], [0, shifts_w * stride_w - kernel_w], [0, 0]],
    )
    blocks = tf.reshape(
        blocks, (-1, height, width, shifts_h, stride_h, shifts_w, stride_w, filters)
    )
    # -> (batch, q_h, q_w, row, r_h, column, r_w, filters): a shift moves whole rows and columns.
    blocks = tf.transpose(blocks, (0, 3, 5, 1, 4, 2, 6, 7))
    folded = 0
    for q_h in range(shifts_h):
        for q_w in range(shifts_w):
            rows, columns = [q_h, shifts_h - 1 - q_h], [q_w, shifts_w - 1 - q_w]
            folded += tf.pad(blocks[:, q_h, q_w], [[0, 0], rows, [0, 0], columns, [0, 0], [0, 0]])
    folded = tf.reshape(
        folded, (-1, (height + shifts_h - 1) * stride_h, (width + shifts_w - 1) * stride_w, filters)
    )
    if padding == "same":
        top, left = (kernel_h - stride_h) // 2, (kernel_w - stride_w) // 2
        return folded[:, top : top + height * stride_h, left : left + width * stride_w]
    return folded[:, : (height - 1) * stride_h + kernel_h, : (width - 1) * stride_w + kernel_w]


class _MatmulPath:
    """What `Conv2D` and `Conv2DTranspose` share: when to take the matrix form.

    Attributes:
        use_matmul: Take the matrix form where it wins (default True); False
            keeps the Keras convolution everywhere (a comparison, a test).
    """

    #: Largest map, in pixels per image, on which the matrix form was faster (see the module).
    MATMUL_MAX_POSITIONS: int

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_matmul = True

    def _matmul_fits(self, inputs, small_map: tuple) -> bool:
        # ``small_map`` follows from the input's height and width: unknown if either is.
        height, width = small_map
        return (
            self.use_matmul
            and self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
            and len(inputs.shape) == 4
            and height is not None
            and width is not None
            and height * width <= self.MATMUL_MAX_POSITIONS
        )

    def _bias_and_activation(self, outputs):
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="kerastrans")
class Conv2D(_MatmulPath, keras.layers.Conv2D):
    """`keras.layers.Conv2D` computing output maps of up to 256 pixels as one matrix product."""

    MATMUL_MAX_POSITIONS = 256

    def call(self, inputs):
        output_map = self.compute_output_shape(inputs.shape)[1:3]
        if not (self.groups == 1 and self._matmul_fits(inputs, output_map)):
            return super().call(inputs)
        kernel = ops.convert_to_tensor(self.kernel)
        outputs = conv2d_as_matmul(inputs, kernel, tuple(self.strides), self.padding)
        return self._bias_and_activation(outputs)


@keras.saving.register_keras_serializable(package="kerastrans")
class Conv2DTranspose(_MatmulPath, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` computing input maps of up to 64 pixels as matrix products."""

    MATMUL_MAX_POSITIONS = 64

    def call(self, inputs):
        covered = self.output_padding is None and all(
            kernel >= stride for kernel, stride in zip(self.kernel_size, self.strides, strict=True)
        )
        if not (covered and self._matmul_fits(inputs, inputs.shape[1:3])):
            return super().call(inputs)
        kernel = ops.convert_to_tensor(self.kernel)
        outputs = conv2d_transpose_as_matmul(inputs, kernel, tuple(self.strides), self.padding)
        return self._bias_and_activation(outputs)
