"""Tests of the TF sparse-matrix operators: equal to ODL's, adjoint identities, exact gradients."""

import re

import numpy as np
import pytest
import tensorflow as tf

from kerastrans.tomo.ellipses import EllipsesProtocol
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.operators import FILTERS, apply_batch, fbp, ray_transform, transpose
from kerastrans.tomo.phantoms import random_ellipses, shepp_logan
from kerastrans.tomo.tf_operators import (
    check_memory,
    dense_fbp_matrix,
    matrix_bytes,
    operator_norm,
    system_matrix,
    tf_fbp,
    tf_ray_transform,
)

PARALLEL = GeometrySpec((32, 32), num_angles=12)
FAN = GeometrySpec((32, 32), beam="fan", src_radius=150.0, det_radius=50.0, num_angles=16)
# 2 mm pixels over a limited angle: ODL's adjoint is then a rescaled transpose.
COARSE = GeometrySpec((24, 32), extent=(48.0, 64.0), num_angles=10, angle_range=(10.0, 150.0))
SPECS = pytest.mark.parametrize("spec", [PARALLEL, FAN, COARSE], ids=["par", "fan", "2mm"])


def relative(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def phantoms(shape):
    """Shepp-Logan and two random-ellipse phantoms, stacked."""
    stack = [shepp_logan(shape), *random_ellipses(2, 0, shape=shape)]
    return np.stack(stack).astype(np.float32)


def channels_last(op, batch):
    return op(batch[..., None]).numpy()[..., 0]


@SPECS
def test_forward_and_adjoint_equal_odl(spec):
    odl_op = ray_transform(spec, impl="astra_cpu")
    op = tf_ray_transform(spec)
    images = phantoms(spec.image_shape)
    sinograms = apply_batch(odl_op, images)
    assert relative(channels_last(op, images), sinograms) < 1e-5
    back = apply_batch(odl_op.adjoint, sinograms)
    assert np.abs(back).max() > 0
    assert relative(channels_last(op.adjoint, sinograms), back) < 1e-5


def test_system_matrix_rows_are_angle_by_detector():
    matrix = system_matrix(PARALLEL)
    image = phantoms(PARALLEL.image_shape)[0]
    sinogram = (matrix @ image.ravel()).reshape(PARALLEL.sinogram_shape)
    np.testing.assert_allclose(sinogram, ray_transform(PARALLEL)(image).data, rtol=1e-5, atol=1e-5)


@SPECS
@pytest.mark.parametrize("filter_type", FILTERS)
def test_fbp_equals_odl(spec, filter_type):
    odl_op = ray_transform(spec, impl="astra_cpu")
    sinograms = apply_batch(odl_op, phantoms(spec.image_shape))
    for scaling in (1.0, 0.6):
        want = apply_batch(
            fbp(odl_op, filter_type=filter_type, frequency_scaling=scaling), sinograms
        )
        got = tf_fbp(spec, filter_type=filter_type, frequency_scaling=scaling)
        assert relative(channels_last(got, sinograms), want) < 1e-3


def test_ellipses_geometry_agrees_with_odl():
    spec = EllipsesProtocol().geometry()
    assert (spec.image_shape, spec.sinogram_shape) == ((128, 128), (30, 183))
    assert 800_000 < system_matrix(spec).nnz < 1_000_000
    odl_op = ray_transform(spec, impl="astra_cpu")
    images = phantoms(spec.image_shape)
    sinograms = apply_batch(odl_op, images)
    op = tf_ray_transform(spec)
    assert relative(channels_last(op, images), sinograms) < 1e-5
    want = apply_batch(fbp(odl_op, filter_type="Hann"), sinograms)
    assert relative(channels_last(tf_fbp(op, filter_type="Hann"), sinograms), want) < 1e-3


@SPECS
def test_adjoint_identity_in_weighted_inner_products(spec):
    op = tf_ray_transform(spec)
    rng = np.random.default_rng(1)
    x = rng.random((2, *op.domain.shape, 1), dtype=np.float32)
    y = rng.random((2, *op.range.shape, 1), dtype=np.float32)
    lhs = op.range.weight * np.vdot(op(x).numpy().astype(np.float64), y)
    rhs = op.domain.weight * np.vdot(x.astype(np.float64), op.adjoint(y).numpy())
    assert lhs == pytest.approx(rhs, rel=1e-5)
    assert op.adjoint.adjoint is op


@SPECS
def test_tape_gradient_is_the_transpose(spec):
    op = tf_ray_transform(spec)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.random((2, *op.domain.shape, 3), dtype=np.float32))
    upstream = rng.random((2, *op.range.shape, 3), dtype=np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(op(x) * upstream)
    grad = tape.gradient(loss, x).numpy()
    want = apply_batch(
        transpose(ray_transform(spec, impl="astra_cpu")), np.moveaxis(upstream, -1, 1)
    )
    np.testing.assert_allclose(grad, np.moveaxis(want, 1, -1), rtol=1e-4, atol=1e-5)
    if spec.pixel_size == (1.0, 1.0):  # the transpose is the adjoint for 1 mm pixels
        np.testing.assert_allclose(grad, op.adjoint(upstream).numpy(), rtol=1e-5, atol=1e-6)


def test_operator_keeps_static_shapes_and_dynamic_batch():
    op = tf_ray_transform(PARALLEL)

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 2], tf.float32)])
    def run(x):
        y = op(x)
        assert y.shape.as_list() == [None, 12, 47, 2]
        return y

    assert run(tf.zeros((3, 32, 32, 2))).shape == (3, 12, 47, 2)


def test_operator_rejects_inputs_off_its_grid():
    with pytest.raises(ValueError, match=r"must have shape \(batch, 12, 47, channels\), got"):
        tf_ray_transform(PARALLEL).adjoint(np.zeros((1, 32, 32, 1), np.float32))


def test_matrix_bytes_bounds_the_built_matrix():
    nnz = system_matrix(PARALLEL).nnz
    assert nnz * 20 <= matrix_bytes(PARALLEL) < 3 * nnz * 20


def test_geometry_over_the_memory_budget_is_refused_with_the_estimate():
    estimate = matrix_bytes(PARALLEL)
    assert check_memory(PARALLEL, estimate) == estimate
    message = (
        "the TF ray transform of a 32 x 32 image with 12 angles x 47 detector pixels needs up "
        f"to {estimate / 2**20:.2f} MiB for its sparse matrix, over the memory budget of "
        "0.00 MiB; use backend='odl' or a larger memory_budget"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        tf_ray_transform(PARALLEL, memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget must be a positive number of bytes"):
        check_memory(PARALLEL, 0)


def test_fbp_rejects_bad_options():
    with pytest.raises(ValueError, match="filter_type must be one of"):
        tf_fbp(PARALLEL, filter_type="ramp")
    with pytest.raises(TypeError, match="tf_fbp needs a GeometrySpec or a ray transform"):
        tf_fbp(tf_ray_transform(PARALLEL).adjoint)


@SPECS
def test_operator_norm_is_the_largest_singular_value(spec):
    from scipy.sparse.linalg import svds

    odl_op = ray_transform(spec, impl="astra_cpu")
    weights = odl_op.range.weighting.const / odl_op.domain.weighting.const
    largest = svds(system_matrix(spec).astype(np.float64), k=1, return_singular_vectors=False)[0]
    assert operator_norm(spec) == pytest.approx(largest * np.sqrt(weights), rel=1e-4)


def test_dense_fbp_matrix_equals_the_operator():
    matrix = dense_fbp_matrix(FAN, "Cosine", 0.8, chunk=100)
    sinograms = apply_batch(ray_transform(FAN, impl="astra_cpu"), phantoms(FAN.image_shape))
    want = apply_batch(fbp(FAN, filter_type="Cosine", frequency_scaling=0.8), sinograms)
    got = (sinograms.reshape(len(sinograms), -1) @ matrix).reshape(want.shape)
    assert relative(got, want) < 1e-3


@pytest.mark.parametrize("count", [2, 3, 7])
def test_row_blocks_compute_what_the_whole_matrix_computes(count):
    from kerastrans.tomo import tf_operators

    blocks = tf_operators._sparse_blocks(FAN, count)
    assert len(blocks) == count
    assert sum(block.shape[0] for block in blocks) == FAN.sinogram_shape[0] * FAN.sinogram_shape[1]
    whole = tf_ray_transform(FAN)
    split = tf_operators.SparseOperator(FAN, blocks, whole.domain, whole.range, transposed=False)
    rng = np.random.default_rng(3)
    images = rng.random((3, *FAN.image_shape, 2), dtype=np.float32)
    sinograms = rng.random((3, *FAN.sinogram_shape, 2), dtype=np.float32)
    dense = system_matrix(FAN).toarray()
    want = np.einsum("ij,bjc->bic", dense, images.reshape(3, -1, 2)).reshape(sinograms.shape)
    for op in (split, tf.function(split)):
        np.testing.assert_allclose(op(images).numpy(), want, rtol=1e-5, atol=1e-5)
    for op in (split.adjoint, tf.function(split.adjoint)):
        np.testing.assert_allclose(
            op(sinograms).numpy(), whole.adjoint(sinograms).numpy(), rtol=1e-5, atol=1e-5
        )
