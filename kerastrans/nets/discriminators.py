"""PatchGAN discriminator: one real/fake logit per overlapping image patch.

Isola et al. (2017), "Image-to-image translation with conditional adversarial
networks" (CVPR), section 3.2.2: a fully convolutional classifier whose
outputs each see an ``N x N`` patch (70 x 70 with the defaults), so it judges
texture and leaves the low frequencies to the L1 loss. For pix2pix the input
is the (source, image) pair concatenated on channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerastrans.nets.blocks import ConvBlocks, check_count
from kerastrans.precision import resolve_policy

__all__ = ["PatchDiscriminator"]


@keras.saving.register_keras_serializable(package="kerastrans")
class PatchDiscriminator(keras.Model):
    """Fully convolutional patch classifier returning float32 logits.

    Layout: ``depth`` stride-2 conv blocks (the first without normalisation)
    with ``base_channels * 2**i`` channels (at most ``max_channels``), one
    stride-1 block, then a stride-1 convolution to one logit per patch.

    Args:
        input_shape: ``(height, width, channels)``; height and width may be
            `None` (the network is fully convolutional). For a conditional
            pix2pix discriminator, channels = source + target channels.
        base_channels: Channels of the first block.
        depth: Number of stride-2 blocks (3 gives 70 x 70 patches with kernel 4).
        kernel_size: Kernel size of all convolutions.
        max_channels: Upper bound of the channel plan.
        norm: Normalisation (batch / instance / layer / group / none). Use no
            batch normalisation with WGAN-GP: the penalty is per sample.
        norm_groups: Groups for ``norm="group"``.
        activation: Activation of the blocks (default leaky ReLU, slope 0.2).
        dropout: Dropout rate after each normalised block (training only).
        spectral_norm: Spectral normalisation of every convolution
            (Miyato et al. 2018).
        attention: Self-attention block before the output convolution.
        squeeze_excitation: Squeeze-excitation gate in each block.
        seed: Seed of the dropout layers.
        name: Model name.
        dtype: Precision (see `kerastrans.precision`); `None`: global policy.

    >>> net = PatchDiscriminator((64, 64, 2), base_channels=8)
    >>> net.receptive_field, tuple(net(keras.ops.zeros((1, 64, 64, 2))).shape)
    (70, (1, 8, 8, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        base_channels: int = 64,
        depth: int = 3,
        *,
        kernel_size: int = 4,
        max_channels: int = 512,
        norm: str = "batch",
        norm_groups: int = 8,
        activation: str = "leaky_relu",
        dropout: float = 0.0,
        spectral_norm: bool = False,
        attention: bool = False,
        squeeze_excitation: bool = False,
        seed: int | None = None,
        name: str = "discriminator",
        dtype: str | None = None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or not isinstance(input_shape[2], int) or input_shape[2] < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels) with channels >= 1, "
                f"got {input_shape}"
            )
        check_count("base_channels", base_channels, 1)
        check_count("depth", depth, 0)
        check_count("max_channels", max_channels, 1)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        for size in input_shape[:2]:
            if size is not None and size < 2**depth:
                raise ValueError(
                    f"PatchDiscriminator input size {size} is smaller than 2**depth = "
                    f"{2**depth}; use a smaller depth, got input_shape={input_shape}"
                )
        config.update(input_shape=input_shape, dtype=resolve_policy(dtype).name)
        blocks = ConvBlocks.from_options(config)

        inputs = keras.Input(shape=(None, None, input_shape[2]), name="image")
        x = inputs
        for index in range(depth + 1):
            filters = min(base_channels * 2**index, max_channels)
            x = blocks.conv_block(
                x,
                filters,
                strides=2 if index < depth else 1,
                norm="none" if index == 0 else norm,
                dropout=0.0 if index == 0 else dropout,
                name=f"block{index}",
            )
        if attention:
            x = blocks.attention(x, name="attention")
        x = blocks.conv(x, 1, name="logits")
        outputs = blocks.activate(x, "none", dtype="float32", name="output")
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        #: Side in pixels of the input patch that each output logit sees.
        self.receptive_field = 1 + (kernel_size - 1) * (2**depth - 1 + 2 * 2**depth)
        self._config = config

    def get_config(self) -> dict:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict) -> PatchDiscriminator:
        return cls(**config)
