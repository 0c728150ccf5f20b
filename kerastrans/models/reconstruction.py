"""Reconstruction models: sinogram -> image with the ray transform inside the network.

Paired models whose train and test steps are those of `Pix2Pix` (pixel
losses, optional adversarial term from a PatchGAN that judges images alone,
as for `Automap`), with a physics-aware generator from
`kerastrans.nets.reconstruction`:

- `LearnedPrimalDual` (``lpd``, Adler & Oktem 2018),
- `LearnedGradientDescent` (``lgd``, Adler & Oktem 2017),
- `FBPUNetModel` (``fbp-unet``: FBP then a U-Net).

Batches are ``(sinograms, images)`` windowed to [-1, 1]; the windows of the
dataset are part of the config, since the operator works in physical units.
The L2 loss is the default (the papers train on the mean squared error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import keras

from kerastrans.config import Window
from kerastrans.models.pix2pix import Pix2Pix
from kerastrans.nets.reconstruction import FBPUNet, UnrolledNetwork
from kerastrans.tomo.geometry import GeometrySpec

__all__ = ["FBPUNetModel", "LearnedGradientDescent", "LearnedPrimalDual", "ReconstructionModel"]


class ReconstructionModel(Pix2Pix):
    """Base of the reconstruction models (not used on its own).

    Args:
        geometry: The scan geometry (`GeometrySpec` or its dict), e.g. from
            `kerastrans.data.geometry.geometry_from_dataset`.
        sinogram_window: `Window` (or dict) of the sinograms.
        image_window: `Window` (or dict) of the images.
        network: Options of the generator network (see the subclasses).
        l2_weight: Weight of the L2 loss (1).
        l1_weight: Weight of the L1 loss (0).
        adversarial_weight: Weight of an adversarial term (0: none).
        **kwargs: Further options of `Pix2Pix` (``discriminator``,
            ``adversarial``, ``tv_weight``, ``seed``, ``dtype``, ...).

    Raises:
        ValueError: For ``latent_weight`` (these networks have no latent
            code) or a bad network option.
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        sinogram_window: Window | Mapping[str, float],
        image_window: Window | Mapping[str, float],
        network: Mapping[str, Any] | None = None,
        *,
        l2_weight: float = 1.0,
        l1_weight: float = 0.0,
        adversarial_weight: float = 0.0,
        name: str = "reconstruction",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("latent_weight"):
            raise ValueError(
                f"latent_weight applies to encoder-decoder generators, got "
                f"latent_weight={kwargs['latent_weight']} for {type(self).__name__}"
            )
        for key in ("input_shape", "output_channels", "generator", "conditional"):
            kwargs.pop(key, None)  # fixed by the geometry (present in Pix2Pix configs)
        if isinstance(geometry, Mapping):
            geometry = GeometrySpec.from_dict(geometry)
        self.geometry = geometry
        self.windows = (
            Window.from_value(sinogram_window, "sinogram_window"),
            Window.from_value(image_window, "image_window"),
        )
        self.network_options = dict(network or {})
        super().__init__(
            (*geometry.sinogram_shape, 1),
            1,
            conditional=False,
            l2_weight=l2_weight,
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            name=name,
            **kwargs,
        )

    #: The generator's class and the options the subclass fixes.
    network_class: type = UnrolledNetwork
    fixed_options: Mapping[str, Any] = MappingProxyType({})

    def _make_generator(self, input_shape: tuple) -> keras.Model:
        clash = sorted(set(self.network_options) & set(self.fixed_options))
        if clash:
            raise ValueError(f"network options {clash} are fixed by {type(self).__name__}")
        return self.network_class(
            self.geometry,
            *self.windows,
            name="generator",
            dtype=self.dtype_policy.name,
            **self.fixed_options,
            **self.network_options,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("input_shape", "output_channels", "generator", "conditional"):
            del config[key]
        config.update(
            geometry=self.geometry.to_dict(),
            sinogram_window=dataclasses.asdict(self.windows[0]),
            image_window=dataclasses.asdict(self.windows[1]),
            network=self.network_options,
        )
        return config


@keras.saving.register_keras_serializable(package="kerastrans")
class LearnedPrimalDual(ReconstructionModel):
    """Learned primal-dual reconstruction (Adler & Oktem 2018, IEEE TMI 37(6)).

    ``network`` options (`kerastrans.nets.reconstruction.UnrolledReconstruction`):
    ``iterations`` (10), ``channels`` (32), ``primal_memory`` (5),
    ``dual_memory`` (5), ``initial`` (``"zeros"`` or ``"fbp"``),
    ``memory_budget``. See `ReconstructionModel` for the other arguments.

    >>> from kerastrans.config import Window
    >>> model = LearnedPrimalDual(GeometrySpec((32, 32), num_angles=8), Window(0, 40),
    ...                           Window(0, 1), {"iterations": 2, "channels": 8})
    >>> model.compile()
    >>> tuple(model.predict(keras.ops.zeros((1, 8, 47, 1)), verbose=0).shape)
    (1, 32, 32, 1)
    """

    fixed_options = MappingProxyType({"method": "lpd"})

    def __init__(self, *args: Any, name: str = "lpd", **kwargs: Any) -> None:
        super().__init__(*args, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerastrans")
class LearnedGradientDescent(ReconstructionModel):
    """Learned gradient descent (Adler & Oktem 2017, Inverse Problems 33(12)).

    ``network`` options as for `LearnedPrimalDual` (``dual_memory`` unused).
    """

    fixed_options = MappingProxyType({"method": "lgd"})

    def __init__(self, *args: Any, name: str = "lgd", **kwargs: Any) -> None:
        super().__init__(*args, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerastrans")
class FBPUNetModel(ReconstructionModel):
    """FBP followed by a U-Net (`kerastrans.nets.reconstruction.FBPUNet`).

    ``network`` options: ``unet`` (options of `kerastrans.nets.Generator`),
    ``filter_type``, ``frequency_scaling``, ``memory_budget``. See
    `ReconstructionModel` for the other arguments.
    """

    network_class = FBPUNet

    def __init__(self, *args: Any, name: str = "fbp_unet", **kwargs: Any) -> None:
        super().__init__(*args, name=name, **kwargs)
