"""The ray transform as a sparse matrix inside the TensorFlow graph: forward, adjoint, FBP.

ASTRA's CPU projector of a geometry is a linear map whose system matrix ASTRA
gives as a scipy CSR matrix (rows: angle x detector pixel, columns: image
pixels in C order). `system_matrix` builds it with ODL's own translation of
the geometry to ASTRA, so that ``matrix @ x.ravel()`` is ODL's
``RayTransform(impl="astra_cpu")`` of ``x`` (no angle or detector reordering
needed; measured 2e-7 relative on the dival "ellipses" geometry, 893,915
non-zeros).

`tf_ray_transform` wraps that matrix in TensorFlow operators that are values,
as in ODL: the ray transform has a cached ``.adjoint`` (the back-projection,
ODL's adjoint in the weighted inner products, so equal to today's ODL
operator), whose adjoint is the ray transform again; `tf_fbp` is that adjoint
after a ramp filter along the detector computed in TensorFlow (Ram-Lak,
Shepp-Logan, Cosine, Hamming, Hann, with a frequency cut-off), ODL's
``fbp_op`` with ``padding=True``. Every operator runs on channels-last batches
``(batch, rows, columns, channels)``, is differentiable by TensorFlow (the
gradient of ``A x`` is the plain transpose ``A^T``), and holds only TensorFlow
ops, so a model using them exports to a SavedModel that needs neither ODL nor
ASTRA. Building one needs ODL and ASTRA (imported in the functions only).

The matrix costs memory (``matrix_bytes``: an upper bound before building);
`check_memory` refuses a geometry whose matrix would not fit a budget.
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
    "SparseOperator",
    "check_memory",
    "dense_fbp_matrix",
    "fbp_filter",
    "matrix_bytes",
    "operator_norm",
    "system_matrix",
    "tf_fbp",
    "tf_ray_transform",
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
class _Sampling:
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
    _check_budget(budget)
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
    return _sampling(geometry).matrix


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
    sampling = _sampling(geometry)
    matrix = sampling.matrix.astype(np.float64)
    vector = np.random.default_rng(0).random(matrix.shape[1])
    eigenvalue = 0.0
    for _ in range(iterations):
        image = matrix.T @ (matrix @ vector)
        eigenvalue = float(np.linalg.norm(image))
        vector = image / eigenvalue
    return math.sqrt(eigenvalue * sampling.sinogram.weight / sampling.image.weight)


@functools.lru_cache(maxsize=8)
def _sampling(geometry: GeometrySpec) -> _Sampling:
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
    return _Sampling(
        matrix=matrix,
        image=Grid(tuple(operator.domain.shape), _cell_weight(operator.domain)),
        sinogram=Grid(tuple(sinogram.shape), _cell_weight(sinogram)),
        det_cell=float(operator.geometry.det_partition.cell_sides[0]),
        angle_length=float(operator.geometry.motion_params.length),
        fbp_weight=fbp_weight,
    )


class SparseOperator:
    """``scale * M`` or ``scale * M^T`` for a sparse matrix ``M``, on channels-last batches.

    Built by `tf_ray_transform`; not meant to be constructed directly.

    Attributes:
        geometry: The `GeometrySpec` whose matrix ``M`` is.
        domain: `Grid` of the inputs.
        range: `Grid` of the outputs.
        scale: The factor in front of the matrix.
        transposed: Whether the operator applies ``M^T``.
    """

    def __init__(
        self,
        geometry: GeometrySpec,
        matrix: Any,
        domain: Grid,
        range: Grid,
        *,
        scale: float = 1.0,
        transposed: bool,
    ) -> None:
        self.geometry = geometry
        self._matrix = matrix
        self.domain = domain
        self.range = range
        self.scale = float(scale)
        self.transposed = transposed

    @functools.cached_property
    def adjoint(self) -> SparseOperator:
        """The adjoint in ODL's weighted inner products; its ``.adjoint`` is this operator."""
        adjoint = SparseOperator(
            self.geometry,
            self._matrix,
            self.range,
            self.domain,
            scale=self.scale * self.range.weight / self.domain.weight,
            transposed=not self.transposed,
        )
        adjoint.__dict__["adjoint"] = self
        return adjoint

    def __call__(self, x: Any) -> Any:
        """Apply the operator to each channel of ``(batch, *domain.shape, channels)``.

        Returns:
            Float32 tensor ``(batch, *range.shape, channels)``.

        Raises:
            ValueError: If the static shape of ``x`` does not fit the domain.
        """
        import tensorflow as tf

        x = _check_batch(x, self.domain.shape)
        # (batch, rows, cols, channels) -> (rows * cols, batch * channels): one sparse product.
        batch, channels = tf.shape(x)[0], tf.shape(x)[3]
        columns = tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (-1, batch * channels))
        product = tf.sparse.sparse_dense_matmul(self._matrix, columns, adjoint_a=self.transposed)
        if self.scale != 1.0:
            product = product * self.scale
        out = tf.reshape(product, (*self.range.shape, batch, channels))
        out = tf.transpose(out, (2, 0, 1, 3))
        return tf.ensure_shape(out, (x.shape[0], *self.range.shape, x.shape[3]))

    def __repr__(self) -> str:
        kind = "M^T" if self.transposed else "M"
        return f"SparseOperator({self.scale:g} * {kind}: {self.domain.shape} -> {self.range.shape})"


class FilteredBackProjection:
    """The back-projection after a ramp filter along the detector (ODL's ``fbp_op``).

    Attributes:
        back_projection: The `SparseOperator` applied after the filter.
        response: The filter on the rfft frequencies of the detector padded
            to ``3 * det_shape - 2`` (float32 numpy array, see `fbp_filter`).
        domain: `Grid` of the sinograms; ``range``: `Grid` of the images.
    """

    def __init__(self, back_projection: SparseOperator, response: np.ndarray) -> None:
        self.back_projection = back_projection
        self.response = np.asarray(response, dtype=np.float32)
        self.domain = back_projection.domain
        self.range = back_projection.range

    def filter(self, sinograms: Any) -> Any:
        """Filter ``(batch, angles, detector, channels)`` sinograms along the detector."""
        import tensorflow as tf

        sinograms = _check_batch(sinograms, self.domain.shape)
        pixels = self.domain.shape[1]
        # Zero-pad the detector to 3n - 2 (no wrap-around), filter in Fourier space, crop.
        length = 3 * pixels - 2
        lines = tf.transpose(sinograms, (0, 3, 1, 2))
        padded = tf.pad(lines, [[0, 0], [0, 0], [0, 0], [0, length - pixels]])
        spectrum = tf.signal.rfft(padded, fft_length=[length])
        spectrum = spectrum * tf.cast(self.response, tf.complex64)
        filtered = tf.signal.irfft(spectrum, fft_length=[length])[..., :pixels]
        return tf.transpose(filtered, (0, 2, 3, 1))

    def __call__(self, sinograms: Any) -> Any:
        """Reconstruct ``(batch, angles, detector, channels)`` sinograms to images."""
        return self.back_projection(self.filter(sinograms))

    def __repr__(self) -> str:
        return f"FilteredBackProjection({self.domain.shape} -> {self.range.shape})"


def tf_ray_transform(
    geometry: GeometrySpec, *, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> SparseOperator:
    """Return the ray transform of ``geometry`` as a TensorFlow operator.

    Args:
        geometry: The scan geometry (parallel or fan beam).
        memory_budget: Bytes the sparse matrix may take (see `check_memory`).

    Returns:
        A `SparseOperator` from images ``(batch, *image_shape, channels)`` to
        sinograms; its ``.adjoint`` is ODL's back-projection.

    Raises:
        ValueError: If the matrix would exceed ``memory_budget``.

    >>> op = tf_ray_transform(GeometrySpec((32, 32), num_angles=8))
    >>> op.domain.shape, op.range.shape, op.adjoint.adjoint is op
    ((32, 32), (8, 47), True)
    """
    check_memory(geometry, memory_budget)
    sampling = _sampling(geometry)
    return SparseOperator(
        geometry, _sparse_tensor(geometry), sampling.image, sampling.sinogram, transposed=False
    )


def tf_fbp(
    operator_or_geometry: SparseOperator | GeometrySpec,
    *,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> FilteredBackProjection:
    """Return FBP as a TensorFlow operator, equal to `kerastrans.tomo.operators.fbp`.

    Args:
        operator_or_geometry: A ray transform from `tf_ray_transform`, or a
            `GeometrySpec` to build one from.
        filter_type: One of `kerastrans.tomo.operators.FILTERS`, default ``"Hann"``.
        frequency_scaling: Relative cut-off in ``(0, 1]``, default 1.0.
        memory_budget: See `tf_ray_transform` (when a geometry is given).

    Returns:
        A `FilteredBackProjection` from sinograms to images.

    Raises:
        ValueError: On an unknown filter, a cut-off outside ``(0, 1]`` or a
            matrix over the budget.
    """
    _check_fbp_options(filter_type, frequency_scaling)
    operator = operator_or_geometry
    if isinstance(operator, GeometrySpec):
        operator = tf_ray_transform(operator, memory_budget=memory_budget)
    if not isinstance(operator, SparseOperator) or operator.transposed:
        raise TypeError(
            "tf_fbp needs a GeometrySpec or a ray transform from tf_ray_transform, "
            f"got {operator!r}"
        )
    return FilteredBackProjection(
        operator.adjoint, fbp_filter(operator.geometry, filter_type, frequency_scaling)
    )


def dense_fbp_matrix(
    geometry: GeometrySpec,
    filter_type: str = "Hann",
    frequency_scaling: float = 1.0,
    *,
    chunk: int = 512,
) -> np.ndarray:
    """FBP of ``geometry`` as a dense matrix ``D``: ``image.ravel() = sinogram.ravel() @ D``.

    Built column block by column block by running `tf_fbp` on unit
    sinograms. For the ellipses geometry it is 5,490 x 16,384 (360 MB in
    float32): the shape of AUTOMAP's first fully connected layer, which can
    start from it.

    Args:
        geometry: The scan geometry.
        filter_type: See `tf_fbp`.
        frequency_scaling: See `tf_fbp`.
        chunk: Unit sinograms per call.

    Returns:
        Float32 array ``(angles * detectors, rows * columns)``.
    """
    operator = tf_fbp(geometry, filter_type=filter_type, frequency_scaling=frequency_scaling)
    sinogram_shape = operator.domain.shape
    size = math.prod(sinogram_shape)
    matrix = np.empty((size, math.prod(operator.range.shape)), np.float32)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        units = np.zeros((stop - start, size), np.float32)
        units[np.arange(stop - start), np.arange(start, stop)] = 1.0
        images = operator(units.reshape(-1, *sinogram_shape, 1)).numpy()
        matrix[start:stop] = images.reshape(stop - start, -1)
    return matrix


def fbp_filter(
    geometry: GeometrySpec, filter_type: str = "Hann", frequency_scaling: float = 1.0
) -> np.ndarray:
    """The FBP filter of ``geometry`` on the rfft frequencies of a detector padded to ``3n - 2``.

    ODL's ``fbp_filter_op`` (``padding=True``) pads the ``n`` detector pixels
    to ``N = 2n - 1`` and samples the filter on its Fourier grid, which is
    shifted by half a cell: frequencies ``|f| * 2 pi / (N * cell)`` for
    half-integers ``f = -(n - 1/2) .. n - 3/2``. There the filter is the
    window of the normalised frequency ``|f| / (n - 1/2)`` times the largest
    frequency, divided by twice the angular range (radians), times ODL's
    cell-volume factor. The result is a convolution along the detector with
    the symmetric kernel ``h[d] = sum_f filter(f) cos(2 pi f d / N) / N``,
    ``|d| < n``; padding to ``3n - 2`` applies it without wrap-around, and
    since ``h`` is symmetric its spectrum (returned here) is real.

    Args:
        geometry: The scan geometry.
        filter_type: See `tf_fbp`.
        frequency_scaling: See `tf_fbp`.

    Returns:
        Float64 array of the ``(3n - 2) // 2 + 1`` filter values.
    """
    _check_fbp_options(filter_type, frequency_scaling)
    sampling = _sampling(geometry)
    pixels = sampling.sinogram.shape[1]
    size = 2 * pixels - 1
    half = np.arange(size) - (pixels - 0.5)  # ODL's half-cell shifted frequency grid
    top = (pixels - 0.5) * 2 * math.pi / (size * sampling.det_cell)
    values = _window(np.abs(half) / (pixels - 0.5), filter_type, float(frequency_scaling))
    values = values * top / (2 * sampling.angle_length) * sampling.fbp_weight
    offsets = np.arange(-(pixels - 1), pixels)
    kernel = np.cos(2 * math.pi * np.outer(offsets, half) / size) @ values / size
    length = 3 * pixels - 2
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


@functools.lru_cache(maxsize=8)
def _sparse_tensor(geometry: GeometrySpec) -> Any:
    """The matrix of ``geometry`` as a ``tf.sparse.SparseTensor`` (cached: built once)."""
    import tensorflow as tf

    matrix = _sampling(geometry).matrix.tocoo()
    indices = np.stack([matrix.row, matrix.col], axis=1).astype(np.int64)
    return tf.sparse.SparseTensor(indices, matrix.data, matrix.shape)


def _check_budget(budget: int) -> None:
    """Raise ValueError unless ``budget`` is a positive int (bytes)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {budget!r}")


def _check_batch(x: Any, shape: tuple[int, int]) -> Any:
    """``x`` as float32, after checking it is ``(batch, *shape, channels)``."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    if x.shape.rank is not None and (
        x.shape.rank != 4 or not x.shape[1:3].is_compatible_with(tf.TensorShape(shape))
    ):
        raise ValueError(
            f"operator input must have shape (batch, {shape[0]}, {shape[1]}, channels), "
            f"got {tuple(x.shape)}"
        )
    return x


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 2**20:.2f} MiB"
