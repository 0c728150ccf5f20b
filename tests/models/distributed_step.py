"""Run one training step of small models on one device and on two logical CPUs.

Run as a script in its own process (``python distributed_step.py``): logical
devices must be configured before TensorFlow initialises its devices, which
the parent test process has already done. Prints one JSON object
``{model: {"single": {...}, "mirrored": {...}}}`` with the logged losses and
a checksum of the weights after the step.
"""

from __future__ import annotations

import contextlib
import json

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerastrans.models import CycleGAN, Pix2Pix  # noqa: E402

BATCH = 4
SMALL = {
    "pix2pix": lambda: Pix2Pix(
        (32, 32, 1),
        generator={"channels": (8, 16), "norm": "instance"},
        discriminator={"base_channels": 8, "depth": 2, "norm": "instance"},
        adversarial="lsgan",
        warmup_steps=1,
        seed=3,
    ),
    "cyclegan": lambda: CycleGAN(
        (32, 32, 1),
        generator={"channels": (4, 8), "residual_blocks": 0},
        discriminator={"base_channels": 4, "depth": 1},
        identity_weight=0.0,
        pool_size=8,
        seed=3,
    ),
}


def run(build, strategy: tf.distribute.Strategy | None) -> dict:
    """Train ``build()`` one step on a fixed batch of 4 under ``strategy`` (None: default)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (BATCH, 32, 32, 1)).astype("float32")
    b = np.tanh(2 * a)[:, ::-1].copy()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = build()
        model.compile(
            g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3)
        )
    history = model.fit(tf.data.Dataset.from_tensors((a, b)), epochs=1, verbose=0).history
    weights = sum(float(np.sum(np.abs(w))) for w in model.trainable_weights)
    return {"logs": {key: values[0] for key, values in history.items()}, "weights": weights}


def main() -> None:
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    # One strategy object for all models: several MirroredStrategy instances in one
    # process can disagree on collective keys.
    mirrored = tf.distribute.MirroredStrategy(devices)
    results = {
        name: {"mirrored": run(build, mirrored), "replicas": len(devices)}
        for name, build in SMALL.items()
    }
    for name, build in SMALL.items():
        results[name]["single"] = run(build, None)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
