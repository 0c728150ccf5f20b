"""Encoder-decoder generator: U-Net, ResNet and AUTOMAP-style networks from one class.

The generator is a functional `keras.Model` made of two functional parts,
``encoder`` (image -> list of skip features + latent code) and ``decoder``
(that list -> image), so models can read the latent code (latent losses,
CycleGAN with a shared encoder) without running the network twice.

Layout with ``channels = (c0, c1, ..., cL-1)`` (L levels)::

    [noise] [FC layers] stem conv (c0, full size)      or  down (c0, 1/2) if stem_kernel=None
    down (c1, 1/2) ... down (cL-1, 1/2**(L-1))             ... (cL-1, 1/2**L)
    residual blocks, self-attention, [bottleneck FC]   (the latent code)
    [noise] up + skip merge back to level 0
    head: conv to output_channels (stem)               or  up to full size (no stem)

A U-Net as in pix2pix (Isola et al. 2017) is ``channels=(64, 128, 256, 512,
512, 512, 512, 512), stem_kernel=None, kernel_size=4, up="transpose",
dropout=0.5, dropout_levels=3``; the CycleGAN ResNet generator (Zhu et al.
2017) is ``channels=(64, 128, 256), residual_blocks=9, skip="none",
norm="instance"``; AUTOMAP (Zhu et al. 2018) puts ``input_fc_layers=2`` in
front of a small convolutional refinement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from kerastrans.nets.blocks import ACTIVATIONS, ConvBlocks, check_choice, check_count
from kerastrans.nets.dense import ScaledDense
from kerastrans.precision import resolve_policy

__all__ = ["SKIP_MODES", "Generator"]

#: Arguments of `Generator.__init__` that are not part of its config.
_NOT_CONFIG = ("self", "encoder", "kwargs", "__class__")

#: How encoder features reach the decoder: not at all, concatenated, added, or
#: concatenated after a convolution to ``skip_channels`` channels.
SKIP_MODES = ("none", "concat", "add", "conv")


def _check_shape(argument: str, shape: Sequence[int | None], allow_none: bool) -> tuple:
    shape = tuple(shape)
    sizes_ok = all(
        (size is None and allow_none) or (isinstance(size, int) and size >= 1) for size in shape[:2]
    )
    if len(shape) != 3 or not sizes_ok or not (isinstance(shape[2], int) and shape[2] >= 1):
        rule = "(height, width, channels) of positive integers"
        raise ValueError(f"{argument} must be {rule}, got {shape}")
    return shape


@keras.saving.register_keras_serializable(package="kerastrans")
class Generator(keras.Model):
    """Configurable encoder-decoder image generator.

    Args:
        input_shape: ``(height, width, channels)`` of the input images. Height
            and width may be `None` (any size that is a multiple of
            `size_multiple`) unless FC layers fix them. The network itself is
            fully convolutional and accepts any valid size at run time.
        output_channels: Channels of the output image.
        channels: Channels at each resolution level; its length is the number
            of levels (down-sampling steps + 1 with a stem).
        stem_kernel: Kernel of a full-resolution first convolution and of the
            last one (7 in ResNet generators); `None` makes the first layer
            down-sample (pix2pix U-Net) and leaves it unnormalised.
        kernel_size: Kernel size of the down- and up-sampling convolutions.
        down: Down-sampling mode, see `kerastrans.nets.blocks.DOWN_SAMPLING`.
        up: Up-sampling mode, see `kerastrans.nets.blocks.UP_SAMPLING`;
            default ``"resize"`` (bilinear + conv, no checkerboard artefacts).
        skip: Skip connections, one of `SKIP_MODES`.
        skip_channels: Channels of each skip for ``skip="conv"``.
        norm: Normalisation, see `kerastrans.nets.blocks.NORMALIZATIONS`.
        norm_groups: Groups for ``norm="group"``.
        activation: Activation of the decoder and residual blocks.
        encoder_activation: Activation of the encoder (default: ``activation``;
            pix2pix uses ``"leaky_relu"``).
        out_activation: Final activation: ``"tanh"`` for images in [-1, 1],
            ``"softmax"`` for one-hot segmentation, ``"none"`` for unbounded.
        dropout: Dropout rate of the decoder blocks (active in training only).
        dropout_levels: Only the this many deepest decoder levels get dropout
            (pix2pix: 3); `None` means all.
        residual_blocks: Residual blocks at the bottleneck (half in the
            encoder, rounded up, half in the decoder).
        attention: Self-attention block at the end of the encoder.
        squeeze_excitation: Squeeze-excitation gate in each conv block.
        spectral_norm: Spectral normalisation of every convolution.
        input_fc_layers: Fully connected layers before the convolutions
            (AUTOMAP domain transform); each has ``prod(fc_shape)`` units.
        fc_shape: ``(height, width, channels)`` the FC layers reshape to;
            default ``input_shape``. The convolutions then work at this size.
        fc_activation: Activation of the FC layers.
        fc_learning_rate_scale: The FC layers' learning rate relative to the
            optimizer's (`ScaledDense`; 1: plain `keras.layers.Dense`).
        residual_output: Add the input (the FC layers' image with
            ``input_fc_layers``) to the last layer's output, before
            ``out_activation``: the network learns a correction of its input,
            which starts at zero (the last convolution starts at zero)
            (residual denoising, as RED-CNN; AUTOMAP started at FBP,
            `kerastrans.models.Automap`). The input is added in float32 under
            mixed precision. Needs as many input (or ``fc_shape``) channels as
            ``output_channels``; use ``out_activation="none"`` unless the
            activation suits values near the input's.
        bottleneck_fc: If > 0, the latent code is a vector of this size made by
            an FC layer at the bottleneck (and expanded back by another).
        input_noise: Standard deviation of Gaussian noise added to the input
            during training only (in [-1, 1] units).
        latent_noise: The same for the latent code.
        seed: Seed of the dropout and noise layers.
        encoder: An existing encoder to share (its weights are shared with the
            network that built it); not part of the config.
        name: Model name.
        dtype: Precision (see `kerastrans.precision`); `None`: global policy.

    Raises:
        ValueError: For a bad option, or an input size that is not a multiple
            of `size_multiple` (the message names both).

    >>> net = Generator((32, 32, 1), 1, channels=(8, 16), stem_kernel=3)
    >>> tuple(net.output.shape)
    (None, None, None, 1)
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        output_channels: int = 1,
        channels: Sequence[int] = (64, 128, 256, 512),
        *,
        stem_kernel: int | None = 7,
        kernel_size: int = 3,
        down: str = "conv",
        up: str = "resize",
        skip: str = "concat",
        skip_channels: int = 4,
        norm: str = "batch",
        norm_groups: int = 8,
        activation: str = "relu",
        encoder_activation: str | None = None,
        out_activation: str = "tanh",
        dropout: float = 0.0,
        dropout_levels: int | None = None,
        residual_blocks: int = 0,
        attention: bool = False,
        squeeze_excitation: bool = False,
        spectral_norm: bool = False,
        input_fc_layers: int = 0,
        fc_shape: Sequence[int] | None = None,
        fc_activation: str = "tanh",
        fc_learning_rate_scale: float = 1.0,
        residual_output: bool = False,
        bottleneck_fc: int = 0,
        input_noise: float = 0.0,
        latent_noise: float = 0.0,
        seed: int | None = None,
        encoder: keras.Model | None = None,
        name: str = "generator",
        dtype: str | None = None,
        **kwargs,
    ):
        # The constructor arguments, checked and normalised below, are the config.
        config = {k: v for k, v in locals().items() if k not in _NOT_CONFIG}
        input_shape = _check_shape("input_shape", input_shape, allow_none=True)
        channels = tuple(check_count("channels", c, 1) for c in channels)
        if not channels:
            raise ValueError("channels must list at least one level, got ()")
        if stem_kernel is not None:
            check_count("stem_kernel", stem_kernel, 1)
        check_choice("skip", skip, SKIP_MODES)
        check_choice("out_activation", out_activation, ACTIVATIONS)
        check_choice("fc_activation", fc_activation, ACTIVATIONS)
        if not 0 < fc_learning_rate_scale < math.inf:
            raise ValueError(
                f"fc_learning_rate_scale must be finite and > 0, got {fc_learning_rate_scale}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        for argument, value in (("input_noise", input_noise), ("latent_noise", latent_noise)):
            if value < 0:
                raise ValueError(f"{argument} must be >= 0, got {value}")
        input_fc_layers = check_count("input_fc_layers", input_fc_layers)
        bottleneck_fc = check_count("bottleneck_fc", bottleneck_fc)
        if input_fc_layers:
            _check_shape("input_shape (with input_fc_layers)", input_shape, allow_none=False)
            fc_shape = _check_shape("fc_shape", fc_shape or input_shape, allow_none=False)
        elif fc_shape is not None:
            raise ValueError(f"fc_shape needs input_fc_layers > 0, got fc_shape={fc_shape}")
        added = (fc_shape if input_fc_layers else input_shape)[2]
        if residual_output and added != output_channels:
            raise ValueError(
                f"residual_output adds the {'FC image' if input_fc_layers else 'input'} to the "
                f"output, so it needs {output_channels} channels (output_channels), got {added}"
            )
        config.update(
            input_shape=input_shape,
            output_channels=int(output_channels),
            channels=channels,
            input_fc_layers=input_fc_layers,
            bottleneck_fc=bottleneck_fc,
            fc_shape=fc_shape,
            residual_output=bool(residual_output),
            dtype=resolve_policy(dtype).name,
        )

        levels = len(channels)
        multiple = 2 ** (levels - 1 if stem_kernel is not None else levels)
        conv_shape = tuple(fc_shape) if input_fc_layers else input_shape
        _check_size(self.__class__.__name__, conv_shape[:2], multiple)
        if bottleneck_fc and None in conv_shape[:2]:
            raise ValueError(f"bottleneck_fc needs a known input size, got {input_shape}")

        blocks = ConvBlocks.from_options(config)
        # Spatial sizes stay open (fully convolutional) unless FC layers fix them.
        graph_shape = input_shape if input_fc_layers or bottleneck_fc else (None, None)
        graph_shape = (*graph_shape[:2], input_shape[2])
        if encoder is None:
            encoder = _build_encoder(blocks, graph_shape, config)
        latent_size = [size // multiple if bottleneck_fc else None for size in conv_shape[:2]]
        decoder = _build_decoder(blocks, encoder, (*latent_size, channels[-1]), config)
        if residual_output:  # start as the identity: the correction starts at zero
            head = decoder.get_layer("head_conv")
            head.set_weights([np.zeros_like(w) for w in head.get_weights()])
        inputs = keras.Input(shape=graph_shape, name="image")
        super().__init__(inputs=inputs, outputs=decoder(encoder(inputs)), name=name, **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        #: Height and width must be multiples of this (2 ** down-sampling steps).
        self.size_multiple = multiple
        self._config = config

    def encode(self, images, training: bool = False) -> list:
        """Run the encoder: ``[skip features..., latent code]`` (always a list).

        With ``residual_output`` the input (or the FC layers' image) comes first.
        """
        features = self.encoder(images, training=training)
        return features if isinstance(features, (list, tuple)) else [features]

    def decode(self, features: list, training: bool = False):
        """Run the decoder on the output of `encode`."""
        return self.decoder(features, training=training)

    def output_size(self, input_shape: Sequence[int | None]) -> tuple[int | None, int | None]:
        """Height and width of the output for inputs of ``input_shape`` (FC layers resize)."""
        if self._config["input_fc_layers"]:
            return tuple(self._config["fc_shape"][:2])
        return tuple(input_shape[:2])

    def __call__(self, inputs, *args, **kwargs):
        # Checked before Keras wraps the call, so the error reads as one line.
        if not self._config["input_fc_layers"] and len(getattr(inputs, "shape", ())) == 4:
            _check_size(self.__class__.__name__, tuple(inputs.shape[1:3]), self.size_multiple)
        return super().__call__(inputs, *args, **kwargs)

    def get_config(self) -> dict:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> Generator:
        return cls(**config)


def _check_size(owner: str, size: Sequence[int | None], multiple: int) -> None:
    """Raise ValueError unless height and width are positive multiples of ``multiple``."""
    for axis, length in zip(("height", "width"), size, strict=True):
        if length is not None and (length < multiple or length % multiple):
            raise ValueError(
                f"{owner} input {axis} {length} is not a multiple of {multiple} "
                f"(2**{int(math.log2(multiple))}, fixed by the number of down-sampling "
                "levels); crop or pad the images or use fewer levels"
            )


def _build_encoder(blocks: ConvBlocks, input_shape: tuple, options: dict):
    """Image -> [skip features of levels 0..L-2 (if any)] + [latent code]."""
    channels = options["channels"]
    activation = options["encoder_activation"] or options["activation"]
    inputs = keras.Input(shape=input_shape, name="image")
    x = blocks.gaussian_noise(inputs, options["input_noise"], name="input_noise")
    residual = inputs  # float32: a 16-bit copy would round the output it is added to
    if options["input_fc_layers"]:
        fc_shape = options["fc_shape"]
        x = keras.layers.Flatten(dtype=blocks.dtype, name="fc_flatten")(x)
        for index in range(options["input_fc_layers"]):
            x = _dense(
                blocks,
                math.prod(fc_shape),
                options["fc_activation"],
                f"fc{index}",
                options["fc_learning_rate_scale"],
            )(x)
        x = keras.layers.Reshape(tuple(fc_shape), dtype=blocks.dtype, name="fc_reshape")(x)
        residual = x
    if options["stem_kernel"] is not None:
        x = blocks.conv_block(
            x, channels[0], kernel_size=options["stem_kernel"], activation=activation, name="stem"
        )
    else:
        x = blocks.down(
            x, channels[0], options["down"], norm="none", activation=activation, name="down0"
        )
    skips = []
    for level in range(1, len(channels)):
        skips.append(_skip_feature(blocks, x, level - 1, options))
        x = blocks.down(
            x, channels[level], options["down"], activation=activation, name=f"down{level}"
        )
    for index in range((options["residual_blocks"] + 1) // 2):
        x = blocks.residual(x, name=f"res{index}")
    if options["attention"]:
        x = blocks.attention(x, name="attention")
    if options["bottleneck_fc"]:
        x = keras.layers.Flatten(dtype=blocks.dtype, name="latent_flatten")(x)
        x = _dense(blocks, options["bottleneck_fc"], options["fc_activation"], "latent_fc")(x)
    outputs = [residual] if options["residual_output"] else []
    outputs += [skip for skip in skips if skip is not None] + [x]
    return keras.Model(inputs, outputs, name="encoder")


def _skip_feature(blocks: ConvBlocks, x, level: int, options: dict):
    if options["skip"] == "none":
        return None
    if options["skip"] == "conv":
        return blocks.conv_block(x, options["skip_channels"], kernel_size=3, name=f"skip{level}")
    return x


def _build_decoder(blocks: ConvBlocks, encoder: keras.Model, latent_shape: tuple, options: dict):
    """[skip features] + [latent code] -> image (float32 output layer)."""
    channels, skip, up = options["channels"], options["skip"], options["up"]
    dropout, dropout_levels = options["dropout"], options["dropout_levels"]
    inputs = [
        keras.Input(shape=tensor.shape[1:], name=f"feature{index}")
        for index, tensor in enumerate(encoder.outputs)
    ]
    residual = inputs[0] if options["residual_output"] else None
    skips, x = inputs[1 if residual is not None else 0 : -1], inputs[-1]
    x = blocks.gaussian_noise(x, options["latent_noise"], name="latent_noise")
    if options["bottleneck_fc"]:
        x = _dense(blocks, math.prod(latent_shape), options["fc_activation"], "latent_expand")(x)
        x = keras.layers.Reshape(latent_shape, dtype=blocks.dtype, name="latent_reshape")(x)
    for index in range(options["residual_blocks"] // 2):
        x = blocks.residual(x, name=f"res{index}")
    for depth, level in enumerate(reversed(range(len(channels) - 1))):
        rate = dropout if dropout_levels is None or depth < dropout_levels else 0.0
        x = blocks.up(x, channels[level], up, dropout=rate, name=f"up{level}")
        if skip != "none":
            merge = keras.layers.Add if skip == "add" else keras.layers.Concatenate
            x = merge(dtype=blocks.dtype, name=f"merge{level}")([x, skips[level]])
    output_channels, out_activation = options["output_channels"], options["out_activation"]
    if options["stem_kernel"] is not None:
        x = blocks.conv(
            x, output_channels, options["stem_kernel"], dtype="float32", name="head_conv"
        )
    else:
        x = blocks.up(
            x,
            output_channels,
            up,
            norm="none",
            activation=out_activation if residual is None else "none",
            output_dtype="float32",
            name="head",
        )
    if residual is not None:
        residual = keras.layers.Activation("linear", dtype="float32", name="residual")(residual)
        x = keras.layers.Add(dtype="float32", name="residual_add")([x, residual])
    if options["stem_kernel"] is not None or residual is not None:
        x = blocks.activate(x, out_activation, dtype="float32", name="output")
    return keras.Model(inputs, x, name="decoder")


def _dense(
    blocks: ConvBlocks, units: int, activation: str, name: str, learning_rate_scale: float = 1.0
) -> keras.layers.Layer:
    """A fully connected layer with one of our activation names (`ScaledDense` if scaled)."""
    options = {
        "activation": "linear" if activation == "none" else activation,
        "kernel_initializer": blocks.initializer(),
        "dtype": blocks.dtype,
        "name": name,
    }
    if learning_rate_scale == 1.0:
        return keras.layers.Dense(units, **options)
    return ScaledDense(units, learning_rate_scale=learning_rate_scale, **options)
