"""Config of the networks, with per-model defaults (`MODEL_PRESETS`, losses included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from kerastrans.config._convert import _check, _coerce_fields

MODEL_KINDS = ("pix2pix", "cyclegan", "automap", "lpd", "lgd", "fbp-unet")
#: Kinds with the ray transform of the dataset's geometry inside the network.
RECONSTRUCTION_KINDS = ("lpd", "lgd", "fbp-unet")
_NORMS = Literal["batch", "instance", "layer", "group", "none"]
_ACTIVATIONS = Literal["relu", "leaky_relu", "tanh", "sigmoid", "softmax", "none"]


def _check_counts(section: str, minimum: int = 1, **values: int | None) -> None:
    """Check that each value is `None` or >= ``minimum``; the message names ``section.name``."""
    for name, value in values.items():
        if value is not None:
            _check(value >= minimum, f"{section}.{name} must be >= {minimum}, got {value}")


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Options of the encoder-decoder generator (`kerastrans.nets.Generator`).

    The channel plan is ``min(base_channels * 2**i, max_channels)`` for the
    ``depth`` levels ``i``; the other fields are passed to the network as they
    are (see its documentation for their meaning). Defaults are those of
    pix2pix; `ModelConfig` applies the chosen model's own defaults
    (`MODEL_PRESETS`) under what a file or override gives. Up-sampling
    defaults to ``"unpool"``: nearest-neighbour x 2 then a convolution, the
    resize-convolution of Odena et al. (2016, Distill) without checkerboard
    artefacts, which (unlike bilinear ``"resize"`` in Keras 3.15) also traces
    for images of unknown size, so the exported model takes any size.
    Normalisation defaults to ``"none"`` for pix2pix: instance statistics
    differ between training patches and whole images, which shifts the
    output's HU, and batch statistics of small CT batches are noisy (CycleGAN
    keeps the instance normalisation of its paper).
    ``residual_output`` `None` leaves the model's choice: off, except for
    AUTOMAP with ``fbp_init`` (its convolutions correct the FBP image).
    """

    depth: int = 4
    base_channels: int = 32
    max_channels: int = 256
    stem_kernel: int | None = 3
    kernel_size: int = 3
    down: Literal[
        "conv", "maxpool", "avgpool", "maxpool_conv", "avgpool_conv", "maxpool_res", "avgpool_res"
    ] = "conv"
    up: Literal["resize", "pixel_shuffle", "unpool", "transpose"] = "unpool"
    skip: Literal["none", "concat", "add", "conv"] = "concat"
    skip_channels: int = 4
    norm: _NORMS = "none"
    norm_groups: int = 8
    activation: _ACTIVATIONS = "relu"
    encoder_activation: _ACTIVATIONS | None = "leaky_relu"
    out_activation: _ACTIVATIONS = "tanh"
    dropout: float = 0.0
    dropout_levels: int | None = None
    residual_blocks: int = 0
    attention: bool = False
    squeeze_excitation: bool = False
    spectral_norm: bool = False
    bottleneck_fc: int = 0
    input_noise: float = 0.0
    latent_noise: float = 0.0
    residual_output: bool | None = None

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check_counts(
            "generator", depth=self.depth, base_channels=self.base_channels,
            max_channels=self.max_channels, stem_kernel=self.stem_kernel,
            kernel_size=self.kernel_size, skip_channels=self.skip_channels,
            norm_groups=self.norm_groups, dropout_levels=self.dropout_levels,
        )  # fmt: skip
        _check_counts("generator", 0, residual_blocks=self.residual_blocks,
                      bottleneck_fc=self.bottleneck_fc)  # fmt: skip
        _check(0 <= self.dropout < 1, f"generator.dropout must be in [0, 1), got {self.dropout}")
        for name in ("input_noise", "latent_noise"):
            value = getattr(self, name)
            _check(value >= 0, f"generator.{name} must be >= 0, got {value}")

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of each level, e.g. ``(32, 64, 128, 256)``."""
        return tuple(min(self.base_channels * 2**i, self.max_channels) for i in range(self.depth))

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this: 2 ** down-sampling steps."""
        return 2 ** (self.depth - 1 if self.stem_kernel is not None else self.depth)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Options of the PatchGAN discriminator (`kerastrans.nets.PatchDiscriminator`)."""

    base_channels: int = 32
    depth: int = 3
    kernel_size: int = 4
    max_channels: int = 256
    norm: _NORMS = "instance"
    norm_groups: int = 8
    activation: _ACTIVATIONS = "leaky_relu"
    dropout: float = 0.0
    spectral_norm: bool = False
    attention: bool = False
    squeeze_excitation: bool = False

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check_counts(
            "discriminator", base_channels=self.base_channels, kernel_size=self.kernel_size,
            max_channels=self.max_channels, norm_groups=self.norm_groups,
        )  # fmt: skip
        _check_counts("discriminator", 0, depth=self.depth)
        _check(
            0 <= self.dropout < 1, f"discriminator.dropout must be in [0, 1), got {self.dropout}"
        )


#: Defaults of each model kind, applied under the values a file or override gives.
#: Smaller than the papers' networks so that the defaults train on a 2-core CPU.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "pix2pix": {"generator": {}, "discriminator": {}, "pool_size": 0,
                "losses": {"adversarial_loss": "vanilla", "adversarial": 1.0, "l1": 100.0}},
    "cyclegan": {
        "generator": {"depth": 3, "base_channels": 32, "max_channels": 128, "stem_kernel": 7,
                      "skip": "none", "residual_blocks": 6, "norm": "instance",
                      "encoder_activation": None},
        "discriminator": {},
        "pool_size": 50,
        "losses": {"adversarial_loss": "lsgan", "adversarial": 1.0, "l1": 0.0, "cycle": 10.0,
                   "identity": 5.0},
    },
    "automap": {
        "generator": {"depth": 1, "base_channels": 64, "max_channels": 64, "stem_kernel": 5,
                      "residual_blocks": 1, "norm": "none", "skip": "none",
                      "encoder_activation": None, "out_activation": "none"},
        "discriminator": {},
        "pool_size": 0,
        "losses": {"adversarial_loss": "vanilla", "adversarial": 0.0, "l1": 0.0, "l2": 1.0},
    },
    # Reconstruction: mean squared error as in Adler & Oktem. fbp-unet's U-Net is pix2pix's,
    # learning the correction of the FBP image as FBPConvNet does (Jin et al. 2017): its
    # output starts at FBP. On the dival ellipses validation split this led the plain U-Net
    # by 0.7 dB after 1,000 steps (benchmarks/README.md, "ellipses").
    "lpd": {"generator": {}, "discriminator": {}, "pool_size": 0,
            "losses": {"adversarial_loss": "vanilla", "adversarial": 0.0, "l1": 0.0, "l2": 1.0}},
    "lgd": {"generator": {}, "discriminator": {}, "pool_size": 0,
            "losses": {"adversarial_loss": "vanilla", "adversarial": 0.0, "l1": 0.0, "l2": 1.0}},
    "fbp-unet": {"generator": {"residual_output": True, "out_activation": "none"},
                 "discriminator": {}, "pool_size": 0,
                 "losses": {"adversarial_loss": "vanilla", "adversarial": 0.0, "l1": 0.0,
                            "l2": 1.0}},
}  # fmt: skip


#: The model argument each plain field of `ModelConfig` feeds, and the kinds that take it
#: (`None`: every kind), as `LOSS_ARGUMENTS`. The other fields shape the networks
#: (``kind``, shapes, ``generator``, ``discriminator``, geometry, the unrolled networks'
#: options), which `kerastrans.training.build` assembles.
MODEL_ARGUMENTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "conditional": ("conditional", ("pix2pix",)),
    "shared_encoder": ("shared_encoder", ("cyclegan",)),
    "pool_size": ("pool_size", None),
    "fc_layers": ("fc_layers", ("automap",)),
    "fc_activation": ("fc_activation", ("automap",)),
    "fc_learning_rate_scale": ("fc_learning_rate_scale", ("automap",)),
    "memory_limit": ("memory_limit", ("automap",)),
    "precision": ("dtype", None),
    "seed": ("seed", None),
}


def _preset(value: Any, defaults: Mapping[str, Any]) -> Any:
    """``value`` over ``defaults`` when it is `None` or a plain mapping (not yet a dataclass)."""
    if value is None or isinstance(value, Mapping):
        return {**defaults, **(value or {})}
    return value


def _check_kind(kind: Any) -> str:
    if kind not in MODEL_KINDS:
        raise ValueError(f"model.kind must be one of {list(MODEL_KINDS)}, got {kind!r}")
    return kind


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model is trained, its networks and its shapes.

    Args:
        kind: ``"pix2pix"`` (paired), ``"cyclegan"`` (unpaired),
            ``"automap"`` (reconstruction with fully connected layers), or
            reconstruction with the ray transform inside: ``"lpd"`` (learned
            primal-dual), ``"lgd"`` (learned gradient descent), ``"fbp-unet"``
            (FBP, then the U-Net of ``generator``).
        input_shape: ``(height, width, channels)`` of the inputs (domain A);
            `None` entries for sizes that vary. `None`: filled in from the
            dataset by ``kerastrans fit``.
        output_shape: The same for the outputs (domain B).
        generator: Generator options; missing keys take the kind's defaults.
        discriminator: Discriminator options (also the latent-code
            discriminator of a CycleGAN with ``shared_encoder``).
        conditional: pix2pix: the discriminator sees the input with the image.
        shared_encoder: CycleGAN: both generators share one encoder.
        pool_size: Past fakes shown to the discriminators (pix2pix 0, CycleGAN 50).
        fc_layers: AUTOMAP: fully connected layers before the convolutions.
        fc_activation: AUTOMAP: their activation.
        fc_learning_rate_scale: AUTOMAP: their learning rate relative to the
            optimizer's (1); e.g. 0.02 keeps FC layers started at FBP near their
            start while the convolutions learn at the full rate.
        memory_limit: AUTOMAP: bytes the FC layers may take (`None`: free memory).
        fbp_init: AUTOMAP: start the first FC layer at the dataset geometry's
            FBP (needs ``fc_activation: none``).
        geometry: lpd/lgd/fbp-unet and AUTOMAP with ``fbp_init``: the scan
            geometry (``GeometrySpec.to_dict()``); `None`: read from the
            dataset's metadata by ``kerastrans fit``.
        iterations: lpd/lgd: unrolled iterations (10).
        unrolled_channels: lpd/lgd: channels of the per-iteration CNNs (32).
        primal_memory: lpd/lgd: channels of the primal (image + memory, 5).
        dual_memory: lpd: channels of the dual (5).
        initial: lpd/lgd: initial image, ``"zeros"`` or ``"fbp"``.
        fbp_filter: fbp-unet and AUTOMAP's ``fbp_init``: the FBP filter (``"Hann"``).
        fbp_frequency_scaling: fbp-unet and AUTOMAP's ``fbp_init``: the FBP
            filter's cut-off as a fraction of the Nyquist frequency, in ``(0, 1]`` (1).
        precision: ``"auto"`` (mixed bfloat16 where the machine computes
            bfloat16 natively, else float32: `kerastrans.precision.resolve_precision`;
            a run records the choice), ``"float32"``, ``"mixed_bfloat16"`` or
            ``"mixed_float16"`` (losses, normalisation statistics and outputs
            stay float32).
        seed: Seed of the weights and of the model's random draws; `None`:
            ``kerastrans fit`` uses the data seed.
    """

    kind: str = "pix2pix"
    input_shape: tuple[int | None, ...] | None = None
    output_shape: tuple[int | None, ...] | None = None
    generator: GeneratorConfig | None = None
    discriminator: DiscriminatorConfig | None = None
    conditional: bool = True
    shared_encoder: bool = False
    pool_size: int | None = None
    fc_layers: int = 2
    fc_activation: _ACTIVATIONS = "tanh"
    fc_learning_rate_scale: float = 1.0
    memory_limit: int | None = None
    fbp_init: bool = False
    geometry: dict[str, Any] | None = None
    iterations: int = 10
    unrolled_channels: int = 32
    primal_memory: int = 5
    dual_memory: int = 5
    initial: Literal["zeros", "fbp"] = "zeros"
    fbp_filter: Literal["Ram-Lak", "Shepp-Logan", "Cosine", "Hamming", "Hann"] = "Hann"
    fbp_frequency_scaling: float = 1.0
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "auto"
    seed: int | None = None

    def __post_init__(self) -> None:
        preset = MODEL_PRESETS[_check_kind(self.kind)]
        for name in ("generator", "discriminator"):
            object.__setattr__(self, name, _preset(getattr(self, name), preset[name]))
        if self.pool_size is None:
            object.__setattr__(self, "pool_size", preset["pool_size"])
        _coerce_fields(self)
        for name in ("input_shape", "output_shape"):
            shape = getattr(self, name)
            _check(
                shape is None
                or (len(shape) == 3 and all(n is None or n >= 1 for n in shape) and shape[2]),
                f"model.{name} must be (height, width, channels) with sizes >= 1 or null, "
                f"got {None if shape is None else list(shape)}",
            )
        _check_counts("model", fc_layers=self.fc_layers, memory_limit=self.memory_limit)
        _check_counts(
            "model", iterations=self.iterations, unrolled_channels=self.unrolled_channels,
            primal_memory=self.primal_memory, dual_memory=self.dual_memory,
        )  # fmt: skip
        _check(
            self.fc_learning_rate_scale > 0,
            f"model.fc_learning_rate_scale must be > 0, got {self.fc_learning_rate_scale}",
        )
        _check(
            0 < self.fbp_frequency_scaling <= 1,
            f"model.fbp_frequency_scaling must be in (0, 1], got {self.fbp_frequency_scaling}",
        )
        _check(self.pool_size >= 0, f"model.pool_size must be >= 0, got {self.pool_size}")
        if self.seed is not None:
            _check(0 <= self.seed < 2**31, f"model.seed must be in [0, 2**31), got {self.seed}")
