"""Reconstruction networks that use the physics: sinograms in, images out.

All take windowed sinograms in [-1, 1] (``N x angles x detectors x 1``) and
return windowed images in [-1, 1], like every generator of the package, and
contain the TF ray transform of their geometry
(`kerastrans.tomo.tf_operators`), so they export as plain SavedModels. The
windows of the two domains are part of their config: the operator acts on
physical units, the networks on the [-1, 1] scale.

- `FBPUNet`: FBP (`WindowedFBP`), then the U-Net `kerastrans.nets.Generator`.
- `UnrolledNetwork`: learned primal-dual (Adler & Oktem 2018, "Learned
  primal-dual reconstruction", IEEE TMI 37(6)) or learned gradient descent
  (Adler & Oktem 2017, "Solving ill-posed inverse problems using iterative
  deep neural networks", Inverse Problems 33(12)), unrolled for a fixed
  number of iterations with a small CNN per iteration.

Both have ``encode``/``decode``/``output_size`` as `kerastrans.nets.Generator`
has, so the paired models' train steps run them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from kerastrans.config import Window
from kerastrans.nets.generators import Generator
from kerastrans.nets.reconstruction_layers import (
    METHODS,
    UnrolledReconstruction,
    WindowedFBP,
    as_geometry,
)
from kerastrans.precision import resolve_policy
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.tf_operators import DEFAULT_MEMORY_BUDGET

__all__ = ["METHODS", "FBPUNet", "UnrolledNetwork", "UnrolledReconstruction", "WindowedFBP"]


class _SinogramNetwork(keras.Model):
    """What the paired train steps need from a generator: encode, decode, output size."""

    def encode(self, sinograms: Any, training: bool = False) -> list:
        """``[image]``: these networks have no latent code apart from their output."""
        return [self(sinograms, training=training)]

    def decode(self, features: list, training: bool = False) -> Any:
        """The image `encode` computed."""
        return features[-1]

    def output_size(self, input_shape: Sequence[int | None]) -> tuple[int, int]:
        """Height and width of the images (the geometry's grid)."""
        return tuple(self._config["geometry"]["image_shape"])

    def get_config(self) -> dict:
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _inputs(geometry: GeometrySpec) -> Any:
    return keras.Input((*geometry.sinogram_shape, 1), name="sinogram")


@keras.saving.register_keras_serializable(package="kerastrans")
class UnrolledNetwork(_SinogramNetwork):
    """Learned primal-dual or gradient descent as a generator (see `UnrolledReconstruction`).

    Args:
        geometry: The scan geometry (`GeometrySpec` or its dict).
        sinogram_window: `Window` (or dict) of the input sinograms.
        image_window: `Window` (or dict) of the output images.
        name: Model name.
        dtype: Precision policy; `None`: the global one.
        **options: `UnrolledReconstruction` options (``method``,
            ``iterations``, ``channels``, ``primal_memory``, ``dual_memory``,
            ``initial``, ``memory_budget``).

    >>> import numpy as np
    >>> from kerastrans.config import Window
    >>> net = UnrolledNetwork(GeometrySpec((32, 32), num_angles=8), Window(0, 40),
    ...                       Window(0, 1), iterations=2, channels=8)
    >>> tuple(net(np.zeros((1, 8, 47, 1), "float32")).shape)
    (1, 32, 32, 1)
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        sinogram_window: Window | Mapping[str, float],
        image_window: Window | Mapping[str, float],
        name: str = "unrolled",
        dtype: str | None = None,
        **options: Any,
    ) -> None:
        geometry = as_geometry(geometry)
        policy = resolve_policy(dtype)
        core = UnrolledReconstruction(
            geometry, sinogram_window, image_window, dtype=policy, name="unrolled", **options
        )
        inputs = _inputs(geometry)
        super().__init__(inputs=inputs, outputs=core(inputs), name=name)
        self._config = {
            "geometry": geometry.to_dict(),
            **{key: value for key, value in core.get_config().items() if key in _CORE_KEYS},
            "name": name,
            "dtype": policy.name,
        }


_CORE_KEYS = (
    "sinogram_window",
    "image_window",
    "method",
    "iterations",
    "channels",
    "primal_memory",
    "dual_memory",
    "initial",
    "memory_budget",
)


@keras.saving.register_keras_serializable(package="kerastrans")
class FBPUNet(_SinogramNetwork):
    """FBP followed by the U-Net generator (Jin et al. 2017, "Deep convolutional
    neural network for inverse problems in imaging", IEEE TIP 26(9)).

    Args:
        geometry: The scan geometry (`GeometrySpec` or its dict).
        sinogram_window: `Window` (or dict) of the input sinograms.
        image_window: `Window` (or dict) of the output images; the FBP image
            is windowed with it before the U-Net.
        unet: Options of `kerastrans.nets.Generator` (``channels``, ...).
            ``kerastrans fit --model fbp-unet`` passes ``residual_output=True``
            and ``out_activation="none"``: the U-Net adds a correction to
            the FBP image, which starts at zero (FBPConvNet's residual).
        filter_type: FBP filter, default ``"Hann"``.
        frequency_scaling: FBP cut-off, default 1.0.
        memory_budget: Bytes the operator's sparse matrix may take.
        name: Model name.
        dtype: Precision policy; `None`: the global one.
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        sinogram_window: Window | Mapping[str, float],
        image_window: Window | Mapping[str, float],
        unet: Mapping[str, Any] | None = None,
        filter_type: str = "Hann",
        frequency_scaling: float = 1.0,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        name: str = "fbp_unet",
        dtype: str | None = None,
    ) -> None:
        geometry = as_geometry(geometry)
        policy = resolve_policy(dtype)
        fbp = WindowedFBP(
            geometry,
            sinogram_window,
            image_window,
            filter_type,
            frequency_scaling,
            memory_budget,
            dtype=policy,
            name="fbp",
        )
        unet = dict(unet or {})
        generator = Generator((*geometry.image_shape, 1), 1, name="unet", dtype=policy.name, **unet)
        inputs = _inputs(geometry)
        super().__init__(inputs=inputs, outputs=generator(fbp(inputs)), name=name)
        self._config = {
            "geometry": geometry.to_dict(),
            **{key: value for key, value in fbp.get_config().items() if key in _FBP_KEYS},
            "unet": unet,
            "name": name,
            "dtype": policy.name,
        }


_FBP_KEYS = ("sinogram_window", "image_window", "filter_type", "frequency_scaling", "memory_budget")
