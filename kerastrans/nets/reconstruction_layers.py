"""The layers of the reconstruction networks: FBP and unrolled schemes between windows.

Both take windowed sinograms in [-1, 1] and return windowed images in [-1,
1]; the TF ray transform of their geometry (`kerastrans.tomo.tf_operators`)
acts on physical units in between.

- `WindowedFBP`: filtered back-projection.
- `UnrolledReconstruction`: learned primal-dual or learned gradient descent
  (Adler & Oktem 2018, 2017), unrolled for a fixed number of iterations.

`kerastrans.nets.reconstruction` builds the networks from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import ops

from kerastrans.config import Window
from kerastrans.nets.blocks import check_choice, check_count
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.tf_operators import (
    DEFAULT_MEMORY_BUDGET,
    operator_norm,
    system_matrix,
    tf_fbp,
    tf_ray_transform,
)

__all__ = [
    "INITIAL",
    "METHODS",
    "PReLU",
    "UnrolledReconstruction",
    "WindowedFBP",
    "as_geometry",
]

#: Unrolled schemes: learned primal-dual and learned gradient descent.
METHODS = ("lpd", "lgd")
#: Initial image of an unrolled scheme.
INITIAL = ("zeros", "fbp")


def _window(value: Window | Mapping[str, float], argument: str) -> Window:
    if isinstance(value, Window):
        return value
    if isinstance(value, Mapping):
        return Window(**value)
    raise TypeError(f"{argument} must be a Window or a dict with base and range, got {value!r}")


def as_geometry(value: GeometrySpec | Mapping[str, Any]) -> GeometrySpec:
    """``value`` as a `GeometrySpec` (it may be one or its dict, as in a saved config)."""
    if isinstance(value, GeometrySpec):
        return value
    if isinstance(value, Mapping):
        return GeometrySpec.from_dict(value)
    raise TypeError(f"geometry must be a GeometrySpec or a dict, got {type(value)}")


class PReLU(keras.layers.PReLU):
    """`keras.layers.PReLU` as one select: ``x`` where positive, ``alpha * x`` elsewhere.

    Keras computes ``relu(x) - alpha * relu(-x)``: five element-wise passes
    over the activation, and more in the gradient. In the unrolled networks,
    whose activations are as large as their 3 x 3 convolutions are cheap, those
    passes took a quarter to a third of the train step's thread time on a CPU
    (``benchmarks/profile_ops.py --kind lpd``); the select makes that step 20 %
    shorter. Same weights, same values (the gradient at exactly 0 is ``alpha``
    instead of 0). The class keeps Keras' name: a ``.keras`` file stores a
    layer's weights under its class name, so runs saved with
    `keras.layers.PReLU` still load.
    """

    def call(self, inputs: Any) -> Any:
        return ops.where(inputs > 0, inputs, self.alpha * inputs)


class _Domains:
    """The affine maps between windowed [-1, 1] values and physical units of both domains."""

    def __init__(self, sinogram_window: Window, image_window: Window) -> None:
        self.sinogram_window = sinogram_window
        self.image_window = image_window

    @staticmethod
    def physical(values: Any, window: Window) -> Any:
        return (ops.cast(values, "float32") + 1.0) * (window.range / 2) + window.base

    @staticmethod
    def windowed(values: Any, window: Window) -> Any:
        return (values - window.base) / (window.range / 2) - 1.0


@keras.saving.register_keras_serializable(package="kerastrans")
class WindowedFBP(keras.layers.Layer):
    """FBP from windowed sinograms to windowed images (no weights).

    Args:
        geometry: The scan geometry (`GeometrySpec` or its dict).
        sinogram_window: `Window` of the sinograms (or its dict).
        image_window: `Window` of the images (or its dict).
        filter_type: FBP filter, default ``"Hann"``.
        frequency_scaling: FBP cut-off in ``(0, 1]``, default 1.0.
        memory_budget: Bytes the operator's sparse matrix may take.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        sinogram_window: Window | Mapping[str, float],
        image_window: Window | Mapping[str, float],
        filter_type: str = "Hann",
        frequency_scaling: float = 1.0,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.geometry = as_geometry(geometry)
        self.domains = _Domains(
            _window(sinogram_window, "sinogram_window"), _window(image_window, "image_window")
        )
        self.filter_type = filter_type
        self.frequency_scaling = float(frequency_scaling)
        self.memory_budget = memory_budget
        self.operator = tf_fbp(
            tf_ray_transform(self.geometry, memory_budget=memory_budget),
            filter_type=filter_type,
            frequency_scaling=frequency_scaling,
        )

    def call(self, sinograms: Any) -> Any:
        domains = self.domains
        physical = domains.physical(sinograms, domains.sinogram_window)
        image = domains.windowed(self.operator(physical), domains.image_window)
        return ops.cast(image, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.geometry.image_shape, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            geometry=self.geometry.to_dict(),
            sinogram_window=dataclasses.asdict(self.domains.sinogram_window),
            image_window=dataclasses.asdict(self.domains.image_window),
            filter_type=self.filter_type,
            frequency_scaling=self.frequency_scaling,
            memory_budget=self.memory_budget,
        )
        return config


@keras.saving.register_keras_serializable(package="kerastrans")
class UnrolledReconstruction(keras.layers.Layer):
    """Learned primal-dual or learned gradient descent, unrolled, as one layer.

    The operator ``K = A / ||A||`` acts on windowed images ``x`` (physical
    images ``c + h * x``, ``h`` half the image window, ``c`` its centre): the
    data become ``g = (y - c * A 1) / (h * ||A||)`` for physical sinograms
    ``y``, so that ``K x - g`` is the normalised residual.

    * ``"lpd"``: primal ``f`` (``primal_memory`` channels) and dual ``d``
      (``dual_memory`` channels); each iteration
      ``d += Gamma_i([d, K f[1], g])``, ``f += Lambda_i([f, K* d[0]])``.
    * ``"lgd"``: ``f += Lambda_i([f, K*(K f[0] - g)])`` (the gradient of
      ``||K f - g||^2 / 2``), ``f[1:]`` being the memory.

    ``Gamma_i`` and ``Lambda_i`` are 3 x 3 CNNs of three layers:
    ``channels``, PReLU, ``channels``, PReLU, then the update. The output is
    ``f[0]``, a windowed image.

    Args:
        geometry: The scan geometry (`GeometrySpec` or its dict).
        sinogram_window: `Window` of the sinograms.
        image_window: `Window` of the images.
        method: ``"lpd"`` (default) or ``"lgd"``.
        iterations: Unrolled iterations, default 10.
        channels: Channels of the hidden convolutions, default 32.
        primal_memory: Channels of the primal (image + memory), default 5.
        dual_memory: Channels of the dual (``"lpd"``), default 5.
        initial: ``"zeros"`` (default) or ``"fbp"`` (Hann FBP) initial image.
        memory_budget: Bytes the operator's sparse matrix may take.
        **kwargs: Base layer arguments.
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        sinogram_window: Window | Mapping[str, float],
        image_window: Window | Mapping[str, float],
        method: str = "lpd",
        iterations: int = 10,
        channels: int = 32,
        primal_memory: int = 5,
        dual_memory: int = 5,
        initial: str = "zeros",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.geometry = as_geometry(geometry)
        self.domains = _Domains(
            _window(sinogram_window, "sinogram_window"), _window(image_window, "image_window")
        )
        self.method = check_choice("method", method, METHODS)
        self.initial = check_choice("initial", initial, INITIAL)
        self.iterations = check_count("iterations", iterations, 1)
        self.channels = check_count("channels", channels, 1)
        self.primal_memory = check_count("primal_memory", primal_memory, 1)
        self.dual_memory = check_count("dual_memory", dual_memory, 1)
        self.memory_budget = memory_budget
        self.ray = tf_ray_transform(self.geometry, memory_budget=memory_budget)
        self.norm = operator_norm(self.geometry)
        self.fbp = tf_fbp(self.ray) if initial == "fbp" else None
        ones = np.asarray(system_matrix(self.geometry).sum(axis=1), np.float32)
        self.projected_ones = ones.reshape(1, *self.geometry.sinogram_shape, 1)
        self.primal_nets = [
            self._cnn(self.primal_memory, f"primal_{i}") for i in range(self.iterations)
        ]
        self.dual_nets = (
            [self._cnn(self.dual_memory, f"dual_{i}") for i in range(self.iterations)]
            if self.method == "lpd"
            else []
        )

    def _cnn(self, outputs: int, name: str) -> keras.Sequential:
        def conv(filters: int, index: int) -> keras.layers.Conv2D:
            return keras.layers.Conv2D(
                filters, 3, padding="same", dtype=self.dtype_policy, name=f"{name}_conv{index}"
            )

        def prelu(index: int) -> PReLU:
            return PReLU(shared_axes=[1, 2], dtype=self.dtype_policy, name=f"{name}_prelu{index}")

        layers = [conv(self.channels, 0), prelu(0), conv(self.channels, 1), prelu(1)]
        return keras.Sequential([*layers, conv(outputs, 2)], name=name)

    def build(self, input_shape: tuple) -> None:
        rows, columns = self.geometry.image_shape
        angles, pixels = self.geometry.sinogram_shape
        for net in self.primal_nets:
            net.build((None, rows, columns, self.primal_memory + 1))
        for net in self.dual_nets:
            net.build((None, angles, pixels, self.dual_memory + 2))
        super().build(input_shape)

    def _project(self, images: Any) -> Any:
        return ops.cast(self.ray(images) / self.norm, self.compute_dtype)

    def _back_project(self, sinograms: Any) -> Any:
        return ops.cast(self.ray.adjoint(sinograms) / self.norm, self.compute_dtype)

    def call(self, sinograms: Any) -> Any:
        domains, image_window = self.domains, self.domains.image_window
        physical = domains.physical(sinograms, domains.sinogram_window)
        half, centre = image_window.range / 2, image_window.base + image_window.range / 2
        data = (physical - centre * self.projected_ones) / (half * self.norm)
        data = ops.cast(data, self.compute_dtype)
        if self.fbp is None:
            start = ops.zeros_like(self._back_project(ops.cast(data, "float32")))
        else:
            start = ops.cast(domains.windowed(self.fbp(physical), image_window), self.compute_dtype)
        primal = ops.tile(start, (1, 1, 1, self.primal_memory))
        if self.method == "lpd":
            dual = ops.tile(ops.zeros_like(data), (1, 1, 1, self.dual_memory))
            fed = min(1, self.primal_memory - 1)
            for primal_net, dual_net in zip(self.primal_nets, self.dual_nets, strict=True):
                evaluated = self._project(primal[..., fed : fed + 1])
                dual = dual + dual_net(ops.concatenate([dual, evaluated, data], axis=-1))
                back = self._back_project(dual[..., :1])
                primal = primal + primal_net(ops.concatenate([primal, back], axis=-1))
        else:
            for primal_net in self.primal_nets:
                gradient = self._back_project(self._project(primal[..., :1]) - data)
                primal = primal + primal_net(ops.concatenate([primal, gradient], axis=-1))
        return primal[..., :1]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.geometry.image_shape, 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            geometry=self.geometry.to_dict(),
            sinogram_window=dataclasses.asdict(self.domains.sinogram_window),
            image_window=dataclasses.asdict(self.domains.image_window),
            method=self.method,
            iterations=self.iterations,
            channels=self.channels,
            primal_memory=self.primal_memory,
            dual_memory=self.dual_memory,
            initial=self.initial,
            memory_budget=self.memory_budget,
        )
        return config
