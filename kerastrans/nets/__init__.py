"""Networks: building blocks, encoder-decoder generators and PatchGAN discriminators."""

from kerastrans.nets.conv import Conv2D, Conv2DTranspose
from kerastrans.nets.dense import ScaledDense
from kerastrans.nets.discriminators import PatchDiscriminator
from kerastrans.nets.generators import SKIP_MODES, Generator
from kerastrans.nets.layers import (
    FusedBatchNormalization,
    InstanceNormalization,
    PixelShuffle,
    SelfAttention2D,
    SpectralNormalization,
    SqueezeExcitation,
)

__all__ = [
    "SKIP_MODES",
    "Conv2D",
    "Conv2DTranspose",
    "FusedBatchNormalization",
    "Generator",
    "InstanceNormalization",
    "PatchDiscriminator",
    "PixelShuffle",
    "ScaledDense",
    "SelfAttention2D",
    "SpectralNormalization",
    "SqueezeExcitation",
]
