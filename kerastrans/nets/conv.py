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

At the other end, a stride-1 convolution from or to a single channel on a
large map (the 7 x 7 first and last layers of a ResNet generator on
grayscale images) is slow in oneDNN for the opposite reason: the matrix
product behind it has a single row or column. `conv2d_thin` computes those
parts as a product with ``kernel_h * kernel_w`` columns and a sum of shifted
maps instead.

`Conv2D` and `Conv2DTranspose` are the Keras layers with these paths added:
same arguments, weights, checkpoints and config, the same function up to
rounding. They take it where it was measured to win (``MATMUL_MAX_POSITIONS``,
counted on the smaller of the input and output maps, per image) and keep the
Keras convolution everywhere else, and for what the matrix form does not
cover (dilation, groups, channels-first, unknown map sizes, output padding).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

__all__ = [
    "Conv2D",
    "Conv2DTranspose",
    "conv2d_as_matmul",
    "conv2d_thin",
    "conv2d_transpose_as_matmul",
]


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
    # A patch is ordered (row, column, channel): the order of the kernel's first three axes.
    return _matmul_2d(patches, tf.reshape(kernel, (-1, filters)))


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
    blocks = _matmul_2d(inputs, tf.reshape(kernel, (-1, channels)), transpose_b=True)
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


def _shifted_sum(blocks, kernel_hw: tuple[int, int], size: tuple[int, int], flip: bool):
    """Sum over kernel offsets ``(dy, dx)`` of ``blocks`` shifted by the offset, in float32.

    ``blocks`` holds one group of channels per offset, ordered ``(dy, dx,
    channel)``; the group of ``(dy, dx)`` is read from row ``dy`` and column
    ``dx`` on (``flip``: ``kernel_h - 1 - dy`` and ``kernel_w - 1 - dx``), over
    ``size`` rows and columns. This is the scatter-add half of a convolution
    (col2im) on few channels; summed in float32 so that bfloat16 inputs lose no
    more than one rounding, as in a convolution kernel. One reduction over the
    stacked shifts, not ``add_n``: a graph may regroup an ``add_n``, and a
    compiled model would then differ from eager calls in the last bits.
    """
    kernel_h, kernel_w = kernel_hw
    height, width = size
    channels = blocks.shape[-1] // (kernel_h * kernel_w)
    blocks = tf.cast(blocks, "float32")
    terms = []
    for dy in range(kernel_h):
        for dx in range(kernel_w):
            top, left = (kernel_h - 1 - dy, kernel_w - 1 - dx) if flip else (dy, dx)
            first = (dy * kernel_w + dx) * channels
            terms.append(
                blocks[:, top : top + height, left : left + width, first : first + channels]
            )
    return tf.reduce_sum(tf.stack(terms), axis=0)


def _same_padding(kernel_hw: tuple[int, int], padding: str) -> list[list[int]]:
    """Zero padding turning a stride-1 ``padding`` convolution into a valid one (TF's split)."""
    if padding == "valid":
        return [[0, 0]] * 4
    rows, columns = ([(k - 1) // 2, k - 1 - (k - 1) // 2] for k in kernel_hw)
    return [[0, 0], rows, columns, [0, 0]]


def conv2d_thin(inputs, kernel, padding: str):
    """Stride-1 ``tf.nn.conv2d(inputs, kernel, 1, padding)`` for a side with few channels.

    oneDNN's kernels are slow exactly where one side of a convolution has one
    to a few channels and the maps are large: the 7 x 7 stem and output layer
    of a ResNet generator on a 256 x 256 grayscale image. Measured on a 2-core
    AMD EPYC in bfloat16, forward, input and weight gradient: 1 -> 64 channels
    4.9, 33.2 and 4.6 ms; 64 -> 1 channels 34.6, 6.5 and 40.3 ms. The slow
    parts are a matrix product with ``kernel_h * kernel_w`` thin columns
    followed by a sum of shifted copies (`_shifted_sum`), or that sum's
    adjoint (a convolution with a constant one-hot kernel, which oneDNN does
    fast); they are computed so here, and oneDNN keeps the fast parts.
    Gradients are exact and themselves differentiable (a gradient penalty
    differentiates through them). Forward and both gradients together, same
    machine: 1 -> 64 channels on 256 x 256, 38.9 -> 20.8 ms; 64 -> 1, 45.5 ->
    15.0 ms; on 64 x 64, 4.3 -> 3.4 and 4.7 -> 3.1 ms. With three channels
    it loses (3 -> 64: 43.7 -> 118 ms; 64 -> 3: 46.3 -> 50.2 ms): `Conv2D`
    takes it for a single channel only.

    Args:
        inputs: ``(batch, height, width, channels)`` with static height and width.
        kernel: ``(kernel_h, kernel_w, channels, filters)``, Keras' layout.
        padding: ``"same"`` or ``"valid"``.
    """
    kernel = tf.convert_to_tensor(kernel)  # a value: a custom gradient must not see a variable
    kernel_h, kernel_w, channels, filters = kernel.shape
    kernel_hw, offsets = (kernel_h, kernel_w), kernel_h * kernel_w
    pads = _same_padding(kernel_hw, padding)
    border = [[0, 0], [kernel_h - 1] * 2, [kernel_w - 1] * 2, [0, 0]]
    # The complement of ``pads`` to a full border: padding the gradient's patch columns by it
    # lines input pixel (a, b) up with the output pixels (a + pad - dy, b + pad - dx).
    complement = [
        [kernel - 1 - pad for pad in pair]
        for kernel, pair in zip((1, *kernel_hw, 1), pads, strict=True)
    ]
    strides = [1, 1, 1, 1]

    @tf.custom_gradient
    def thin_input(x, w):
        def gradient(upstream):
            # Each output pixel's share of each input patch, then the patches added back.
            columns = _matmul_2d(upstream, tf.reshape(w, (offsets * channels, filters)), True)
            padded = tf.pad(columns, complement)
            grad_x = _shifted_sum(padded, kernel_hw, x.shape[1:3], flip=True)
            grad_w = tf.raw_ops.Conv2DBackpropFilter(
                input=x,
                filter_sizes=w.shape,
                out_backprop=upstream,
                strides=strides,
                padding=padding.upper(),
            )
            return tf.cast(grad_x, x.dtype), grad_w

        return tf.nn.conv2d(x, w, 1, padding.upper()), gradient

    @tf.custom_gradient
    def thin_output(x, w):
        padded = tf.pad(x, pads)
        size = (padded.shape[1] - kernel_h + 1, padded.shape[2] - kernel_w + 1)
        # Row c: what channel c of a pixel adds to each filter at each kernel offset.
        by_channel = tf.reshape(tf.transpose(w, (2, 0, 1, 3)), (channels, offsets * filters))
        blocks = _matmul_2d(padded, by_channel)
        outputs = tf.cast(_shifted_sum(blocks, kernel_hw, size, flip=False), x.dtype)

        def gradient(upstream):
            grad_x = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x),
                filter=w,
                out_backprop=upstream,
                strides=strides,
                padding=padding.upper(),
            )
            # Channel (dy, dx, f) at padded pixel (a, b): upstream f at (a - dy, b - dx).
            one_hot = _one_hot_kernel(kernel_hw, filters, upstream.dtype)
            spread = tf.nn.conv2d(tf.pad(upstream, border), one_hot, 1, "VALID")
            grad_w = tf.matmul(
                tf.reshape(padded, (-1, channels)),
                tf.reshape(spread, (-1, offsets * filters)),
                transpose_a=True,
            )
            grad_w = tf.reshape(grad_w, (channels, kernel_h, kernel_w, filters))
            return grad_x, tf.transpose(grad_w, (1, 2, 0, 3))

        return outputs, gradient

    return thin_output(inputs, kernel) if filters < channels else thin_input(inputs, kernel)


def _matmul_2d(maps, matrix, transpose_b: bool = False):
    """``maps @ matrix`` over the last axis of ``(batch, height, width, depth)`` maps."""
    _, height, width, _ = maps.shape
    flat = tf.matmul(tf.reshape(maps, (-1, maps.shape[-1])), matrix, transpose_b=transpose_b)
    return tf.reshape(flat, (-1, height, width, flat.shape[-1]))


def _one_hot_kernel(kernel_hw: tuple[int, int], channels: int, dtype):
    """Valid-convolution kernel that copies channel ``c`` of the input pixel
    ``(i + kernel_h - 1 - dy, j + kernel_w - 1 - dx)`` to output channel ``(dy, dx, c)``."""
    kernel_h, kernel_w = kernel_hw
    kernel = np.zeros((kernel_h, kernel_w, channels, kernel_h * kernel_w * channels), "float32")
    for dy in range(kernel_h):
        for dx in range(kernel_w):
            for c in range(channels):
                kernel[
                    kernel_h - 1 - dy, kernel_w - 1 - dx, c, (dy * kernel_w + dx) * channels + c
                ] = 1
    return tf.constant(kernel, dtype)


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

    def _matrix_forms_apply(self, inputs, small_map: tuple) -> bool:
        """True if the matrix forms cover this call, whatever the map's size."""
        # ``small_map`` follows from the input's height and width: unknown if either is.
        height, width = small_map
        return (
            self.use_matmul
            and self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
            and len(inputs.shape) == 4
            and height is not None
            and width is not None
        )

    def _matmul_fits(self, inputs, small_map: tuple) -> bool:
        height, width = small_map
        return (
            self._matrix_forms_apply(inputs, small_map)
            and height * width <= self.MATMUL_MAX_POSITIONS
        )

    def _bias_and_activation(self, outputs):
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="kerastrans")
class Conv2D(_MatmulPath, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with the matrix forms where they win.

    Output maps of up to 256 pixels are one matrix product
    (`conv2d_as_matmul`); stride-1 convolutions from or to a single channel
    on larger maps take `conv2d_thin`.
    """

    MATMUL_MAX_POSITIONS = 256

    def call(self, inputs):
        output_map = self.compute_output_shape(inputs.shape)[1:3]
        if self.groups != 1 or not self._matrix_forms_apply(inputs, output_map):
            return super().call(inputs)
        kernel = ops.convert_to_tensor(self.kernel)
        if self._matmul_fits(inputs, output_map):
            outputs = conv2d_as_matmul(inputs, kernel, tuple(self.strides), self.padding)
        elif self._is_thin(inputs):
            outputs = conv2d_thin(inputs, kernel, self.padding)
        else:
            return super().call(inputs)
        return self._bias_and_activation(outputs)

    def _is_thin(self, inputs) -> bool:
        # Measured to win with one channel only: with three, the shifted sums lose (module).
        single_channel = 1 in (inputs.shape[-1], self.filters)
        return single_channel and tuple(self.strides) == (1, 1) and self.kernel_size != (1, 1)


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
