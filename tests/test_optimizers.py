"""Tests of `FusedAdam`: the update of `keras.optimizers.Adam` by TensorFlow's fused kernel.

Each test runs `FusedAdam` and Keras' Adam side by side on the same variables
and gradients and asserts that weights and optimizer state stay the same.
"""

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastrans._compat import adam_moments
from kerastrans.config import Config, ModelConfig, with_overrides
from kerastrans.models import Pix2Pix
from kerastrans.optimizers import FusedAdam, check_clipping
from kerastrans.training import build_model
from kerastrans.training.build import make_optimizers

SHAPES = [(3,), (4, 5), (2, 3, 3, 2)]
STEPS = 5
ROOT = Path(__file__).resolve().parents[1]


def _schedule():
    return keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=2, decay_rate=0.5)


HYPER = {"beta_1": 0.5, "beta_2": 0.99, "epsilon": 1e-6}


def _gradients(seed: int = 0) -> list[list[np.ndarray]]:
    """``STEPS`` lists of fixed random gradients, one per variable of `SHAPES`."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(STEPS)]


def _variables(seed: int = 1) -> list[keras.Variable]:
    rng = np.random.default_rng(seed)
    return [keras.Variable(rng.normal(size=s).astype("float32")) for s in SHAPES]


def _train(optimizer, *, function: bool) -> tuple[list, keras.optimizers.Optimizer]:
    """Apply the fixed gradients ``STEPS`` times; the variables' values and the optimizer."""
    variables = _variables()
    optimizer.build(variables)

    def step(gradients):
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    if function:
        step = tf.function(step)
    for gradients in _gradients():
        step([tf.constant(g) for g in gradients])
    return [v.numpy() for v in variables], optimizer


@pytest.fixture
def fused_calls(monkeypatch):
    """A list that grows by one at each call (or trace) of TensorFlow's fused Adam kernel."""
    calls = []
    kernel = tf.raw_ops.ResourceApplyAdam

    def counting(**kwargs):
        calls.append(kwargs)
        return kernel(**kwargs)

    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", counting)
    return calls


def _assert_same_updates(fused, reference, *, function: bool) -> None:
    fused_values, fused = _train(fused, function=function)
    reference_values, reference = _train(reference, function=function)
    assert int(fused.iterations) == int(reference.iterations) == STEPS
    for a, b in zip(fused_values, reference_values, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert len(fused.variables) == len(reference.variables)
    for a, b in zip(fused.variables, reference.variables, strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6, err_msg=a.path
        )
    # The variables moved: the comparison is not between two untouched states.
    for value, start in zip(fused_values, _variables(), strict=True):
        assert np.max(np.abs(value - start.numpy())) > 1e-3


@pytest.mark.parametrize("function", [False, True], ids=["eager", "tf_function"])
def test_fused_adam_makes_the_updates_and_slots_of_keras_adam(fused_calls, function):
    _assert_same_updates(
        FusedAdam(_schedule(), **HYPER),
        keras.optimizers.Adam(_schedule(), **HYPER),
        function=function,
    )
    # One kernel per variable and step (per variable once when traced in a function).
    assert len(fused_calls) == len(SHAPES) * (1 if function else STEPS)


def test_fused_adam_slots_are_the_keras_momentums_and_velocities():
    _, fused = _train(FusedAdam(1e-2, **HYPER), function=False)
    _, reference = _train(keras.optimizers.Adam(1e-2, **HYPER), function=False)
    for name in ("_momentums", "_velocities"):
        slots, expected = getattr(fused, name), getattr(reference, name)
        assert [s.shape for s in slots] == [tuple(s) for s in SHAPES]
        for a, b in zip(slots, expected, strict=True):
            assert np.max(np.abs(a.numpy())) > 0
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "fused"),
    [({"amsgrad": True}, False), ({"weight_decay": 0.1}, True), ({"global_clipnorm": 1.0}, True)],
    ids=["amsgrad", "weight_decay", "global_clipnorm"],
)
@pytest.mark.parametrize("function", [False, True], ids=["eager", "tf_function"])
def test_amsgrad_weight_decay_and_clipping_match_keras_adam(fused_calls, options, fused, function):
    _assert_same_updates(
        FusedAdam(_schedule(), **HYPER, **options),
        keras.optimizers.Adam(_schedule(), **HYPER, **options),
        function=function,
    )
    # AMSGrad takes the Keras update; decay and clipping wrap the fused one.
    assert bool(fused_calls) is fused


def test_sparse_gradients_match_keras_adam(fused_calls):
    updates = []
    for optimizer in (FusedAdam(1e-2, **HYPER), keras.optimizers.Adam(1e-2, **HYPER)):
        variable = keras.Variable(np.ones((5, 3), "float32"))
        optimizer.build([variable])
        for step in range(3):
            rows = tf.constant([0, 3] if step % 2 else [1, 3])
            gradient = tf.IndexedSlices(tf.fill((2, 3), float(step + 1)), rows, (5, 3))
            optimizer.apply_gradients([(gradient, variable)])
        updates.append(variable.numpy())
    np.testing.assert_allclose(updates[0], updates[1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(updates[0], 1.0)
    assert not fused_calls  # IndexedSlices take the Keras update


def test_config_round_trip_keeps_the_class_and_hyper_parameters():
    optimizer = FusedAdam(_schedule(), **HYPER, amsgrad=True, name="g_adam")
    config = optimizer.get_config()
    # from_config deserialises the schedule in the dictionary it is given: pass a copy.
    assert FusedAdam.from_config(optimizer.get_config()).get_config() == config
    serialized = keras.saving.serialize_keras_object(optimizer)
    assert serialized["registered_name"] == "kerastrans>FusedAdam"
    copy = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(copy) is FusedAdam
    assert copy.get_config() == config
    assert config["learning_rate"]["class_name"] == "ExponentialDecay"
    assert keras.optimizers.get(serialized).__class__ is FusedAdam


def _small_config() -> Config:
    config = Config(
        model=ModelConfig(kind="pix2pix", input_shape=(16, 16, 1), output_shape=(16, 16, 1))
    )
    return with_overrides(
        config,
        {
            "model.generator.depth": 2,
            "model.generator.base_channels": 4,
            "model.discriminator.base_channels": 4,
            "model.discriminator.depth": 1,
            "training.beta_1": 0.3,
        },
    )


def test_runs_built_from_a_config_train_with_fused_adam():
    config = _small_config()
    g_optimizer, d_optimizer = make_optimizers(config, total_steps=10)
    assert isinstance(g_optimizer, FusedAdam) and isinstance(d_optimizer, FusedAdam)
    model = build_model(config, total_steps=10)
    assert isinstance(model.g_optimizer, FusedAdam) and isinstance(model.d_optimizer, FusedAdam)
    assert model.g_optimizer.beta_1 == model.d_optimizer.beta_1 == 0.3


def test_pix2pix_compiled_without_optimizers_trains_with_fused_adam(fused_calls):
    model = Pix2Pix(
        (16, 16, 1),
        1,
        {"channels": (4, 8), "norm": "instance"},
        {"base_channels": 4, "depth": 1, "norm": "instance"},
        seed=0,
    )
    model.compile()
    for optimizer in (model.g_optimizer, model.d_optimizer):
        assert isinstance(optimizer, FusedAdam)
        assert float(optimizer.learning_rate) == pytest.approx(2e-4)
        assert optimizer.beta_1 == 0.5
    before = [w.numpy() for w in model.trainable_weights]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    logs = model.train_on_batch(x, np.tanh(2 * x), return_dict=True)
    assert all(np.isfinite(value) for value in logs.values())
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == 1
    moved = [
        np.max(np.abs(w.numpy() - b)) > 0
        for w, b in zip(model.trainable_weights, before, strict=True)
    ]
    assert all(moved)
    assert fused_calls


def _first_gradient_norm(config: Config) -> float:
    """Global norm of the generator's gradient in the first update (Adam's m = (1 - b1) g)."""
    model = build_model(config, total_steps=10)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    model.train_on_batch(x, np.tanh(2 * x))
    optimizer = model.g_optimizer
    moments = [adam_moments(optimizer, w)[0].numpy() for w in model.generator.trainable_weights]
    return float(np.sqrt(sum(np.sum(m**2) for m in moments))) / (1 - optimizer.beta_1)


def test_training_clip_norm_bounds_the_global_norm_of_the_update_gradient():
    free = _first_gradient_norm(_small_config())
    clipped_config = with_overrides(_small_config(), ["training.clip_norm=0.001"])
    assert free > 0.01  # the option has something to clip
    assert _first_gradient_norm(clipped_config) == pytest.approx(0.001, rel=1e-3)
    g_optimizer, d_optimizer = make_optimizers(clipped_config, total_steps=10)
    assert g_optimizer.global_clipnorm == d_optimizer.global_clipnorm == 0.001


@pytest.mark.parametrize("wrap", [False, True], ids=["adam", "loss-scaled"])
def test_clipping_is_refused_when_replicas_would_each_clip_their_part(wrap):
    optimizer = FusedAdam(global_clipnorm=1.0)
    if wrap:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(ValueError, match=r"global_clipnorm=1; training.clip_norm\) is not "
                       r"supported with 2 replicas"):  # fmt: skip
        check_clipping(optimizer, two)
    check_clipping(optimizer, types.SimpleNamespace(num_replicas_in_sync=1))
    check_clipping(FusedAdam(), two)  # no clipping: nothing to refuse
    with pytest.raises(ValueError, match=r"\(clipvalue=0.5; "):
        check_clipping(FusedAdam(clipvalue=0.5), two)


#: Run in a fresh process: logical devices must be set before TensorFlow starts.
MIRRORED_SCRIPT = """
import json
import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras
import numpy as np

from kerastrans.optimizers import FusedAdam

SHAPES = [(3,), (4, 5), (2, 3, 3, 2)]
HYPER = {"beta_1": 0.5, "beta_2": 0.99, "epsilon": 1e-6}
rng = np.random.default_rng(0)
start = [rng.normal(size=s).astype("float32") for s in SHAPES]
gradients = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(4)]
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
strategy = tf.distribute.MirroredStrategy(devices)


def train(make_optimizer, distributed):
    scope = strategy.scope() if distributed else tf.distribute.get_strategy().scope()
    with scope:
        variables = [keras.Variable(v) for v in start]
        schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5)
        optimizer = make_optimizer(schedule, **HYPER)
        optimizer.build(variables)

    def replica_step(grads):
        # Replica r applies (r + 1) g: the all-reduced gradient is 3 g with two replicas.
        context = tf.distribute.get_replica_context()
        factor = tf.cast(context.replica_id_in_sync_group + 1, "float32")
        optimizer.apply_gradients([(factor * g, v) for g, v in zip(grads, variables)])

    @tf.function
    def step(grads):
        if distributed:
            strategy.run(replica_step, args=(grads,))
        else:
            optimizer.apply_gradients([(3.0 * g, v) for g, v in zip(grads, variables)])

    for grads in gradients:
        step([tf.constant(g) for g in grads])
    copies = [
        [np.asarray(c).tolist() for c in (v.value.values if distributed else [v.value])]
        for v in variables
    ]
    slots = [np.asarray(s).tolist() for s in optimizer._momentums + optimizer._velocities]
    return {"copies": copies, "slots": slots, "iterations": int(optimizer.iterations.numpy())}


results = {
    "replicas": strategy.num_replicas_in_sync,
    "fused_mirrored": train(FusedAdam, True),
    "keras_mirrored": train(keras.optimizers.Adam, True),
    "keras_single": train(keras.optimizers.Adam, False),
}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def mirrored():
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
        env=environment,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_fused_adam_under_mirrored_strategy_updates_every_copy_like_keras_adam(mirrored):
    assert mirrored["replicas"] == 2
    fused, keras_mirrored = mirrored["fused_mirrored"], mirrored["keras_mirrored"]
    single = mirrored["keras_single"]
    assert fused["iterations"] == keras_mirrored["iterations"] == 4
    for variable, expected, reference in zip(
        fused["copies"], keras_mirrored["copies"], single["copies"], strict=True
    ):
        assert len(variable) == 2
        for copy in variable:  # both devices' copies hold the update
            np.testing.assert_allclose(copy, expected[0], rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(copy, reference[0], rtol=1e-6, atol=1e-6)
    for a, b in zip(fused["slots"], keras_mirrored["slots"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
