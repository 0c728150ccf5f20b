"""Train-step time of our Pix2Pix and CycleGAN against plain Keras tutorial code.

For each architecture, the same network is built twice: as our model
(`kerastrans.models.Pix2Pix` / `CycleGAN`, stepped through Keras' own compiled
``train_function``, the path ``fit`` takes) and as plain Keras code written
inline below the way the TensorFlow pix2pix and CycleGAN tutorials write it
(functional models, one ``tf.function`` step with gradient tapes). Steps of
the two alternate, so load from other processes on this shared machine hits
both alike; the ratio ``ms / plain_ms`` is what our abstractions cost.

- ``pix2pix-Nch``: U-Net 256 x 256 with 8 levels, 64 base channels, batch
  norm, dropout 0.5 in the 3 deepest decoder levels, transposed-conv
  up-sampling; conditional 70 x 70 PatchGAN; vanilla GAN + 100 x L1; batch 1.
- ``cyclegan-1ch``: two ResNet generators (9 residual blocks, instance norm),
  two 70 x 70 PatchGANs (instance norm), LSGAN, cycle 10, identity 5; batch 1;
  no image pool (the tutorials have none).

Both run in float32 and in mixed bfloat16 (``-bf16`` rows), each without and
with XLA (``jit_*`` keys). Our networks use our own layers where they are
faster: batch normalisation by the fused TensorFlow kernel in training
(`kerastrans.nets.FusedBatchNormalization`) and instance normalisation with
its affine parameters folded into one multiply-add; the plain code uses
`keras.layers.BatchNormalization` and the tutorial's instance normalisation.
The tutorials' discriminators use ``ZeroPadding2D`` and valid convolutions for
the last two layers; here both versions use 'same' padding (32 x 32 patch
logits), so the networks match exactly. Each row runs in its own process.

    python benchmarks/train_step.py            # everything (several minutes)
    python benchmarks/train_step.py --quick    # pix2pix only, fewer repeats
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

from _common import RESULTS, print_table, save_figure, write_results

NAME = "train_step"
SIZE = 256
#: Median step time of the PyTorch reference pix2pix (float32, batch 1, 256 x 256, 1 channel).
PYTORCH_PIX2PIX_MS = 574.0

PIX2PIX_GENERATOR = {
    "channels": (64, 128, 256, 512, 512, 512, 512, 512),
    "stem_kernel": None,
    "kernel_size": 4,
    "up": "transpose",
    "encoder_activation": "leaky_relu",
    "dropout": 0.5,
    "dropout_levels": 3,
}
CYCLEGAN_GENERATOR = {
    "channels": (64, 128, 256),
    "residual_blocks": 9,
    "norm": "instance",
    "skip": "none",
    "up": "transpose",
}


# -- ours ----------------------------------------------------------------------------------


def ours(kind: str, channels: int, jit: bool):
    """Our model, compiled; return a function that runs one train step on a batch."""
    import keras

    from kerastrans.models import CycleGAN, Pix2Pix

    if kind == "pix2pix":
        model = Pix2Pix((SIZE, SIZE, channels), channels, PIX2PIX_GENERATOR, seed=0)
    else:
        model = CycleGAN((SIZE, SIZE, channels), channels, CYCLEGAN_GENERATOR, pool_size=0, seed=0)
    model.compile(
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        jit_compile=jit,
    )
    model.make_train_function()

    def step(batch):
        logs = model.train_function([batch])
        return float(logs["g_loss"])

    return step


# -- plain Keras, as in the TensorFlow tutorials -------------------------------------------


def plain(kind: str, channels: int, jit: bool):
    """The same architecture written inline; return a one-step function."""
    return (plain_pix2pix if kind == "pix2pix" else plain_cyclegan)(channels, jit)


def plain_pix2pix(channels: int, jit: bool):
    import keras
    import tensorflow as tf
    from keras import layers

    def downsample(filters, batchnorm=True):
        block = keras.Sequential()
        block.add(layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=not batchnorm))
        if batchnorm:
            block.add(layers.BatchNormalization())
        block.add(layers.LeakyReLU(0.2))
        return block

    def upsample(filters, dropout=False):
        block = keras.Sequential()
        block.add(layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False))
        block.add(layers.BatchNormalization())
        if dropout:
            block.add(layers.Dropout(0.5))
        block.add(layers.ReLU())
        return block

    inputs = layers.Input([SIZE, SIZE, channels])
    down = [downsample(64, False), downsample(128), downsample(256)] + [
        downsample(512) for _ in range(5)
    ]
    up = [upsample(512, True) for _ in range(3)] + [upsample(f) for f in (512, 256, 128, 64)]
    x, skips = inputs, []
    for block in down:
        x = block(x)
        skips.append(x)
    for block, skip in zip(up, reversed(skips[:-1]), strict=True):
        x = layers.Concatenate()([block(x), skip])
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same")(x)
    generator = keras.Model(inputs, layers.Activation("tanh", dtype="float32")(x))

    source, target = layers.Input([SIZE, SIZE, channels]), layers.Input([SIZE, SIZE, channels])
    x = layers.concatenate([source, target])
    x = downsample(256)(downsample(128)(downsample(64, False)(x)))
    x = layers.Conv2D(512, 4, strides=1, padding="same", use_bias=False)(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Conv2D(1, 4, strides=1, padding="same")(x)
    discriminator = keras.Model([source, target], layers.Activation("linear", dtype="float32")(x))

    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)

    @tf.function(jit_compile=jit)
    def train_step(input_image, target):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = generator(input_image, training=True)
            disc_real_output = discriminator([input_image, target], training=True)
            disc_generated_output = discriminator([input_image, gen_output], training=True)
            gan_loss = cross_entropy(tf.ones_like(disc_generated_output), disc_generated_output)
            l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
            gen_total_loss = gan_loss + 100.0 * l1_loss
            disc_loss = 0.5 * (
                cross_entropy(tf.ones_like(disc_real_output), disc_real_output)
                + cross_entropy(tf.zeros_like(disc_generated_output), disc_generated_output)
            )
        generator_gradients = gen_tape.gradient(gen_total_loss, generator.trainable_variables)
        discriminator_gradients = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        g_optimizer.apply_gradients(
            zip(generator_gradients, generator.trainable_variables, strict=True)
        )
        d_optimizer.apply_gradients(
            zip(discriminator_gradients, discriminator.trainable_variables, strict=True)
        )
        return gen_total_loss

    return lambda batch: float(train_step(*batch))


def plain_cyclegan(channels: int, jit: bool):
    import keras
    import tensorflow as tf
    from keras import layers

    class InstanceNormalization(layers.Layer):
        """As in tensorflow_examples.models.pix2pix (the TF CycleGAN tutorial)."""

        def build(self, input_shape):
            self.scale = self.add_weight(shape=input_shape[-1:], initializer="ones")
            self.offset = self.add_weight(shape=input_shape[-1:], initializer="zeros")

        def call(self, x):
            mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
            return self.scale * (x - mean) * tf.math.rsqrt(variance + 1e-5) + self.offset

    def conv_norm(x, filters, kernel, strides=1, activation=True, transpose=False):
        conv = layers.Conv2DTranspose if transpose else layers.Conv2D
        x = conv(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = InstanceNormalization()(x)
        return layers.Activation("relu")(x) if activation else x

    def resnet_generator():
        inputs = layers.Input([SIZE, SIZE, channels])
        x = conv_norm(inputs, 64, 7)
        x = conv_norm(conv_norm(x, 128, 3, 2), 256, 3, 2)
        for _ in range(9):
            x = layers.add([x, conv_norm(conv_norm(x, 256, 3), 256, 3, activation=False)])
        x = conv_norm(conv_norm(x, 128, 3, 2, transpose=True), 64, 3, 2, transpose=True)
        x = layers.Conv2D(channels, 7, padding="same")(x)
        return keras.Model(inputs, layers.Activation("tanh", dtype="float32")(x))

    def patch_discriminator():
        inputs = layers.Input([SIZE, SIZE, channels])
        x = layers.LeakyReLU(0.2)(layers.Conv2D(64, 4, strides=2, padding="same")(inputs))
        for filters, strides in ((128, 2), (256, 2), (512, 1)):
            x = layers.Conv2D(filters, 4, strides=strides, padding="same", use_bias=False)(x)
            x = layers.LeakyReLU(0.2)(InstanceNormalization()(x))
        x = layers.Conv2D(1, 4, padding="same")(x)
        return keras.Model(inputs, layers.Activation("linear", dtype="float32")(x))

    gen_g, gen_f = resnet_generator(), resnet_generator()
    disc_x, disc_y = patch_discriminator(), patch_discriminator()
    optimizers = [keras.optimizers.Adam(2e-4, beta_1=0.5) for _ in range(4)]
    mse, mae = keras.losses.MeanSquaredError(), keras.losses.MeanAbsoluteError()

    @tf.function(jit_compile=jit)
    def train_step(real_x, real_y):
        with tf.GradientTape(persistent=True) as tape:
            fake_y = gen_g(real_x, training=True)
            cycled_x = gen_f(fake_y, training=True)
            fake_x = gen_f(real_y, training=True)
            cycled_y = gen_g(fake_x, training=True)
            same_x = gen_f(real_x, training=True)
            same_y = gen_g(real_y, training=True)
            disc_real_x, disc_fake_x = disc_x(real_x, training=True), disc_x(fake_x, training=True)
            disc_real_y, disc_fake_y = disc_y(real_y, training=True), disc_y(fake_y, training=True)
            total_cycle = 10.0 * (mae(real_x, cycled_x) + mae(real_y, cycled_y))
            gen_g_loss = mse(tf.ones_like(disc_fake_y), disc_fake_y)
            gen_f_loss = mse(tf.ones_like(disc_fake_x), disc_fake_x)
            total_g = gen_g_loss + total_cycle + 5.0 * mae(real_y, same_y)
            total_f = gen_f_loss + total_cycle + 5.0 * mae(real_x, same_x)
            disc_x_loss = 0.5 * (
                mse(tf.ones_like(disc_real_x), disc_real_x)
                + mse(tf.zeros_like(disc_fake_x), disc_fake_x)
            )
            disc_y_loss = 0.5 * (
                mse(tf.ones_like(disc_real_y), disc_real_y)
                + mse(tf.zeros_like(disc_fake_y), disc_fake_y)
            )
        for loss, model, optimizer in zip(
            (total_g, total_f, disc_x_loss, disc_y_loss),
            (gen_g, gen_f, disc_x, disc_y),
            optimizers,
            strict=True,
        ):
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return total_g + total_f

    return lambda batch: float(train_step(*batch))


# -- measurement ---------------------------------------------------------------------------


def interleaved_ms(ours_step, plain_step, batch, warmup: int, repeats: int) -> tuple[float, float]:
    """Median milliseconds of each step, alternating ours and plain after warm-up."""
    for _ in range(warmup):
        ours_step(batch)
        plain_step(batch)
    times = {"ours": [], "plain": []}
    for _ in range(repeats):
        for key, step in (("ours", ours_step), ("plain", plain_step)):
            start = time.perf_counter()
            step(batch)
            times[key].append(1000 * (time.perf_counter() - start))
    return statistics.median(times["ours"]), statistics.median(times["plain"])


def measure(kind: str, channels: int, precision: str, warmup: int, repeats: int) -> dict:
    """One row: ours and plain, without and with XLA, in ``precision``."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kerastrans.precision import precision_scope

    rng = np.random.default_rng(0)
    batch = tuple(
        tf.constant(rng.uniform(-1, 1, (1, SIZE, SIZE, channels)).astype("float32"))
        for _ in range(2)
    )
    suffix = "" if precision == "float32" else "-bf16"
    row = {"method": f"{kind}-{channels}ch{suffix}"}
    for jit in (False, True):
        with precision_scope(precision):
            ours_step, plain_step = ours(kind, channels, jit), plain(kind, channels, jit)
            ours_ms, plain_ms = interleaved_ms(ours_step, plain_step, batch, warmup, repeats)
        del ours_step, plain_step
        keras.backend.clear_session()
        gc.collect()
        prefix = "jit_" if jit else ""
        row.update(
            {
                f"{prefix}ms": round(ours_ms, 1),
                f"{prefix}plain_ms": round(plain_ms, 1),
                f"{prefix}ratio": round(ours_ms / plain_ms, 3),
            }
        )
        print(
            f"  {row['method']:>18} jit={jit!s:5} ours {ours_ms:8.1f} ms  plain {plain_ms:8.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    return row


def plot(rows: list[dict], path) -> None:
    """Bar chart of ours / plain per row, without and with XLA, labelled with the times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(10, 4.5))
    positions = np.arange(len(rows))
    for offset, prefix, label in ((-0.2, "", "without XLA"), (0.2, "jit_", "with XLA")):
        ratios = [row[f"{prefix}ratio"] for row in rows]
        bars = axis.bar(positions + offset, ratios, 0.4, label=label)
        for bar, row in zip(bars, rows, strict=True):
            text = f"{row[f'{prefix}ms']:.0f}\n{row[f'{prefix}plain_ms']:.0f}"
            axis.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(positions, [row["method"] for row in rows], rotation=20, ha="right")
    axis.set_ylabel("train step time, kerastrans / plain Keras")
    axis.set_title("256 x 256, batch 1 (labels: ours / plain median ms)")
    axis.set_ylim(0, max(1.3, 1.15 * max(r[k] for r in rows for k in ("ratio", "jit_ratio"))))
    axis.legend(loc="lower right")
    save_figure(figure, path)


def measure_in_subprocess(kind: str, channels: int, precision: str, warmup: int, repeats: int):
    """`measure` in a fresh process, so that no model or XLA cache outlives its row."""
    command = [
        sys.executable,
        __file__,
        "--row",
        f"{kind}:{channels}:{precision}",
        "--warmup",
        str(warmup),
        "--repeats",
        str(repeats),
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pix2pix 1 channel only, 1 + 3 steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model (2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model (5)")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # kind:channels:precision, internal
    args = parser.parse_args(argv)
    if args.row:
        kind, channels, precision = args.row.split(":")
        print(json.dumps(measure(kind, int(channels), precision, args.warmup, args.repeats)))
        return 0
    cases = [("pix2pix", 1), ("pix2pix", 3), ("cyclegan", 1)]
    warmup, repeats = args.warmup, args.repeats
    if args.quick:
        cases, warmup, repeats = [("pix2pix", 1)], 1, 3
    rows = [
        measure_in_subprocess(kind, channels, precision, warmup, repeats)
        for precision in ("float32", "mixed_bfloat16")
        for kind, channels in cases
    ]
    print_table(rows)
    bf16 = next((r for r in rows if r["method"] == "pix2pix-1ch-bf16"), None)
    if bf16 is not None:
        best = min(bf16["ms"], bf16["jit_ms"])
        print(
            f"\npix2pix-1ch mixed bfloat16: {best:.0f} ms = {best / PYTORCH_PIX2PIX_MS:.2f} x "
            f"the PyTorch reference ({PYTORCH_PIX2PIX_MS:.0f} ms, float32)"
        )
    command = "python benchmarks/train_step.py" + (" --quick" if args.quick else "")
    if not args.quick:
        plot(rows, RESULTS / f"{NAME}.png")
        print(write_results(NAME, command, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
