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
`check_memory` refuses a geometry whose matrix would not fit a budget. The
matrix, its memory, its norm and the FBP filter are NumPy values built in
`kerastrans.tomo.matrix` (their names are importable from here too).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

from kerastrans.hardware import usable_cores
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.matrix import (
    DEFAULT_MEMORY_BUDGET,
    Grid,
    check_memory,
    fbp_filter,
    filter_length,
    geometry_sampling,
    matrix_bytes,
    operator_norm,
    system_matrix,
)
from kerastrans.tomo.operators import _check_fbp_options

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


class SparseOperator:
    """``scale * M`` or ``scale * M^T`` for a sparse matrix ``M``, on channels-last batches.

    Built by `tf_ray_transform`; not meant to be constructed directly. ``M``
    is held as row blocks: TensorFlow's sparse-dense product runs on one
    thread, and the blocks' products, independent of each other, run in
    parallel inside a ``tf.function`` (``M x`` concatenates them, ``M^T y``
    adds them).

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
        blocks: tuple[Any, ...],
        domain: Grid,
        range: Grid,
        *,
        scale: float = 1.0,
        transposed: bool,
    ) -> None:
        self.geometry = geometry
        self._blocks = tuple(blocks)
        self.domain = domain
        self.range = range
        self.scale = float(scale)
        self.transposed = transposed

    @functools.cached_property
    def adjoint(self) -> SparseOperator:
        """The adjoint in ODL's weighted inner products; its ``.adjoint`` is this operator."""
        adjoint = SparseOperator(
            self.geometry,
            self._blocks,
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
        if self.transposed:  # M^T y = sum of M_i^T y_i over the row blocks M_i, y_i
            rows = [block.shape[0] for block in self._blocks]
            parts = tf.split(columns, rows, axis=0)
            products = [
                tf.sparse.sparse_dense_matmul(block, part, adjoint_a=True)
                for block, part in zip(self._blocks, parts, strict=True)
            ]
            product = tf.add_n(products) if len(products) > 1 else products[0]
        else:
            products = [tf.sparse.sparse_dense_matmul(block, columns) for block in self._blocks]
            product = tf.concat(products, axis=0) if len(products) > 1 else products[0]
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
            to `filter_length` (float32 numpy array, see `fbp_filter`).
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
        # Zero-pad the detector to >= 3n - 2 (no wrap-around), filter in Fourier space, crop.
        length = filter_length(pixels)
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
    sampling = geometry_sampling(geometry)
    blocks = _sparse_blocks(geometry, min(usable_cores(), MAX_BLOCKS))
    return SparseOperator(geometry, blocks, sampling.image, sampling.sinogram, transposed=False)


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


#: Most row blocks of an operator's matrix (one per core, up to this).
MAX_BLOCKS = 8


@functools.lru_cache(maxsize=8)
def _sparse_blocks(geometry: GeometrySpec, count: int) -> tuple[Any, ...]:
    """The matrix of ``geometry`` as ``count`` row blocks of about equal non-zeros (cached).

    Each block is a ``tf.sparse.SparseTensor`` of some consecutive rows (all
    columns); together they are the whole matrix.
    """
    import tensorflow as tf

    matrix = geometry_sampling(geometry).matrix.tocsr()
    # Block edges: the first row at or after each multiple of nnz / count (no empty block).
    bounds = np.searchsorted(matrix.indptr, np.linspace(0, matrix.nnz, count + 1)[1:-1])
    edges = np.unique([0, *bounds, matrix.shape[0]])
    blocks = []
    for start, stop in itertools.pairwise(edges):
        block = matrix[start:stop].tocoo()
        indices = np.stack([block.row, block.col], axis=1).astype(np.int64)
        blocks.append(tf.sparse.SparseTensor(indices, block.data, block.shape))
    return tuple(blocks)


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
