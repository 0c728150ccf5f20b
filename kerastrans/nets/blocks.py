"""Convolutional building blocks shared by the generators and discriminators.

A `ConvBlocks` object holds the options that every block of one network
shares (normalisation, activation, kernel size, spectral normalisation,
squeeze-excitation, dtype policy, seeds) and adds blocks to a functional
graph: ``x = blocks.down(x, 128)``. The option names are checked once, with
messages that list the accepted values.

Down-sampling modes (`DOWN_SAMPLING`):
    ``"conv"`` strided convolution; ``"maxpool"`` / ``"avgpool"`` convolution
    then 2 x 2 pooling; ``"*_conv"`` a second convolution after the pooling;
    ``"*_res"`` the same as a residual block (pooled 1 x 1 shortcut).
Up-sampling modes (`UP_SAMPLING`):
    ``"resize"`` bilinear x 2 then convolution (no checkerboard artefacts,
    Odena et al. 2016, Distill); ``"unpool"`` nearest-neighbour x 2 then
    convolution; ``"pixel_shuffle"`` convolution to 4x channels then
    depth-to-space (Shi et al. 2016); ``"transpose"`` transposed convolution.
"""

from __future__ import annotations

import dataclasses

import keras

from kerastrans.nets.conv import Conv2D, Conv2DTranspose
from kerastrans.nets.layers import (
    FusedBatchNormalization,
    InstanceNormalization,
    PixelShuffle,
    SelfAttention2D,
    SpectralNormalization,
    SqueezeExcitation,
)

__all__ = [
    "ACTIVATIONS",
    "DOWN_SAMPLING",
    "NORMALIZATIONS",
    "UP_SAMPLING",
    "ConvBlocks",
    "check_choice",
    "check_count",
]

NORMALIZATIONS = ("batch", "instance", "layer", "group", "none")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softmax", "none")
DOWN_SAMPLING = (
    "conv",
    "maxpool",
    "avgpool",
    "maxpool_conv",
    "avgpool_conv",
    "maxpool_res",
    "avgpool_res",
)
UP_SAMPLING = ("resize", "pixel_shuffle", "unpool", "transpose")

#: Slope of the leaky ReLU for negative inputs (Radford et al. 2016, DCGAN).
LEAKY_SLOPE = 0.2
#: Blocks with fewer output channels than this get no squeeze-excitation gate.
_MIN_SE_CHANNELS = 16


def check_choice(argument: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is in ``choices``, else raise a ValueError naming both."""
    if value not in choices:
        raise ValueError(f"{argument} must be one of {choices}, got {value!r}")
    return value


def check_count(argument: str, value: int, minimum: int = 0) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise ValueError."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value}")
    return int(value)


@dataclasses.dataclass
class ConvBlocks:
    """Adds conv / norm / activation blocks with shared options to a functional graph.

    Args:
        norm: Normalisation after each convolution, one of `NORMALIZATIONS`.
            ``"layer"`` normalises over height, width and channels of each image;
            ``"group"`` over ``norm_groups`` channel groups. Convolutions that
            are followed by a normalisation have no bias (it would be cancelled).
        activation: Default activation, one of `ACTIVATIONS`.
        kernel_size: Default kernel size of the convolutions.
        norm_groups: Number of groups for ``norm="group"``.
        spectral_norm: Wrap every convolution in spectral normalisation
            (`kerastrans.nets.layers.SpectralNormalization`, seeded).
        squeeze_excitation: Gate the output channels of each block with a
            `SqueezeExcitation` layer (blocks with at least 16 channels).
        dtype: Dtype policy of the layers (`None`: the global policy).
        seed: Seed of the weight initialisers and of the dropout and noise
            layers; each gets its own (``seed + 1``, ``seed + 2``, ...), so a
            network built twice with one seed starts from the same weights.
            `None` draws unseeded layers.
    """

    norm: str = "batch"
    activation: str = "relu"
    kernel_size: int = 3
    norm_groups: int = 8
    spectral_norm: bool = False
    squeeze_excitation: bool = False
    dtype: str | None = None
    seed: int | None = None
    _seeds_used: int = dataclasses.field(default=0, init=False, repr=False)

    def __post_init__(self):
        check_choice("norm", self.norm, NORMALIZATIONS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_count("kernel_size", self.kernel_size, 1)
        check_count("norm_groups", self.norm_groups, 1)

    @classmethod
    def from_options(cls, options: dict) -> ConvBlocks:
        """Build from a network's options, taking the keys that are fields of `ConvBlocks`."""
        fields = [field.name for field in dataclasses.fields(cls) if field.init]
        return cls(**{name: options[name] for name in fields if name in options})

    # -- single layers ---------------------------------------------------------------------

    def initializer(self) -> keras.initializers.Initializer:
        """Glorot-uniform initialiser with a fresh seed (Keras' default kernel initialiser)."""
        return keras.initializers.GlorotUniform(seed=self.next_seed())

    def next_seed(self) -> int | None:
        """Return a fresh seed for one random layer (`None` if unseeded)."""
        if self.seed is None:
            return None
        self._seeds_used += 1
        return self.seed + self._seeds_used

    def conv(
        self,
        x,
        filters: int,
        kernel_size: int | None = None,
        strides: int = 1,
        *,
        use_bias: bool = True,
        transpose: bool = False,
        dtype: str | None = None,
        name: str | None = None,
    ):
        """Apply a 'same'-padded (transposed) convolution, spectrally normalised if set.

        ``dtype`` overrides the dtype policy: a network's output convolution
        passes ``"float32"``, so that its output is not rounded to 16 bits
        under mixed precision (bfloat16 keeps 8 significant bits: steps of
        4-8 HU in the full CT window).
        """
        dtype = dtype or self.dtype
        layer_class = Conv2DTranspose if transpose else Conv2D
        layer = layer_class(
            filters,
            kernel_size or self.kernel_size,
            strides=strides,
            padding="same",
            use_bias=use_bias,
            kernel_initializer=self.initializer(),
            dtype=dtype,
            name=name,
        )
        if self.spectral_norm:
            layer = SpectralNormalization(
                layer,
                seed=self.next_seed(),
                dtype=dtype,
                name=None if name is None else f"{name}_sn",
            )
        return layer(x)

    def normalize(self, x, norm: str | None = None, name: str | None = None):
        """Apply the normalisation ``norm`` (default: the blocks' ``norm``)."""
        norm = check_choice("norm", norm or self.norm, NORMALIZATIONS)
        channels = x.shape[-1]
        if norm == "none":
            return x
        if norm == "batch":
            layer = FusedBatchNormalization(momentum=0.9, dtype=self.dtype, name=name)
        elif norm == "instance":
            layer = InstanceNormalization(dtype=self.dtype, name=name)
        else:
            groups = 1 if norm == "layer" else min(self.norm_groups, channels)
            if channels % groups:
                raise ValueError(
                    f"norm='group' needs channels divisible by norm_groups={groups}, "
                    f"got {channels} channels"
                )
            layer = keras.layers.GroupNormalization(
                groups=groups, epsilon=1e-5, dtype=self.dtype, name=name
            )
        return layer(x)

    def activate(
        self, x, activation: str | None = None, *, dtype: str | None = None, name: str | None = None
    ):
        """Apply ``activation`` (default: the blocks' ``activation``).

        ``dtype`` overrides the layer's dtype policy; an output layer passes
        ``"float32"`` so that the network returns float32 under mixed precision.
        """
        activation = check_choice("activation", activation or self.activation, ACTIVATIONS)
        if activation == "none" and dtype is None:
            return x
        if activation == "leaky_relu":
            return keras.layers.LeakyReLU(LEAKY_SLOPE, dtype=dtype or self.dtype, name=name)(x)
        keras_name = "linear" if activation == "none" else activation
        return keras.layers.Activation(keras_name, dtype=dtype or self.dtype, name=name)(x)

    def dropout(self, x, rate: float, name: str | None = None):
        """Apply dropout with ``rate`` (nothing if 0)."""
        if not rate:
            return x
        return keras.layers.Dropout(rate, seed=self.next_seed(), dtype=self.dtype, name=name)(x)

    def gaussian_noise(self, x, stddev: float, name: str | None = None):
        """Add N(0, stddev^2) noise during training only (nothing if 0)."""
        if not stddev:
            return x
        return keras.layers.GaussianNoise(
            stddev, seed=self.next_seed(), dtype=self.dtype, name=name
        )(x)

    def attention(self, x, name: str | None = None):
        """Apply a `SelfAttention2D` block."""
        return SelfAttention2D(self.spectral_norm, self.next_seed(), dtype=self.dtype, name=name)(x)

    # -- blocks ---------------------------------------------------------------------------

    def conv_block(
        self,
        x,
        filters: int,
        *,
        kernel_size: int | None = None,
        strides: int = 1,
        norm: str | None = None,
        activation: str | None = None,
        dropout: float = 0.0,
        transpose: bool = False,
        name: str = "block",
    ):
        """Convolution -> normalisation -> dropout -> activation (-> squeeze-excitation)."""
        norm = norm or self.norm
        x = self.conv(
            x,
            filters,
            kernel_size,
            strides,
            use_bias=norm == "none",
            transpose=transpose,
            name=f"{name}_conv",
        )
        x = self.normalize(x, norm, name=f"{name}_norm")
        x = self.dropout(x, dropout, name=f"{name}_dropout")
        x = self.activate(x, activation, name=f"{name}_act")
        return self._excite(x, name)

    def residual(self, x, *, activation: str | None = None, name: str = "res"):
        """Two 3 x 3 conv-norm layers added to the input (He et al. 2016; no final activation)."""
        filters = x.shape[-1]
        h = self.conv_block(x, filters, kernel_size=3, activation=activation, name=f"{name}a")
        h = self.conv(h, filters, 3, use_bias=self.norm == "none", name=f"{name}b_conv")
        h = self.normalize(h, name=f"{name}b_norm")
        return keras.layers.Add(dtype=self.dtype, name=f"{name}_add")([x, h])

    def down(
        self,
        x,
        filters: int,
        mode: str = "conv",
        *,
        norm: str | None = None,
        activation: str | None = None,
        dropout: float = 0.0,
        name: str = "down",
    ):
        """Halve height and width with the down-sampling ``mode`` (see `DOWN_SAMPLING`)."""
        check_choice("down", mode, DOWN_SAMPLING)
        options = {"norm": norm, "activation": activation}
        if mode == "conv":
            return self.conv_block(x, filters, strides=2, dropout=dropout, name=name, **options)
        pool_class = keras.layers.MaxPooling2D if "max" in mode else keras.layers.AveragePooling2D
        h = self.conv_block(x, filters, name=f"{name}a", **options)
        h = pool_class(2, dtype=self.dtype, name=f"{name}_pool")(h)
        if mode.endswith("_conv"):
            return self.conv_block(h, filters, dropout=dropout, name=f"{name}b", **options)
        if mode.endswith("_res"):
            norm = norm or self.norm
            h = self.conv(h, filters, use_bias=norm == "none", name=f"{name}b_conv")
            h = self.dropout(self.normalize(h, norm, name=f"{name}b_norm"), dropout)
            shortcut = pool_class(2, dtype=self.dtype, name=f"{name}_skip_pool")(x)
            if shortcut.shape[-1] != filters:
                shortcut = self.conv(shortcut, filters, 1, name=f"{name}_skip_conv")
            h = keras.layers.Add(dtype=self.dtype, name=f"{name}_add")([h, shortcut])
            return self._excite(self.activate(h, activation, name=f"{name}_act"), name)
        return self.dropout(h, dropout, name=f"{name}_dropout")

    def up(
        self,
        x,
        filters: int,
        mode: str = "resize",
        *,
        norm: str | None = None,
        activation: str | None = None,
        dropout: float = 0.0,
        name: str = "up",
        output_dtype: str | None = None,
    ):
        """Double height and width with the up-sampling ``mode`` (see `UP_SAMPLING`).

        ``output_dtype`` sets the dtype of the convolution and the final
        activation of a network's output block (float32 under mixed precision).
        """
        check_choice("up", mode, UP_SAMPLING)
        norm = norm or self.norm
        use_bias = norm == "none"
        dtype = output_dtype or self.dtype
        if mode == "transpose":
            x = self.conv(
                x, filters, strides=2, use_bias=use_bias, transpose=True, dtype=dtype,
                name=f"{name}_conv",
            )  # fmt: skip
        elif mode == "pixel_shuffle":
            x = self.conv(x, 4 * filters, use_bias=use_bias, dtype=dtype, name=f"{name}_conv")
            x = PixelShuffle(2, dtype=dtype, name=f"{name}_shuffle")(x)
        else:
            interpolation = "bilinear" if mode == "resize" else "nearest"
            x = keras.layers.UpSampling2D(
                2, interpolation=interpolation, dtype=self.dtype, name=f"{name}_resize"
            )(x)
            x = self.conv(x, filters, use_bias=use_bias, dtype=dtype, name=f"{name}_conv")
        x = self.normalize(x, norm, name=f"{name}_norm")
        x = self.dropout(x, dropout, name=f"{name}_dropout")
        x = self.activate(x, activation, dtype=output_dtype, name=f"{name}_act")
        return x if output_dtype else self._excite(x, name)

    def _excite(self, x, name: str):
        if not self.squeeze_excitation or x.shape[-1] < _MIN_SE_CHANNELS:
            return x
        return SqueezeExcitation(seed=self.next_seed(), dtype=self.dtype, name=f"{name}_se")(x)
