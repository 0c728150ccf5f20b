"""ASTRA's system matrix of a geometry and the FBP filter of its detector, as NumPy values.

`system_matrix` is the matrix of ASTRA's CPU projector, built with ODL's own
translation of the geometry to ASTRA (see `kerastrans.tomo.tf_operators`,
which wraps it in TensorFlow operators); `matrix_bytes` bounds its memory
before building and `check_memory` refuses a geometry over a budget;
`operator_norm` is its norm in ODL's weighted inner products; `fbp_filter`
is ODL's FBP filter on the padded detector. Building needs ODL and ASTRA
(imported in the functions only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from kerastrans.tomo.geometry import GeometrySpec, import_odl
from kerastrans.tomo.operators import _cell_weight, _check_fbp_options, ray_transform

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "Grid",
    "Sampling",
    "check_budget",
    "check_memory",
    "fbp_filter",
    "filter_length",
    "geometry_sampling",
    "matrix_bytes",
    "operator_norm",
    "system_matrix",
]

#: Bytes the sparse matrix of `tf_ray_transform` may take by default (1 GiB).
DEFAULT_MEMORY_BUDGET = 2**30
#: Bytes per non-zero of a ``tf.sparse.SparseTensor``: two int64 indices, one float32.
_BYTES_PER_NONZERO = 2 * 8 + 4


@dataclasses.dataclass(frozen=True)
class Grid:
    """Domain or range of an operator: a grid shape and ODL's inner-product weight.

    Attributes:
        shape: ``(rows, columns)`` of the image or ``(num_angles, det_shape)``.
        weight: The constant weight of ODL's inner product on this space
            (1.0 when ODL leaves it unweighted).
    """

    shape: tuple[int, int]
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class Sampling:
    """What the TF operators need from ODL/ASTRA, computed once per geometry."""

    matrix: Any  # scipy.sparse.csr_matrix, float32
    image: Grid
    sinogram: Grid
    det_cell: float  # detector pixel size (mm)
    angle_length: float  # angular range (radians)
    fbp_weight: float  # ODL's cell-volume factor of the FBP filter


def matrix_bytes(geometry: GeometrySpec) -> int:
    """Upper bound of the memory (bytes) of the geometry's matrix as a TF sparse tensor.

    Each ray of ASTRA's 2-D projectors (``linear`` for parallel beam,
    ``line_fanflat`` for fan beam) meets at most two pixels per image row or
    column along its main direction, so a matrix has at most
    ``rays * 2 * max(rows, columns)`` non-zeros, each stored as two int64
    indices and a float32 value (20 bytes). For the ellipses geometry
    (128 x 128, 30 angles, 183 pixels) the bound is 28 MB; the matrix has
    893,915 non-zeros (18 MB).

    >>> matrix_bytes(GeometrySpec((128, 128), num_angles=30, det_shape=183))
    28108800
    """
    angles, pixels = geometry.sinogram_shape
    return angles * pixels * 2 * max(geometry.image_shape) * _BYTES_PER_NONZERO


def check_memory(geometry: GeometrySpec, budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Return `matrix_bytes` of ``geometry``, or refuse when it exceeds ``budget``.

    Args:
        geometry: The scan geometry.
        budget: Bytes the matrix may take, default `DEFAULT_MEMORY_BUDGET`.

    Returns:
        The estimate in bytes.

    Raises:
        ValueError: If the estimate exceeds ``budget`` (the message gives both).
    """
    check_budget(budget)
    estimate = matrix_bytes(geometry)
    if estimate > budget:
        angles, pixels = geometry.sinogram_shape
        raise ValueError(
            f"the TF ray transform of a {geometry.image_shape[0]} x {geometry.image_shape[1]} "
            f"image with {angles} angles x {pixels} detector pixels needs up to "
            f"{_megabytes(estimate)} for its sparse matrix, over the memory budget of "
            f"{_megabytes(budget)}; use backend='odl' or a larger memory_budget"
        )
    return estimate


def system_matrix(geometry: GeometrySpec):
    """Return ASTRA's CPU system matrix of ``geometry`` (scipy CSR, float32).

    Rows are ``angle * det_shape + detector pixel``, columns
    ``row * columns + column`` of the image, so that
    ``(matrix @ image.ravel()).reshape(geometry.sinogram_shape)`` equals
    ``ray_transform(geometry, impl="astra_cpu")(image)``.

    Raises:
        RuntimeError: If ASTRA is not installed.
    """
    return geometry_sampling(geometry).matrix


@functools.lru_cache(maxsize=8)
def operator_norm(geometry: GeometrySpec, *, iterations: int = 100) -> float:
    """The norm of the ray transform in ODL's weighted inner products, by power iteration.

    ``||A|| = sqrt(w_range / w_domain * largest eigenvalue of M^T M)``; learned
    primal-dual divides the operator by it (Adler & Oktem 2018). Deterministic
    (fixed start vector); cached per geometry.

    Args:
        geometry: The scan geometry.
        iterations: Power iterations (100 give 1e-6 relative on 128 x 128).

    Returns:
        The operator norm (float).
    """
    sampling = geometry_sampling(geometry)
    matrix = sampling.matrix.astype(np.float64)
    vector = np.random.default_rng(0).random(matrix.shape[1])
    eigenvalue = 0.0
    for _ in range(iterations):
        image = matrix.T @ (matrix @ vector)
        eigenvalue = float(np.linalg.norm(image))
        vector = image / eigenvalue
    return math.sqrt(eigenvalue * sampling.sinogram.weight / sampling.image.weight)


@functools.lru_cache(maxsize=8)
def geometry_sampling(geometry: GeometrySpec) -> Sampling:
    """Build the matrix and the FBP constants of ``geometry`` (cached per geometry)."""
    import astra

    import_odl()  # before any "from odl ...": keeps NumPy's print options
    from odl.applications.tomo.backends.astra_cpu import default_astra_proj_type
    from odl.applications.tomo.backends.astra_setup import (
        astra_projection_geometry,
        astra_projector,
        astra_volume_geometry,
    )

    operator = ray_transform(geometry, impl="astra_cpu")
    volume = astra_volume_geometry(operator.domain, "cpu")
    projection = astra_projection_geometry(operator.geometry, "cpu")
    projector = astra_projector(default_astra_proj_type(operator.geometry), volume, projection, 2)
    try:
        matrix_id = astra.projector.matrix(projector)
        try:
            matrix = astra.matrix.get(matrix_id).astype(np.float32)
        finally:
            astra.matrix.delete(matrix_id)
    finally:
        astra.projector.delete(projector)
    matrix.sort_indices()
    sinogram = operator.range
    # ODL's fbp_filter_op multiplies by the cell volume of unweighted spaces.
    fbp_weight = 1.0
    if not sinogram.is_weighted:
        fbp_weight *= float(sinogram.cell_volume)
    if not operator.domain.is_weighted:
        fbp_weight /= float(operator.domain.cell_volume)
    return Sampling(
        matrix=matrix,
        image=Grid(tuple(operator.domain.shape), _cell_weight(operator.domain)),
        sinogram=Grid(tuple(sinogram.shape), _cell_weight(sinogram)),
        det_cell=float(operator.geometry.det_partition.cell_sides[0]),
        angle_length=float(operator.geometry.motion_params.length),
        fbp_weight=fbp_weight,
    )


def filter_length(pixels: int) -> int:
    """The FFT length of FBP's filtering: the first ``>= 3 * pixels - 2`` made of 2, 3, 5, 7.

    Any length from ``3n - 2`` on gives the same (linear) convolution; one
    with small prime factors makes TensorFlow's FFT fast (``3 * 183 - 2`` is
    the prime 547, whose FFT took twice as long as that of 560).

    >>> filter_length(183), filter_length(64)
    (560, 192)
    """
    length = 3 * pixels - 2
    while True:
        rest = length
        for factor in (2, 3, 5, 7):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def fbp_filter(
    geometry: GeometrySpec, filter_type: str = "Hann", frequency_scaling: float = 1.0
) -> np.ndarray:
    """The FBP filter of ``geometry`` on the rfft frequencies of the padded detector.

    ODL's ``fbp_filter_op`` (``padding=True``) pads the ``n`` detector pixels
    to ``N = 2n - 1`` and samples the filter on its Fourier grid, which is
    shifted by half a cell: frequencies ``|f| * 2 pi / (N * cell)`` for
    half-integers ``f = -(n - 1/2) .. n - 3/2``. There the filter is the
    window of the normalised frequency ``|f| / (n - 1/2)`` times the largest
    frequency, divided by twice the angular range (radians), times ODL's
    cell-volume factor. The result is a convolution along the detector with
    the symmetric kernel ``h[d] = sum_f filter(f) cos(2 pi f d / N) / N``,
    ``|d| < n``; padding to at least ``3n - 2`` (`filter_length`: the next
    length with small prime factors, for a fast FFT) applies it without
    wrap-around, and since ``h`` is symmetric its spectrum (returned here)
    is real.

    Args:
        geometry: The scan geometry.
        filter_type: See `tf_fbp`.
        frequency_scaling: See `tf_fbp`.

    Returns:
        Float64 array of the ``filter_length(n) // 2 + 1`` filter values.
    """
    _check_fbp_options(filter_type, frequency_scaling)
    sampling = geometry_sampling(geometry)
    pixels = sampling.sinogram.shape[1]
    size = 2 * pixels - 1
    half = np.arange(size) - (pixels - 0.5)  # ODL's half-cell shifted frequency grid
    top = (pixels - 0.5) * 2 * math.pi / (size * sampling.det_cell)
    values = _window(np.abs(half) / (pixels - 0.5), filter_type, float(frequency_scaling))
    values = values * top / (2 * sampling.angle_length) * sampling.fbp_weight
    offsets = np.arange(-(pixels - 1), pixels)
    kernel = np.cos(2 * math.pi * np.outer(offsets, half) / size) @ values / size
    length = filter_length(pixels)
    circular = np.zeros(length)
    circular[offsets % length] = kernel
    return np.fft.rfft(circular).real


def _window(norm: np.ndarray, filter_type: str, scaling: float) -> np.ndarray:
    """ODL's ``_fbp_filter``: the named window of normalised frequencies, cut at ``scaling``."""
    shapes = {
        "Ram-Lak": lambda f: f,
        "Shepp-Logan": lambda f: f * np.sinc(f / (2 * scaling)),
        "Cosine": lambda f: f * np.cos(f * np.pi / (2 * scaling)),
        "Hamming": lambda f: f * (0.54 + 0.46 * np.cos(f * np.pi / scaling)),
        "Hann": lambda f: f * np.cos(f * np.pi / (2 * scaling)) ** 2,
    }
    return shapes[filter_type](norm) * (norm <= scaling)


def check_budget(budget: int) -> None:
    """Raise ValueError unless ``budget`` is a positive int (bytes)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {budget!r}")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 2**20:.2f} MiB"
