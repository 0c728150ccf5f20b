"""An ODL operator inside a TensorFlow graph, differentiable through its adjoint.

`apply_operator` runs an ODL operator (ray transform, back-projection, FBP) on
a channels-last batch ``(batch, *domain.shape, channels)`` with
``tf.numpy_function``; ``tf.custom_gradient`` routes the gradient through the
operator's adjoint, which is exact for these linear operators. (TensorFlow
differentiates plain sums, so the adjoint used is ODL's ``operator.adjoint``
rescaled by the ratio of the spaces' cell weights, see
`kerastrans.tomo.operators.transpose`; for 1 mm pixels the two are equal.)
Static shapes are kept, so Keras can infer the output shape of a model.

`RayTransformLayer` is the Keras face of it: it stores a `GeometrySpec` (not
an ODL object) in its config, so a model that contains it saves and reloads.
Its ``backend`` picks the operator: ``"tf"`` is ASTRA's system matrix as a
sparse tensor (`kerastrans.tomo.tf_operators`: TensorFlow ops only, so the
model exports to a standalone SavedModel), ``"odl"`` the ``numpy_function``
above (runs in the Python process: it works in ``fit``/``predict`` but cannot
be exported), ``"auto"`` the TF operator where its matrix fits the memory
budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.matrix import DEFAULT_MEMORY_BUDGET, check_budget, check_memory
from kerastrans.tomo.operators import (
    _check_fbp_options,
    apply_batch,
    fbp,
    ray_transform,
    transpose,
)
from kerastrans.tomo.tf_operators import tf_fbp, tf_ray_transform

__all__ = ["BACKENDS", "MODES", "RayTransformLayer", "apply_operator"]

#: Operators a `RayTransformLayer` can run: TF sparse matrix, ODL/ASTRA call, or
#: the TF one where its matrix fits the memory budget.
BACKENDS = ("auto", "tf", "odl")

#: What a `RayTransformLayer` computes: images -> sinograms, sinograms -> images
#: by back-projection, or sinograms -> images by filtered back-projection.
MODES = ("forward", "adjoint", "fbp")


def apply_operator(x: Any, operator: Any, *, threads: int | None = None) -> Any:
    """Apply an ODL operator to a channels-last batch, with the adjoint as gradient.

    Args:
        x: Tensor ``(batch, *operator.domain.shape, channels)``; cast to float32.
            Each channel is transformed separately.
        operator: A linear ODL operator with an ``adjoint`` (e.g. from
            `kerastrans.tomo.operators.ray_transform`).
        threads: Worker threads per call, see `kerastrans.tomo.operators.apply_batch`.

    Returns:
        Float32 tensor ``(batch, *operator.range.shape, channels)``. Its
        gradient with respect to ``x`` is the operator's adjoint
        (`kerastrans.tomo.operators.transpose`) applied to the upstream
        gradient, and so on for higher orders.

    Raises:
        ValueError: If the static shape of ``x`` does not fit the operator.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    in_shape = tuple(operator.domain.shape)
    out_shape = tuple(operator.range.shape)
    if x.shape.rank is not None and (
        x.shape.rank != len(in_shape) + 2
        or not x.shape[1:-1].is_compatible_with(tf.TensorShape(in_shape))
    ):
        raise ValueError(
            f"operator input must have shape (batch, {', '.join(map(str, in_shape))}, "
            f"channels), got {tuple(x.shape)}"
        )

    def run(array: np.ndarray) -> np.ndarray:
        # (batch, *in, channels) -> (batch, channels, *in): a view, no copy for one channel.
        result = apply_batch(operator, np.moveaxis(array, -1, 1), threads=threads)
        return np.ascontiguousarray(np.moveaxis(result, 1, -1))

    @tf.custom_gradient
    def forward(inputs):
        outputs = tf.numpy_function(run, [inputs], tf.float32, stateful=False)
        outputs.set_shape(tf.TensorShape([inputs.shape[0], *out_shape, inputs.shape[-1]]))

        def grad(upstream):
            return apply_operator(upstream, transpose(operator), threads=threads)

        return outputs, grad

    return forward(x)


@keras.saving.register_keras_serializable(package="kerastrans")
class RayTransformLayer(keras.layers.Layer):
    """Ray transform, back-projection or FBP of a tomography geometry as a Keras layer.

    Gradients flow through the operator's adjoint, so the layer can sit inside
    a trained model (data consistency, unrolled reconstruction, a sinogram
    loss). It has no weights. Needs the TensorFlow backend.

    Args:
        geometry: The scan geometry, a `GeometrySpec` or its ``to_dict()``.
        mode: ``"forward"`` (images -> sinograms), ``"adjoint"`` (sinograms
            -> back-projected images) or ``"fbp"`` (sinograms -> FBP images).
            Default ``"forward"``.
        filter_type: FBP filter (``mode="fbp"``), default ``"Hann"``.
        frequency_scaling: FBP cut-off in ``(0, 1]``, default 1.0.
        impl: ASTRA back-end of the ``"odl"`` backend, ``None`` (default)
            picks CUDA where available. The ``"tf"`` backend is ASTRA's CPU
            projector, so ``impl="astra_cuda"`` needs ``backend="odl"`` (and
            makes ``"auto"`` pick it).
        threads: Worker threads over the batch (``"odl"`` backend);
            ``None`` = one per CPU core.
        backend: ``"auto"`` (default), ``"tf"`` or ``"odl"``, see the module
            docstring. `backend_used` says which one runs.
        memory_budget: Bytes the sparse matrix of the TF operator may take
            (an upper bound is estimated before building it, see
            `kerastrans.tomo.tf_operators.matrix_bytes`); default 1 GiB.
        **kwargs: Base `keras.layers.Layer` arguments (``name``, ...).

    Inputs: float tensor ``(batch, rows, columns, channels)`` on the
    operator's domain grid (the image grid, or ``(num_angles, det_shape)``).

    >>> spec = GeometrySpec((32, 32), num_angles=8)
    >>> layer = RayTransformLayer(spec, impl="astra_cpu")
    >>> tuple(layer(np.zeros((2, 32, 32, 1), "float32")).shape)
    (2, 8, 47, 1)

    Reference: Adler & Oktem, "Learned primal-dual reconstruction", IEEE TMI
    37(6), 2018 (ODL operators as network layers).
    """

    def __init__(
        self,
        geometry: GeometrySpec | Mapping[str, Any],
        mode: str = "forward",
        filter_type: str = "Hann",
        frequency_scaling: float = 1.0,
        impl: str | None = None,
        threads: int | None = None,
        backend: str = "auto",
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                f"RayTransformLayer needs the TensorFlow backend, got {keras.backend.backend()!r}"
            )
        if isinstance(geometry, Mapping):
            geometry = GeometrySpec.from_dict(geometry)
        if not isinstance(geometry, GeometrySpec):
            raise TypeError(f"geometry must be a GeometrySpec or a dict, got {type(geometry)}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        _check_fbp_options(filter_type, frequency_scaling)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        check_budget(memory_budget)
        self.geometry = geometry
        self.mode = mode
        self.filter_type = filter_type
        self.frequency_scaling = float(frequency_scaling)
        self.impl = impl
        self.threads = threads
        self.backend = backend
        self.memory_budget = memory_budget
        self.backend_used = self._choose_backend()
        self._operator = self._make_operator()

    @property
    def operator(self) -> Any:
        """The operator this layer applies: a TF operator or an ODL one (`backend_used`)."""
        return self._operator

    def _choose_backend(self) -> str:
        """``"tf"`` or ``"odl"``; refuses ``"tf"`` over the memory budget or on CUDA."""
        if self.backend == "odl":
            return "odl"
        if self.impl == "astra_cuda":
            if self.backend == "tf":
                raise ValueError(
                    "backend='tf' is ASTRA's CPU projector matrix; impl='astra_cuda' needs "
                    "backend='odl'"
                )
            return "odl"
        try:
            check_memory(self.geometry, self.memory_budget)
        except ValueError:
            if self.backend == "tf":
                raise
            return "odl"
        return "tf"

    def _make_operator(self) -> Any:
        if self.backend_used == "tf":
            forward = tf_ray_transform(self.geometry, memory_budget=self.memory_budget)
            if self.mode == "fbp":
                return tf_fbp(
                    forward,
                    filter_type=self.filter_type,
                    frequency_scaling=self.frequency_scaling,
                )
            return forward if self.mode == "forward" else forward.adjoint
        forward = ray_transform(self.geometry, impl=self.impl)
        if self.mode == "forward":
            return forward
        if self.mode == "adjoint":
            return forward.adjoint
        return fbp(forward, filter_type=self.filter_type, frequency_scaling=self.frequency_scaling)

    def build(self, input_shape: tuple) -> None:
        in_shape = tuple(self.operator.domain.shape)
        if len(input_shape) != 4 or any(
            got is not None and got != want
            for got, want in zip(input_shape[1:3], in_shape, strict=True)
        ):
            raise ValueError(
                f"RayTransformLayer(mode={self.mode!r}) expects inputs of shape "
                f"(batch, {in_shape[0]}, {in_shape[1]}, channels), got {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        if self.backend_used == "tf":
            return self.operator(inputs)
        return apply_operator(inputs, self.operator, threads=self.threads)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.operator.range.shape, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            geometry=self.geometry.to_dict(),
            mode=self.mode,
            filter_type=self.filter_type,
            frequency_scaling=self.frequency_scaling,
            impl=self.impl,
            threads=self.threads,
            backend=self.backend,
            memory_budget=self.memory_budget,
        )
        return config
