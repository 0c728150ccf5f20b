"""AUTOMAP: reconstruction by fully connected domain transform + convolutions.

Zhu et al. (2018), "Image reconstruction by domain-transform manifold
learning" (Nature 555, 487-492). Each output pixel of a reconstruction depends
on the whole sinogram (or k-space), so fully connected layers map the input
domain onto the image grid before a small convolutional refinement. The FC
layers are what limits the size: an ``n x n`` image needs ``n**4`` weights per
layer (268 M for 128 x 128), so the model reports its memory need before
building and refuses a configuration that does not fit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import keras
import numpy as np

from kerastrans.config import Window
from kerastrans.models.pix2pix import Pix2Pix
from kerastrans.nets import ScaledDense

__all__ = [
    "AUTOMAP_REFINEMENT",
    "Automap",
    "MemoryEstimate",
    "automap_memory_estimate",
    "available_memory",
]

logger = logging.getLogger(__name__)

#: Default convolutional refinement after the FC layers: a 5 x 5 convolution to
#: 64 channels, one residual block, a 5 x 5 convolution to the image, no
#: normalisation and a linear output (as AUTOMAP's two convolutions + deconvolution).
AUTOMAP_REFINEMENT = MappingProxyType(
    {
        "channels": (64,),
        "stem_kernel": 5,
        "residual_blocks": 1,
        "norm": "none",
        "skip": "none",
        "out_activation": "none",
    }
)

#: Bytes per FC parameter in training: float32 weight, gradient and two Adam moments (16),
#: plus three transient float32 copies at the peak (the initialiser's draw, the optimizer's
#: update temporaries): `benchmarks/automap_memory.py` measured peaks of 21-29 bytes per
#: parameter on the CPU, so 28 keeps the estimate an upper bound.
_TRAINING_BYTES = 7 * 4
#: Memory of a model's build and first traced step that does not scale with the FC layers
#: (measured 36 MB for a tiny AUTOMAP).
_FIXED_BYTES = 64 * 2**20
_GIB = 2**30


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Size of AUTOMAP's fully connected layers and the memory to train them.

    Attributes:
        parameters: Weights and biases of the FC layers.
        bytes: Peak training memory of those parameters (float32 weights,
            gradients, two Adam moments and transient copies, plus a 16-bit
            compute copy under mixed precision), of their activations and of
            a fixed part for the build and the traced step.
    """

    parameters: int
    bytes: int

    def __str__(self) -> str:
        return (
            f"AUTOMAP FC layers: {self.parameters:,} parameters, about "
            f"{self.bytes / _GIB:.2f} GiB to train"
        )


def automap_memory_estimate(
    input_shape: Sequence[int],
    image_shape: Sequence[int],
    fc_layers: int = 2,
    batch_size: int = 1,
    dtype: str = "float32",
) -> MemoryEstimate:
    """Estimate the FC parameters and their training memory, without building anything.

    Args:
        input_shape: ``(height, width, channels)`` of the sinogram or k-space.
        image_shape: ``(height, width, channels)`` of the image.
        fc_layers: Number of FC layers (the first maps the input to the image
            grid, the others map the grid to itself).
        batch_size: Images per step (activations scale with it).
        dtype: Precision name; mixed precision adds a 16-bit copy of the weights.

    Returns:
        The estimate.

    >>> str(automap_memory_estimate((30, 183, 1), (128, 128, 1)))
    'AUTOMAP FC layers: 358,416,384 parameters, about 9.41 GiB to train'
    """
    inputs, outputs = math.prod(input_shape), math.prod(image_shape)
    parameters = inputs * outputs + outputs + (fc_layers - 1) * (outputs * outputs + outputs)
    per_parameter = _TRAINING_BYTES + (2 if dtype.startswith("mixed") else 0)
    activations = 4 * 2 * batch_size * (inputs + fc_layers * outputs)  # values and gradients
    return MemoryEstimate(parameters, parameters * per_parameter + activations + _FIXED_BYTES)


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or `None` where there is none."""
    try:
        lines = meminfo.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


@keras.saving.register_keras_serializable(package="kerastrans")
class Automap(Pix2Pix):
    """Sinogram (or k-space) -> image with FC layers then convolutions.

    A paired model: its train and test steps are those of `Pix2Pix`, with
    the L2 loss of the paper and no discriminator by default (set
    ``adversarial_weight`` and ``discriminator`` for an adversarial one; it
    judges images alone, as the input is in another domain).

    Args:
        input_shape: ``(height, width, channels)`` of the input, e.g.
            ``(angles, detectors, 1)``, or k-space with real and imaginary
            parts as 2 channels.
        image_shape: ``(height, width, channels)`` of the reconstruction.
        fc_layers: Number of FC layers (2 in the paper).
        fc_activation: Activation of the FC layers (``"tanh"`` in the paper).
        fc_learning_rate_scale: The FC layers' learning rate relative to the
            optimizer's (1). Adam moves each weight by about the rate per step,
            so FC layers started at FBP keep their start with a small scale
            (e.g. 0.02) while the convolutions train at the full rate
            (`kerastrans.nets.ScaledDense`).
        refinement: Options of `kerastrans.nets.Generator` for the
            convolutional part, over `AUTOMAP_REFINEMENT`.
        memory_limit: Bytes the model may use; default ``MemAvailable`` from
            ``/proc/meminfo``.
        fbp_init: Start the domain transform at FBP: a dict with
            ``geometry`` (`GeometrySpec` dict of the sinograms),
            ``sinogram_window`` and ``image_window`` (`Window`s or their
            dicts ``{"base", "range"}``, stored as dicts)
            and optionally ``filter_type`` (``"Hann"``) and
            ``frequency_scaling`` (1.0). The first FC layer
            then starts as the geometry's dense FBP matrix between the
            windowed domains (`kerastrans.tomo.tf_operators.dense_fbp_matrix`),
            further FC layers as the identity; needs ``fc_activation="none"``.
            The convolutions then add a correction to that image
            (``residual_output``, unless ``refinement`` sets it) whose last layer
            starts at zero, so the untrained model outputs the FBP image.
        l2_weight: Weight of the L2 loss (1).
        l1_weight: Weight of the L1 loss (0).
        adversarial_weight: Weight of an adversarial term (0: none).
        **kwargs: Further options of `Pix2Pix` (losses, ``discriminator``,
            ``seed``, ``dtype``, ...).

    Attributes:
        memory_estimate: The `MemoryEstimate` checked before building.

    Raises:
        ValueError: If the estimate exceeds the memory limit (the message
            gives both), or for bad options.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        image_shape: Sequence[int],
        fc_layers: int = 2,
        *,
        fc_activation: str = "tanh",
        fc_learning_rate_scale: float = 1.0,
        refinement: Mapping | None = None,
        memory_limit: int | None = None,
        fbp_init: Mapping | None = None,
        l2_weight: float = 1.0,
        l1_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        name: str = "automap",
        **kwargs,
    ):
        input_shape, image_shape = tuple(input_shape), tuple(image_shape)
        for argument, shape in (("input_shape", input_shape), ("image_shape", image_shape)):
            if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
                raise ValueError(
                    f"{argument} must be (height, width, channels) of positive "
                    f"integers, got {shape}"
                )
        if int(fc_layers) != fc_layers or fc_layers < 1:
            raise ValueError(f"fc_layers must be an integer >= 1, got {fc_layers}")
        dtype = kwargs.get("dtype") or keras.config.dtype_policy().name
        estimate = automap_memory_estimate(input_shape, image_shape, fc_layers, dtype=dtype)
        logger.info("%s", estimate)
        limit, source = memory_limit, "memory_limit"
        if limit is None:
            limit, source = available_memory(), "MemAvailable in /proc/meminfo"
        if limit is not None and estimate.bytes > limit:
            raise ValueError(
                f"{estimate}, but only {limit / _GIB:.2f} GiB are available ({source}); "
                "use a smaller image or input, fewer fc_layers, or more memory"
            )
        self.image_shape = image_shape
        self.fc_layers = int(fc_layers)
        self.fc_activation = fc_activation
        self.fc_learning_rate_scale = float(fc_learning_rate_scale)
        self.refinement = dict(refinement or {})
        self.memory_limit = memory_limit
        self.fbp_init = None if fbp_init is None else _fbp_options(fbp_init)
        if self.fbp_init is not None and fc_activation != "none":
            raise ValueError(
                "fbp_init needs fc_activation='none' (a linear domain transform is FBP), "
                f"got fc_activation={fc_activation!r}"
            )
        generator = {
            **AUTOMAP_REFINEMENT,
            "residual_output": self.fbp_init is not None,
            **self.refinement,
            "input_fc_layers": self.fc_layers,
            "fc_shape": image_shape,
            "fc_activation": fc_activation,
            "fc_learning_rate_scale": self.fc_learning_rate_scale,
        }
        super().__init__(
            input_shape,
            image_shape[2],
            generator,
            conditional=False,
            l2_weight=l2_weight,
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            name=name,
            **kwargs,
        )
        self.memory_estimate = estimate
        if self.fbp_init is not None:
            self._start_from_fbp(input_shape, image_shape)

    def _start_from_fbp(self, input_shape: tuple, image_shape: tuple) -> None:
        """Set the FC layers to the windowed FBP (first) and the identity (others).

        With ``residual_output`` (the generator's last convolution starts at
        zero) the model starts as FBP and its convolutions learn a correction.
        """
        from kerastrans.tomo.geometry import GeometrySpec
        from kerastrans.tomo.tf_operators import dense_fbp_matrix

        options = self.fbp_init
        geometry = GeometrySpec.from_dict(options["geometry"])
        want = ((*geometry.sinogram_shape, 1), (*geometry.image_shape, 1))
        if (input_shape, image_shape) != want:
            raise ValueError(
                f"fbp_init: the geometry needs input_shape {want[0]} and image_shape {want[1]}, "
                f"got {input_shape} and {image_shape}"
            )
        sinograms, images = (Window.from_value(options[key]) for key in _FBP_WINDOWS)
        matrix = dense_fbp_matrix(
            geometry, options.get("filter_type", "Hann"), options.get("frequency_scaling", 1.0)
        )
        # Windowed in: s = h_in (x + 1) + b_in; windowed out: (D s - b_out) / h_out - 1.
        half_in, half_out = sinograms.range / 2, images.range / 2
        kernel = matrix * (half_in / half_out)
        bias = ((half_in + sinograms.base) * matrix.sum(axis=0) - images.base) / half_out - 1.0
        units = kernel.shape[1]
        identity = [np.eye(units, dtype="float32"), np.zeros(units, "float32")]
        for index in range(self.fc_layers):
            weights = [kernel, bias.astype("float32")] if index == 0 else identity
            layer = self.generator.encoder.get_layer(f"fc{index}")
            if isinstance(layer, ScaledDense):
                layer.set_effective_weights(weights)
            else:
                layer.set_weights(weights)

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("generator", "output_channels", "conditional"):
            del config[key]
        config.update(
            {
                "image_shape": self.image_shape,
                "fc_layers": self.fc_layers,
                "fc_activation": self.fc_activation,
                "fc_learning_rate_scale": self.fc_learning_rate_scale,
                "refinement": self.refinement,
                "memory_limit": self.memory_limit,
                "fbp_init": self.fbp_init,
            }
        )
        return config


#: The windows of AUTOMAP's ``fbp_init`` option.
_FBP_WINDOWS = ("sinogram_window", "image_window")


def _fbp_options(fbp_init: Mapping) -> dict:
    """``fbp_init`` with its windows checked and stored as dicts (serialisable)."""
    options = dict(fbp_init)
    for key in (key for key in _FBP_WINDOWS if key in options):
        options[key] = dataclasses.asdict(Window.from_value(options[key], f"fbp_init {key}"))
    return options
