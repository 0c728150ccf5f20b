"""Plain Keras pix2pix and CycleGAN train steps, as the TensorFlow tutorials write them.

Functional models and one ``tf.function`` step with gradient tapes, written
inline; `train_step.py` measures our models against these. The tutorials'
discriminators use ``ZeroPadding2D`` and valid convolutions for the last two
layers; here they use 'same' padding (32 x 32 patch logits at 256 x 256), as
ours do, so the networks match exactly.
"""

from __future__ import annotations

__all__ = ["plain_step"]


def plain_step(kind: str, size: int, channels: int, levels, widths, jit: bool):
    """The same architecture written inline; return a function of a batch running one step.

    Args:
        kind: ``"pix2pix"`` or ``"cyclegan"``.
        size: Height and width of the images.
        channels: Image channels.
        levels: Generator channels per level (8 for the U-Net, 3 for the ResNet).
        widths: Discriminator channels of its 4 conv blocks.
        jit: Compile the step with XLA.
    """
    build = _pix2pix if kind == "pix2pix" else _cyclegan
    return build(size, channels, tuple(levels), tuple(widths), jit)


def _pix2pix(size, channels, levels, widths, jit):
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

    inputs = layers.Input([size, size, channels])
    down = [downsample(levels[0], False)] + [downsample(f) for f in levels[1:]]
    up = [upsample(f, depth < 3) for depth, f in enumerate(reversed(levels[:-1]))]
    x, skips = inputs, []
    for block in down:
        x = block(x)
        skips.append(x)
    for block, skip in zip(up, reversed(skips[:-1]), strict=True):
        x = layers.Concatenate()([block(x), skip])
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same")(x)
    generator = keras.Model(inputs, layers.Activation("tanh", dtype="float32")(x))

    source, target = layers.Input([size, size, channels]), layers.Input([size, size, channels])
    x = layers.concatenate([source, target])
    x = downsample(widths[2])(downsample(widths[1])(downsample(widths[0], False)(x)))
    x = layers.Conv2D(widths[3], 4, strides=1, padding="same", use_bias=False)(x)
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


def _cyclegan(size, channels, levels, widths, jit):
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
        inputs = layers.Input([size, size, channels])
        x = conv_norm(inputs, levels[0], 7)
        x = conv_norm(conv_norm(x, levels[1], 3, 2), levels[2], 3, 2)
        for _ in range(9):
            x = layers.add(
                [x, conv_norm(conv_norm(x, levels[2], 3), levels[2], 3, activation=False)]
            )
        x = conv_norm(
            conv_norm(x, levels[1], 3, 2, transpose=True), levels[0], 3, 2, transpose=True
        )
        x = layers.Conv2D(channels, 7, padding="same")(x)
        return keras.Model(inputs, layers.Activation("tanh", dtype="float32")(x))

    def patch_discriminator():
        inputs = layers.Input([size, size, channels])
        x = layers.LeakyReLU(0.2)(layers.Conv2D(widths[0], 4, strides=2, padding="same")(inputs))
        for filters, strides in zip(widths[1:], (2, 2, 1), strict=True):
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
