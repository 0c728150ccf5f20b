"""Tests of the convolutions computed as matrix products on small maps (`kerastrans.nets.conv`).

Each layer is compared with the Keras layer it subclasses, given the same
weights: the matrix form must be the same function (forward and gradients),
and must be taken exactly where the module says it is.
"""

import itertools
import operator

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import kerastrans.nets.conv as conv
from kerastrans.precision import precision_scope

CLASSES = {"Conv2D": conv.Conv2D, "Conv2DTranspose": conv.Conv2DTranspose}
MATMULS = {"Conv2D": "conv2d_as_matmul", "Conv2DTranspose": "conv2d_transpose_as_matmul"}
FILTERS = 4
CHANNELS = 3


def _relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    assert actual.shape == expected.shape
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def _inputs(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _pair(kind: str, **arguments):
    """Our layer and the plain Keras layer it subclasses, with the same config."""
    ours = CLASSES[kind](**arguments)
    keras_layer = getattr(keras.layers, kind).from_config(ours.get_config())
    return ours, keras_layer


def _build_alike(ours, keras_layer, input_shape) -> None:
    ours.build(input_shape)
    keras_layer.build(input_shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ours.get_weights()]
    ours.set_weights(weights)
    keras_layer.set_weights(weights)


@pytest.fixture
def matmul_calls(monkeypatch):
    """Calls of the two matrix forms by the layers, counted per class name."""
    counts = dict.fromkeys(MATMULS, 0)
    for kind, name in MATMULS.items():
        original = getattr(conv, name)

        def counting(*args, _kind=kind, _original=original, **kwargs):
            counts[_kind] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(conv, name, counting)
    return counts


def _output_and_gradients(layer, x, cotangent):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * cotangent)
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    return [ops.convert_to_numpy(t) for t in (y, *gradients)]


def _assert_same_function(ours, keras_layer, x, tolerance=1e-5) -> None:
    expected_y = ops.convert_to_numpy(keras_layer(x))
    cotangent = _inputs(expected_y.shape, seed=2)
    got = _output_and_gradients(ours, x, cotangent)
    expected = _output_and_gradients(keras_layer, x, cotangent)
    assert len(got) == 2 + len(ours.trainable_weights)
    names = ("output", "d_input", "d_kernel", "d_bias")
    for name, a, b in zip(names, got, expected, strict=False):
        assert _relative_error(a, b) < tolerance, name


KERNELS = [1, 2, 3, 4, 5, (3, 2)]
STRIDES = [1, 2, 3, (1, 2)]
MAPS = [(5, 7), (1, 1), (3, 2)]


def _pairs(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _covered(kind, kernel, strides, padding, size) -> bool:
    """Whether the matrix form applies (and the convolution has an output at all)."""
    kernel_hw, strides_hw = _pairs(kernel), _pairs(strides)
    if kind == "Conv2D":
        return padding == "same" or all(map(operator.le, kernel_hw, size))
    return all(map(operator.ge, kernel_hw, strides_hw))


#: Left out: valid convolutions with a kernel larger than the map (no output), and
#: transposed ones with a kernel smaller than the stride (the Keras path, tested below).
GRID = [
    pytest.param(*case, id="{}-k{}-s{}-{}-{}x{}".format(*case[:4], *case[4]))
    for case in itertools.product(CLASSES, KERNELS, STRIDES, ("same", "valid"), MAPS)
    if _covered(*case)
]


@pytest.mark.parametrize(("kind", "kernel", "strides", "padding", "size"), GRID)
def test_matrix_form_gives_keras_output_and_gradients(
    matmul_calls, kind, kernel, strides, padding, size
):
    ours, keras_layer = _pair(
        kind,
        filters=FILTERS,
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        activation="tanh",
    )
    _build_alike(ours, keras_layer, (2, *size, CHANNELS))
    _assert_same_function(ours, keras_layer, _inputs((2, *size, CHANNELS)))
    assert matmul_calls[kind] == 1, "the matrix form was not taken"


@pytest.mark.parametrize("kind", CLASSES)
def test_matrix_form_without_bias_or_activation_gives_keras_result(matmul_calls, kind):
    ours, keras_layer = _pair(kind, filters=FILTERS, kernel_size=3, strides=2, use_bias=False)
    _build_alike(ours, keras_layer, (2, 5, 4, CHANNELS))
    _assert_same_function(ours, keras_layer, _inputs((2, 5, 4, CHANNELS)))
    assert matmul_calls[kind] == 1


def test_transpose_with_kernel_smaller_than_stride_keeps_keras_result(matmul_calls):
    ours, keras_layer = _pair(
        "Conv2DTranspose", filters=FILTERS, kernel_size=2, strides=3, padding="same"
    )
    _build_alike(ours, keras_layer, (2, 3, 2, CHANNELS))
    _assert_same_function(ours, keras_layer, _inputs((2, 3, 2, CHANNELS)))
    assert matmul_calls["Conv2DTranspose"] == 0


def test_small_maps_take_the_matrix_form_and_large_maps_keras(matmul_calls):
    small, large = _inputs((1, 4, 4, CHANNELS)), _inputs((1, 64, 64, CHANNELS))
    layer = conv.Conv2D(FILTERS, 3, padding="same")
    layer(small)
    assert matmul_calls["Conv2D"] == 1
    layer(large)
    assert matmul_calls["Conv2D"] == 1
    transpose = conv.Conv2DTranspose(FILTERS, 4, strides=2, padding="same")
    transpose(small)
    assert matmul_calls["Conv2DTranspose"] == 1
    transpose(large)
    assert matmul_calls["Conv2DTranspose"] == 1


@pytest.mark.parametrize(
    ("kind", "strides", "size", "taken"),
    [
        # Conv2D counts its output map (at most 256 pixels) ...
        ("Conv2D", 1, (16, 16), True),
        ("Conv2D", 1, (17, 16), False),
        ("Conv2D", 4, (64, 64), True),
        # ... the transposed convolution its input map (at most 64 pixels).
        ("Conv2DTranspose", 2, (8, 8), True),
        ("Conv2DTranspose", 2, (9, 8), False),
    ],
)
def test_the_limit_is_counted_on_the_smaller_map(matmul_calls, kind, strides, size, taken):
    CLASSES[kind](FILTERS, 4, strides=strides, padding="same")(_inputs((1, *size, CHANNELS)))
    assert matmul_calls[kind] == int(taken)


@pytest.mark.parametrize(
    ("kind", "option"),
    [
        pytest.param(kind, option, id=f"{kind}-{name}")
        for kind in CLASSES
        for name, option in (
            ("use_matmul_false", {"use_matmul": False}),
            ("dilation", {"dilation_rate": 2}),
            ("groups", {"groups": 3, "filters": 6}),
            ("output_padding", {"strides": 2, "output_padding": 1}),
        )
        if (kind, name) not in {("Conv2D", "output_padding"), ("Conv2DTranspose", "groups")}
    ],
)
def test_options_the_matrix_form_does_not_cover_keep_keras(matmul_calls, kind, option):
    option = dict(option)
    use_matmul = option.pop("use_matmul", True)  # an attribute, not a constructor argument
    arguments = {"filters": FILTERS, "kernel_size": 3, "padding": "same", "activation": "tanh"}
    ours, keras_layer = _pair(kind, **{**arguments, **option})
    ours.use_matmul = use_matmul
    x = _inputs((2, 4, 4, CHANNELS))
    _build_alike(ours, keras_layer, x.shape)
    _assert_same_function(ours, keras_layer, x)
    assert matmul_calls[kind] == 0


@pytest.mark.parametrize("kind", CLASSES)
def test_unknown_map_sizes_keep_keras(matmul_calls, kind):
    ours, keras_layer = _pair(kind, filters=FILTERS, kernel_size=3, strides=2, padding="same")
    _build_alike(ours, keras_layer, (None, None, None, CHANNELS))
    symbolic = ours(keras.Input(shape=(None, None, CHANNELS)))
    assert tuple(symbolic.shape) == (None, None, None, FILTERS)
    traced = tf.function(ours, input_signature=[tf.TensorSpec((None, None, None, CHANNELS))])
    x = _inputs((2, 4, 4, CHANNELS))
    assert _relative_error(traced(x), keras_layer(x)) < 1e-5
    assert matmul_calls[kind] == 0


@pytest.mark.parametrize("kind", CLASSES)
def test_matrix_form_works_in_a_function_with_unknown_batch(matmul_calls, kind):
    ours, keras_layer = _pair(
        kind, filters=FILTERS, kernel_size=3, strides=2, padding="same", activation="tanh"
    )
    _build_alike(ours, keras_layer, (None, 4, 4, CHANNELS))
    traced = tf.function(ours, input_signature=[tf.TensorSpec((None, 4, 4, CHANNELS))])
    for batch in (1, 3):
        x = _inputs((batch, 4, 4, CHANNELS), seed=batch)
        assert _relative_error(traced(x), keras_layer(x)) < 1e-5
    assert matmul_calls[kind] == 1  # traced once, for both batch sizes


@pytest.mark.parametrize("kind", CLASSES)
def test_mixed_bfloat16_computes_in_bfloat16_keeps_float32_kernel_and_float32_values(
    matmul_calls, kind
):
    arguments = {"filters": FILTERS, "kernel_size": 3, "strides": 2, "padding": "same"}
    x = _inputs((2, 4, 4, CHANNELS))
    with precision_scope("mixed_bfloat16"):
        mixed = CLASSES[kind](**arguments, activation="tanh")
    full = CLASSES[kind](**arguments, activation="tanh")
    _build_alike(full, mixed, x.shape)
    y = mixed(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(mixed.kernel.dtype) == "float32"
    assert _relative_error(ops.cast(y, "float32"), full(x)) < 2e-2
    assert matmul_calls[kind] == 2


@pytest.mark.parametrize("kind", CLASSES)
def test_config_round_trip_gives_the_same_class_and_output(kind):
    layer = CLASSES[kind](FILTERS, (3, 2), strides=(2, 1), padding="same", activation="relu")
    x = _inputs((2, 4, 5, CHANNELS))
    expected = ops.convert_to_numpy(layer(x))
    for copy in (
        CLASSES[kind].from_config(layer.get_config()),
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)),
    ):
        assert type(copy) is CLASSES[kind]
        assert copy.get_config() == layer.get_config()
        if not copy.built:  # a serialised layer is rebuilt from its build config
            copy.build(x.shape)
        copy.set_weights(layer.get_weights())
        np.testing.assert_array_equal(ops.convert_to_numpy(copy(x)), expected)
    assert keras.saving.serialize_keras_object(layer)["registered_name"] == f"kerastrans>{kind}"


# ----------------------------------------------------------------------------------------------
# Single-channel convolutions on large maps (`conv2d_thin`).

#: Maps whose outputs exceed `Conv2D.MATMUL_MAX_POSITIONS` (the patches form is not taken).
LARGE = (24, 26)


@pytest.fixture
def thin_calls(monkeypatch):
    """Calls of `conv2d_thin` by the layers (a one-item list, so the test sees updates)."""
    calls = [0]
    original = conv.conv2d_thin

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(conv, "conv2d_thin", counting)
    return calls


THIN_CASES = [
    pytest.param(
        channels, filters, kernel, padding, id=f"{channels}to{filters}-k{kernel}-{padding}"
    )
    for channels, filters in ((1, 5), (6, 1), (1, 1))
    for kernel in (3, 4, 7, (5, 2))
    for padding in ("same", "valid")
]


@pytest.mark.parametrize(("channels", "filters", "kernel", "padding"), THIN_CASES)
def test_single_channel_form_gives_keras_output_and_gradients(
    thin_calls, channels, filters, kernel, padding
):
    ours, keras_layer = _pair(
        "Conv2D", filters=filters, kernel_size=kernel, padding=padding, activation="tanh"
    )
    shape = (2, *LARGE, channels)
    _build_alike(ours, keras_layer, shape)
    _assert_same_function(ours, keras_layer, _inputs(shape))
    assert thin_calls[0] == 1, "the single-channel form was not taken"


@pytest.mark.parametrize(("channels", "filters"), [(1, 5), (6, 1)])
def test_single_channel_form_has_keras_second_derivatives(thin_calls, channels, filters):
    """A gradient penalty differentiates the input gradient again: it must match Keras'."""
    ours, keras_layer = _pair("Conv2D", filters=filters, kernel_size=4, padding="same")
    x = tf.constant(_inputs((2, *LARGE, channels)))
    _build_alike(ours, keras_layer, x.shape)

    def penalty_gradients(layer):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
                score = tf.reduce_sum(tf.tanh(y))
            penalty = tf.reduce_sum(tf.square(inner.gradient(score, x)))
        return outer.gradient(penalty, [x, *layer.trainable_weights])

    for got, expected in zip(penalty_gradients(ours), penalty_gradients(keras_layer), strict=True):
        assert _relative_error(got, expected) < 1e-4  # sums of ~10^3 float32 products
    assert thin_calls[0] >= 1


@pytest.mark.parametrize(
    ("channels", "filters", "arguments"),
    [
        pytest.param(3, 5, {}, id="three-channels"),
        pytest.param(5, 3, {}, id="three-filters"),
        pytest.param(1, 5, {"strides": 2}, id="strided"),
        pytest.param(1, 5, {"kernel_size": 1}, id="one-by-one"),
        pytest.param(1, 5, {"dilation_rate": 2}, id="dilated"),
    ],
)
def test_single_channel_form_is_taken_only_where_it_wins(thin_calls, channels, filters, arguments):
    ours, keras_layer = _pair(
        "Conv2D", filters=filters, **{"kernel_size": 3, "padding": "same", **arguments}
    )
    shape = (1, 40, 40, channels)
    _build_alike(ours, keras_layer, shape)
    _assert_same_function(ours, keras_layer, _inputs(shape))
    assert thin_calls[0] == 0


def test_small_single_channel_maps_take_the_patches_form(matmul_calls, thin_calls):
    conv.Conv2D(FILTERS, 7, padding="same")(_inputs((1, 16, 16, 1)))
    assert (matmul_calls["Conv2D"], thin_calls[0]) == (1, 0)


def test_single_channel_form_in_mixed_bfloat16_stays_close_to_float32(thin_calls):
    """The shifted sums add in float32: a 7 x 7 x 64 sum keeps bfloat16's one rounding."""
    x = _inputs((1, 32, 32, 64))
    with precision_scope("mixed_bfloat16"):
        mixed = conv.Conv2D(1, 7, padding="same")
    full = conv.Conv2D(1, 7, padding="same")
    _build_alike(full, mixed, x.shape)
    y = mixed(x)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert _relative_error(ops.cast(y, "float32"), full(x)) < 2e-2
    assert thin_calls[0] == 2
