"""Ray transform, back-projection and FBP as ODL operators, and their use on batches.

Operators are ODL values: `ray_transform` returns an ``odl.applications.tomo.RayTransform``
whose ``.adjoint`` is the back-projection, and `fbp` composes that adjoint with
a ramp filter (``fbp_op``). `apply_batch` runs any of them over a stack of
images or sinograms, in parallel threads: ASTRA's CPU projector releases the
GIL while it runs and is single-threaded per call.

ODL and ASTRA are imported inside the functions, never at package import.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

import numpy as np

from kerastrans.tomo.geometry import GeometrySpec, import_odl

__all__ = [
    "FILTERS",
    "IMPLS",
    "apply_batch",
    "default_impl",
    "fbp",
    "fbp_reconstruct",
    "ray_transform",
    "transpose",
]

#: ODL FBP filters, from most to least noise-sensitive.
FILTERS = ("Ram-Lak", "Shepp-Logan", "Cosine", "Hamming", "Hann")

#: ASTRA back-ends a ray transform can run on.
IMPLS = ("astra_cpu", "astra_cuda")


def default_impl() -> str:
    """Return ``"astra_cuda"`` where ASTRA sees a GPU, else ``"astra_cpu"``.

    Raises:
        RuntimeError: If ASTRA is not installed.
    """
    tomo = import_odl().applications.tomo
    if tomo.ASTRA_CUDA_AVAILABLE:
        return "astra_cuda"
    if tomo.ASTRA_AVAILABLE:
        return "astra_cpu"
    raise RuntimeError("the ray transform needs ASTRA: pip install astra-toolbox")


def _check_impl(impl: str | None) -> str:
    """Return ``impl`` (or the default) after checking that it is installed."""
    if impl is None:
        return default_impl()
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    tomo = import_odl().applications.tomo
    available = {"astra_cpu": tomo.ASTRA_AVAILABLE, "astra_cuda": tomo.ASTRA_CUDA_AVAILABLE}
    if not available[impl]:
        raise ValueError(f"impl={impl!r} is not available on this machine; use None or 'astra_cpu'")
    return impl


def ray_transform(
    geometry: GeometrySpec, *, impl: str | None = None, shape: tuple[int, int] | None = None
):
    """Return the ray transform (forward projection) of ``geometry``.

    Args:
        geometry: The scan geometry.
        impl: ASTRA back-end, ``"astra_cpu"`` or ``"astra_cuda"``; ``None``
            picks CUDA where available.
        shape: Image grid to project from, default ``geometry.image_shape``.
            A finer grid with the same extent, angles and detector (see
            `GeometrySpec.refine`) simulates data without the inverse crime.

    Returns:
        An ``odl.applications.tomo.RayTransform`` from float32 images (values
        per mm of path, e.g. attenuation in 1/mm) to sinograms of line
        integrals; its ``.adjoint`` is the back-projection.

    >>> op = ray_transform(GeometrySpec((64, 64), num_angles=10), impl="astra_cpu")
    >>> op.domain.shape, op.range.shape
    ((64, 64), (10, 93))
    """
    tomo = import_odl().applications.tomo
    impl = _check_impl(impl)
    if shape is not None and tuple(shape) != geometry.image_shape:
        geometry = geometry.refine(shape)
    return tomo.RayTransform(geometry.odl_space(), geometry.odl_geometry(), impl=impl)


def fbp(
    operator_or_geometry: Any,
    *,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    padding: bool = True,
    impl: str | None = None,
):
    """Return the filtered back-projection operator: the adjoint after a ramp filter.

    Args:
        operator_or_geometry: A ray transform from `ray_transform`, or a
            `GeometrySpec` to build one from.
        filter_type: One of `FILTERS` (default ``"Hann"``, the least noisy).
        frequency_scaling: Relative cut-off in ``(0, 1]``: frequencies above
            it are set to 0 and the filter window is stretched to it.
        padding: Zero-pad the sinogram before filtering (avoids wrap-around).
        impl: ASTRA back-end when a geometry is given.

    Returns:
        An ODL operator from sinograms to images (``fbp_op``).

    Raises:
        ValueError: On an unknown filter or a scaling outside ``(0, 1]``.
    """
    tomo = import_odl().applications.tomo
    _check_fbp_options(filter_type, frequency_scaling)
    operator = operator_or_geometry
    if isinstance(operator, GeometrySpec):
        operator = ray_transform(operator, impl=impl)
    return tomo.fbp_op(
        operator,
        padding=padding,
        filter_type=filter_type,
        frequency_scaling=float(frequency_scaling),
    )


def transpose(operator: Any) -> Any:
    """Return the transpose of a linear ODL operator for plain (unweighted) dot products.

    ODL's ``adjoint`` is taken in the *weighted* inner products of its spaces
    (cell volume: pixel area in mm^2, angle x detector cell for sinograms),
    with the weights left out when a space's cell volume is 1. Gradients in
    TensorFlow use plain sums, whose adjoint is
    ``(w_domain / w_range) * operator.adjoint``; for 1 mm pixels the factor
    is 1 and this is ODL's adjoint itself.

    Args:
        operator: A linear ODL operator between constantly weighted spaces.

    Returns:
        An ODL operator ``T`` with ``sum(operator(x) * y) == sum(x * T(y))``.
    """
    scale = _cell_weight(operator.domain) / _cell_weight(operator.range)
    adjoint = operator.adjoint
    return adjoint if scale == 1.0 else scale * adjoint


def apply_batch(operator: Any, batch: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Apply an ODL operator to each item of a stack of arrays.

    Args:
        operator: An ODL operator on float32 arrays (ray transform, its adjoint, FBP).
        batch: Array of shape ``(..., *operator.domain.shape)``; any leading
            axes are looped over. Writeable float32 C-contiguous input is
            not copied.
        threads: Number of worker threads; ``None`` uses one per CPU core (up
            to the batch size), 1 runs in the calling thread.

    Returns:
        Float32 array of shape ``(..., *operator.range.shape)``.

    Raises:
        ValueError: If the trailing axes of ``batch`` do not match the domain.
    """
    in_shape = tuple(operator.domain.shape)
    out_shape = tuple(operator.range.shape)
    batch = np.asarray(batch, dtype=np.float32)
    if batch.shape[batch.ndim - len(in_shape) :] != in_shape or batch.ndim < len(in_shape):
        raise ValueError(
            f"batch must end with the operator's domain shape {in_shape}, got {batch.shape}"
        )
    lead = batch.shape[: batch.ndim - len(in_shape)]
    items = batch.reshape((-1, *in_shape))
    if not items.flags.writeable:
        # ASTRA links its input buffer and refuses read-only memory (e.g. a TF tensor's).
        items = items.copy()
    out = np.empty((items.shape[0], *out_shape), dtype=np.float32)

    def run(index: int) -> None:
        out[index] = operator(items[index]).data

    workers = _num_threads(threads, len(items))
    if workers == 1:
        for index in range(len(items)):
            run(index)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(run, index) for index in range(len(items))]:
                future.result()
    return out.reshape(lead + out_shape)


def fbp_reconstruct(
    sinograms: np.ndarray,
    geometry: GeometrySpec,
    *,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    impl: str | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Reconstruct a stack of sinograms by FBP.

    Args:
        sinograms: Float array ``(..., num_angles, det_shape)``.
        geometry: The geometry the sinograms were measured with.
        filter_type: See `fbp`.
        frequency_scaling: See `fbp`.
        impl: ASTRA back-end.
        threads: See `apply_batch`.

    Returns:
        Float32 images ``(..., *geometry.image_shape)``.
    """
    operator = fbp(
        geometry, filter_type=filter_type, frequency_scaling=frequency_scaling, impl=impl
    )
    return apply_batch(operator, sinograms, threads=threads)


def _cell_weight(space: Any) -> float:
    """The constant weight of an ODL space's inner product (1.0 when unweighted)."""
    const = getattr(space.weighting, "const", None)
    if const is None:
        raise ValueError(f"operator spaces need constant weights, got {space.weighting!r}")
    return float(const)


def _check_fbp_options(filter_type: str, frequency_scaling: float) -> None:
    """Raise ValueError for an unknown FBP filter or a cut-off outside (0, 1]."""
    if filter_type not in FILTERS:
        raise ValueError(f"filter_type must be one of {FILTERS}, got {filter_type!r}")
    if not 0.0 < float(frequency_scaling) <= 1.0:
        raise ValueError(f"frequency_scaling must be in (0, 1], got {frequency_scaling!r}")


def _num_threads(threads: int | None, items: int) -> int:
    """Worker count: at most one per item and (by default) one per CPU core."""
    if threads is None:
        threads = os.cpu_count() or 1
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return max(1, min(threads, items))
