"""Tests of the TF op / Keras layer: gradients are the adjoint, shapes and configs survive."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.layer import RayTransformLayer, apply_operator
from kerastrans.tomo.operators import apply_batch, ray_transform, transpose

SPEC = GeometrySpec((32, 32), num_angles=8)
# 2 mm pixels: ODL's adjoint then differs from the plain transpose by the cell weights.
COARSE = GeometrySpec((24, 32), extent=(48.0, 64.0), num_angles=10)


def tape_gradient(layer_or_fn, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer_or_fn(x)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), tape.gradient(loss, x).numpy()


@pytest.mark.parametrize("spec", [SPEC, COARSE], ids=["1mm", "2mm"])
def test_tape_gradient_is_adjoint_of_upstream(spec):
    op = ray_transform(spec, impl="astra_cpu")
    rng = np.random.default_rng(0)
    x = rng.random((2, *op.domain.shape, 1), dtype=np.float32)
    upstream = rng.random((2, *op.range.shape, 1), dtype=np.float32)
    y, grad = tape_gradient(lambda t: apply_operator(t, op), x, upstream)
    np.testing.assert_allclose(y[..., 0], apply_batch(op, x[..., 0]), rtol=1e-6)
    np.testing.assert_allclose(
        grad[..., 0], apply_batch(transpose(op), upstream[..., 0]), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("backend", ["tf", "odl"])
@pytest.mark.parametrize("mode", ["forward", "adjoint", "fbp"])
def test_gradient_matches_finite_differences(mode, backend):
    layer = RayTransformLayer(
        COARSE, mode=mode, impl="astra_cpu", frequency_scaling=0.8, backend=backend
    )
    rng = np.random.default_rng(1)
    x = rng.random((1, *layer.operator.domain.shape, 1), dtype=np.float32)
    w = rng.random((1, *layer.operator.range.shape, 1), dtype=np.float32)
    v = rng.standard_normal(x.shape).astype(np.float32)
    _, grad = tape_gradient(layer, x, w)

    def objective(point):
        return float(np.sum(layer(point).numpy().astype(np.float64) * w))

    eps = 1e-2
    finite = (objective(x + eps * v) - objective(x - eps * v)) / (2 * eps)
    assert np.vdot(grad.astype(np.float64), v) == pytest.approx(finite, rel=1e-3)


def test_second_order_gradient_is_the_operator():
    op = ray_transform(SPEC, impl="astra_cpu")
    x = tf.constant(np.ones((1, 32, 32, 1), np.float32))
    upstream = tf.constant(np.random.default_rng(2).random((1, 8, 47, 1), dtype=np.float32))
    with tf.GradientTape() as outer:
        outer.watch(upstream)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(apply_operator(x, op) * upstream)
        grad = inner.gradient(loss, x)
        total = tf.reduce_sum(grad * x)
    # d/d(upstream) <A^T upstream, x> = A x
    np.testing.assert_allclose(
        outer.gradient(total, upstream).numpy()[0, ..., 0], op(x.numpy()[0, ..., 0]).data, rtol=1e-5
    )


def test_layer_keeps_static_shapes_inside_tf_function():
    layer = RayTransformLayer(SPEC, impl="astra_cpu")

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 2], tf.float32)])
    def run(x):
        y = layer(x)
        assert y.shape.as_list() == [None, 8, 47, 2]
        return y

    assert run(tf.zeros((3, 32, 32, 2))).shape == (3, 8, 47, 2)


def test_layer_transforms_each_channel_separately():
    layer = RayTransformLayer(SPEC, mode="fbp", impl="astra_cpu", backend="odl")
    sinograms = np.random.default_rng(3).random((2, 8, 47, 3), dtype=np.float32)
    out = layer(sinograms).numpy()
    assert out.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(out[1, ..., 2], layer.operator(sinograms[1, ..., 2]).data, rtol=1e-6)


def test_model_with_layer_saves_and_reloads(tmp_path):
    inputs = keras.Input((32, 32, 1))
    sinogram = RayTransformLayer(SPEC, impl="astra_cpu", name="project")(inputs)
    outputs = RayTransformLayer(SPEC.to_dict(), mode="fbp", frequency_scaling=0.7)(sinogram)
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, 32, 32, 1)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    x = np.random.default_rng(4).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    config = reloaded.get_layer("project").get_config()
    assert GeometrySpec.from_dict(config["geometry"]) == SPEC
    assert config["mode"] == "forward"
    assert (config["backend"], config["memory_budget"]) == ("auto", 2**30)
    assert reloaded.get_layer("project").backend_used == "tf"


@pytest.mark.parametrize("mode", ["forward", "adjoint", "fbp"])
def test_tf_and_odl_backends_give_the_same_outputs(mode):
    layers = {
        backend: RayTransformLayer(COARSE, mode=mode, backend=backend, filter_type="Shepp-Logan")
        for backend in ("tf", "odl")
    }
    shape = layers["odl"].operator.domain.shape
    x = np.random.default_rng(5).random((2, *shape, 2), dtype=np.float32)
    want = layers["odl"](x).numpy()
    got = layers["tf"](x).numpy()
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-5
    assert layers["tf"].count_params() == 0


def test_auto_backend_falls_back_to_odl_over_the_memory_budget():
    small = RayTransformLayer(SPEC, memory_budget=10**6)
    assert small.backend_used == "tf"
    large = RayTransformLayer(SPEC, memory_budget=1000)
    assert large.backend_used == "odl"
    assert large.get_config()["memory_budget"] == 1000
    np.testing.assert_allclose(
        large(np.ones((1, 32, 32, 1), np.float32)).numpy(),
        small(np.ones((1, 32, 32, 1), np.float32)).numpy(),
        rtol=1e-5,
    )


def test_tf_backend_over_the_memory_budget_is_refused_with_the_estimate():
    with pytest.raises(ValueError, match=r"needs up to 0\.\d\d MiB for its sparse matrix, over"):
        RayTransformLayer(SPEC, backend="tf", memory_budget=1000)


def test_tf_backend_refuses_astra_cuda():
    with pytest.raises(ValueError, match="impl='astra_cuda' needs backend='odl'"):
        RayTransformLayer(SPEC, backend="tf", impl="astra_cuda")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mode": "inverse"}, ValueError, "mode must be one of ('forward', 'adjoint', 'fbp'), got"),
        ({"filter_type": "ramp"}, ValueError, "filter_type must be one of"),
        ({"geometry": "geometry.json"}, TypeError, "geometry must be a GeometrySpec or a dict"),
        ({"backend": "jax"}, ValueError, "backend must be one of ('auto', 'tf', 'odl'), got"),
        ({"memory_budget": 0}, ValueError, "memory_budget must be a positive number of bytes"),
    ],
)
def test_layer_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=__import__("re").escape(message)):
        RayTransformLayer(**{"geometry": SPEC, **kwargs})


def test_layer_rejects_inputs_off_the_domain_grid():
    layer = RayTransformLayer(SPEC, mode="adjoint", impl="astra_cpu")
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 8, 47, channels\), "):
        layer(np.zeros((1, 32, 32, 1), np.float32))
