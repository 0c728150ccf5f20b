"""Layers that Keras does not ship: fused batch and instance normalisation,
pixel shuffle, squeeze-excitation and self-attention.

Each follows the Keras lifecycle (``__init__`` checks and stores arguments,
``build`` makes weights, ``call`` computes) and round-trips through
``get_config``. Statistics and attention weights are computed in float32 under
mixed precision.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

__all__ = [
    "FusedBatchNormalization",
    "InstanceNormalization",
    "PixelShuffle",
    "SelfAttention2D",
    "SpectralNormalization",
    "SqueezeExcitation",
]

_HALF = ("float16", "bfloat16")


def _initializer(seed: int | None, offset: int) -> keras.initializers.Initializer:
    """Glorot-uniform initialiser seeded with ``seed + offset`` (unseeded if `seed` is None)."""
    return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)


def _upcast(x):
    """Return ``x`` in float32 if it is a 16-bit float tensor."""
    return ops.cast(x, "float32") if keras.backend.standardize_dtype(x.dtype) in _HALF else x


@keras.saving.register_keras_serializable(package="kerastrans")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel.

    Same arguments, weights and config as the Keras layer, which composes
    batch normalisation from separate moment, subtract and scale operations
    (several passes over the activations, forward and backward); in training
    the fused kernel (oneDNN on CPU) makes one pass each way and takes
    bfloat16 or float16 activations directly, keeping mean and variance in
    float32. Image batches ``(batch, height, width, channels)`` normalised
    over the channel axis take the fused path in training; inference and
    anything else (masks, other axes, batch renormalisation, synchronised
    statistics) use the Keras layer unchanged.

    Attributes:
        use_fused_kernel: Take the fused path in training (default True). Under
            XLA the Keras formula is faster, as XLA fuses it itself; the
            kerastrans models switch the kernel off when compiled with
            ``jit_compile=True``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_fused_kernel = True

    def _fusable(self, inputs, mask) -> bool:
        return (
            self.use_fused_kernel
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
        )

    def call(self, inputs, training=None, mask=None):
        # Inference keeps the Keras formula: eager calls and compiled predictions then
        # agree bit for bit (a graph may fuse a fused batch norm into the convolution).
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = self.gamma.value if self.scale else tf.ones((channels,), "float32")
        offset = self.beta.value if self.center else tf.zeros((channels,), "float32")
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, epsilon=self.epsilon, is_training=True
        )[:3]
        # The kernel returns the unbiased batch variance, as moving averages use.
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return outputs


@keras.saving.register_keras_serializable(package="kerastrans")
class InstanceNormalization(keras.layers.Layer):
    """Normalise each channel of each image over its height and width.

    Ulyanov et al. (2016), "Instance normalization: the missing ingredient for
    fast stylization" (arXiv:1607.08022). The statistics do not depend on the
    batch, so training and inference compute the same function and no moving
    averages are kept. Mean and variance are computed in float32.

    In training, image batches take TensorFlow's fused batch-norm kernel with
    the images set side by side as channels (``(1, height, width, batch x
    channels)``, whose batch statistics are the per-image ones): one pass each
    way instead of the formula's separate moment, subtract and scale passes
    and their gradients. Forward and backward, bfloat16, 2-core AMD EPYC:
    256 x 256 x 64, 33.3 -> 13.3 ms; 64 x 64 x 256, 6.7 -> 3.0 ms. Inference
    keeps the formula, so that eager calls and compiled predictions agree bit
    for bit. The kernel's epsilon is at least 1.001e-5 (TensorFlow's floor).

    Args:
        epsilon: Added to the variance, default 1e-5.
        center: Learn a per-channel offset (beta), default True.
        scale: Learn a per-channel scale (gamma), default True.

    Attributes:
        use_fused_kernel: Take the fused path in training (default True); the
            kerastrans models switch it off under XLA, which fuses the formula.

    >>> x = keras.random.normal((2, 8, 8, 3), seed=0)
    >>> y = InstanceNormalization()(x)
    >>> bool(ops.all(ops.abs(ops.mean(y, axis=(1, 2))) < 1e-4))
    True
    """

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.supports_masking = True
        self.use_fused_kernel = True

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"InstanceNormalization needs inputs (batch, height, width, channels) with "
                f"known channels, got shape {tuple(input_shape)}"
            )
        channels = input_shape[-1]
        # float32 under mixed precision too (autocast=False), as the statistics.
        self.gamma = (
            self.add_weight(shape=(channels,), initializer="ones", name="gamma", autocast=False)
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(shape=(channels,), initializer="zeros", name="beta", autocast=False)
            if self.center
            else None
        )

    def call(self, inputs, training=None):
        if training and self.use_fused_kernel:
            return self._fused(inputs)
        x = _upcast(inputs)
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        # Per image and channel: y = (x - mean) * scale + beta, with the affine
        # parameters folded into scale so that one multiply-add touches every value.
        scale = ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            scale = scale * ops.cast(self.gamma, x.dtype)
        beta = 0.0 if self.beta is None else ops.cast(self.beta, x.dtype)
        if x is inputs:  # float32: precise enough to subtract the mean inside the offset
            return x * scale + (beta - mean * scale)
        return ops.cast((x - mean) * scale + beta, self.compute_dtype)

    def _fused(self, inputs):
        """The fused batch-norm kernel on the images of the batch set side by side."""
        batch, height, width = (tf.shape(inputs)[axis] for axis in range(3))
        channels = inputs.shape[-1]
        side_by_side = tf.reshape(tf.transpose(inputs, (1, 2, 0, 3)), (1, height, width, -1))
        scale = self.gamma.value if self.scale else tf.ones((channels,), "float32")
        offset = self.beta.value if self.center else tf.zeros((channels,), "float32")
        outputs = tf.compat.v1.nn.fused_batch_norm(
            side_by_side,
            tf.tile(scale, [batch]),
            tf.tile(offset, [batch]),
            epsilon=self.epsilon,
            is_training=True,
        )[0]
        return tf.transpose(tf.reshape(outputs, (height, width, batch, channels)), (2, 0, 1, 3))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "center": self.center, "scale": self.scale})
        return config


@keras.saving.register_keras_serializable(package="kerastrans")
class PixelShuffle(keras.layers.Layer):
    """Rearrange ``channels = c * factor**2`` into a ``factor`` times larger image.

    Shi et al. (2016), "Real-time single image and video super-resolution using
    an efficient sub-pixel convolutional neural network" (CVPR). Same layout as
    `keras.ops.depth_to_space`.

    Args:
        factor: Up-sampling factor of height and width, default 2.
    """

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(factor) != factor or factor < 2:
            raise ValueError(f"factor must be an integer >= 2, got {factor}")
        self.factor = int(factor)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.factor**2:
            raise ValueError(
                f"PixelShuffle(factor={self.factor}) needs channels divisible by "
                f"{self.factor**2}, got {channels}"
            )

    def call(self, inputs):
        return ops.depth_to_space(inputs, self.factor)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        scaled = [None if size is None else size * self.factor for size in (height, width)]
        return (batch, *scaled, channels // self.factor**2)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@keras.saving.register_keras_serializable(package="kerastrans")
class SqueezeExcitation(keras.layers.Layer):
    """Re-weight channels by a gate computed from their global average.

    Hu et al. (2018), "Squeeze-and-excitation networks" (CVPR): global average
    pooling, a bottleneck of ``channels // ratio`` units with ReLU, then one
    sigmoid gate per channel.

    Args:
        ratio: Reduction ratio of the bottleneck, default 16.
        seed: Seed of the weight initialisers (`None`: unseeded).
    """

    def __init__(self, ratio: int = 16, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if int(ratio) != ratio or ratio < 1:
            raise ValueError(f"ratio must be an integer >= 1, got {ratio}")
        self.ratio = int(ratio)
        self.seed = seed

    def build(self, input_shape):
        channels = input_shape[-1]
        self.squeeze = keras.layers.Dense(
            max(channels // self.ratio, 1),
            activation="relu",
            kernel_initializer=_initializer(self.seed, 0),
            dtype=self.dtype_policy,
            name="squeeze",
        )
        self.excite = keras.layers.Dense(
            channels,
            activation="sigmoid",
            kernel_initializer=_initializer(self.seed, 1),
            dtype=self.dtype_policy,
            name="excite",
        )
        self.squeeze.build((input_shape[0], channels))
        self.excite.build((input_shape[0], max(channels // self.ratio, 1)))

    def call(self, inputs):
        gate = self.excite(self.squeeze(ops.mean(inputs, axis=(1, 2))))
        return inputs * ops.cast(gate[:, None, None, :], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"ratio": self.ratio, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="kerastrans")
class SpectralNormalization(keras.layers.SpectralNormalization):
    """`keras.layers.SpectralNormalization` with a seeded power-iteration vector.

    The Keras layer draws its vector ``u`` (truncated normal, stddev 0.02)
    from the global random state, so two networks built with one seed would
    normalise differently in their first steps. With ``seed`` set, ``u`` is
    drawn from that seed instead; weights, config and behaviour are
    otherwise the Keras layer's.

    Args:
        layer: The layer to wrap (with a ``kernel``).
        power_iterations: Power iterations per training step.
        seed: Seed of ``u`` (`None`: Keras' unseeded draw).
    """

    def __init__(self, layer, power_iterations: int = 1, seed: int | None = None, **kwargs):
        super().__init__(layer, power_iterations, **kwargs)
        self.seed = seed

    def build(self, input_shape):
        super().build(input_shape)
        if self.seed is not None:
            self.vector_u.assign(
                keras.random.truncated_normal(
                    self.vector_u.shape, stddev=0.02, dtype=self.vector_u.dtype, seed=self.seed
                )
            )

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerastrans")
class SelfAttention2D(keras.layers.Layer):
    """Self-attention over image positions, added to the input (SAGAN).

    Zhang et al. (2019), "Self-attention generative adversarial networks"
    (ICML), with the 2 x 2 max-pooled keys and values of BigGAN to cut the cost
    by four. The output is ``x + gamma * attention(x)`` with ``gamma``
    starting at 0, so a new block is the identity. Softmax runs in float32.

    Args:
        spectral_norm: Wrap the four 1 x 1 convolutions in spectral
            normalisation, default False.
        seed: Seed of the weight initialisers (`None`: unseeded).
    """

    def __init__(self, spectral_norm: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.seed = seed

    def _conv(self, index: int, filters: int, name: str, channels: int, input_shape):
        conv = keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer=_initializer(self.seed, index),
            dtype=self.dtype_policy,
            name=name,
        )
        if self.spectral_norm:
            seed = None if self.seed is None else self.seed + 4 + index
            conv = SpectralNormalization(conv, seed=seed, dtype=self.dtype_policy, name=name)
        conv.build((*input_shape[:3], channels))
        return conv

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels < 8:
            raise ValueError(f"SelfAttention2D needs at least 8 channels, got {channels}")
        self.query = self._conv(0, channels // 8, "query", channels, input_shape)
        self.key = self._conv(1, channels // 8, "key", channels, input_shape)
        self.value = self._conv(2, channels // 2, "value", channels, input_shape)
        self.out = self._conv(3, channels, "out", channels // 2, input_shape)
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        channels = inputs.shape[-1]
        query = ops.reshape(self.query(inputs, training=training), (batch, -1, channels // 8))
        key = ops.max_pool(self.key(inputs, training=training), 2, 2)
        key = ops.reshape(key, (batch, -1, channels // 8))
        value = ops.max_pool(self.value(inputs, training=training), 2, 2)
        value = ops.reshape(value, (batch, -1, channels // 2))
        logits = ops.matmul(_upcast(query), ops.transpose(_upcast(key), (0, 2, 1)))
        weights = ops.cast(ops.softmax(logits, axis=-1), inputs.dtype)
        attended = ops.reshape(ops.matmul(weights, value), (batch, height, width, channels // 2))
        return inputs + ops.cast(self.gamma, inputs.dtype) * self.out(attended, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"spectral_norm": self.spectral_norm, "seed": self.seed})
        return config
