"""pix2pix: paired image-to-image translation with a conditional PatchGAN.

Isola et al. (2017), "Image-to-image translation with conditional adversarial
networks" (CVPR). The generator minimises pixel losses against the target
(L1 by default; L2, focal cross-entropy and Dice for segmentation targets,
total variation, perceptual, latent regularisation) plus an adversarial term
from a discriminator that sees the (source, image) pair. Batches are
``(source, target)`` tuples of images in [-1, 1] (or one-hot targets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf
from keras import ops

from kerastrans.losses import (
    dice_loss,
    focal_loss,
    generator_adversarial_loss,
    l1_loss,
    l2_loss,
    latent_loss,
    total_variation,
)
from kerastrans.models._gan import (
    TranslationGAN,
    apply_gradients,
    check_weights,
    image_metrics,
    unpack_pair,
)
from kerastrans.models.image_pool import ImagePool
from kerastrans.nets import Generator, PatchDiscriminator
from kerastrans.nets.blocks import check_count

__all__ = ["Pix2Pix"]

#: Pixel losses of the generator, in the order they are reported.
PIXEL_LOSSES = ("l1", "l2", "focal", "dice", "tv", "perceptual", "latent")


@keras.saving.register_keras_serializable(package="kerastrans")
class Pix2Pix(TranslationGAN):
    """Paired translation: generator + conditional PatchGAN, each with its optimizer.

    Args:
        input_shape: ``(height, width, channels)`` of the source images in
            training (height and width must suit the generator's depth).
        output_channels: Channels of the target (classes for one-hot targets).
        generator: Options of `kerastrans.nets.Generator` (a plain dict);
            missing keys take the Generator defaults.
        discriminator: Options of `kerastrans.nets.PatchDiscriminator`.
        conditional: The discriminator sees the source concatenated to the image.
        adversarial: Adversarial loss (``"vanilla"`` as in the paper,
            ``"lsgan"``, ``"hinge"`` or ``"wgan-gp"``).
        adversarial_weight: Weight of the adversarial term (1); 0 trains the
            generator alone and builds no discriminator.
        l1_weight: Weight of the L1 loss (100 in the paper).
        l2_weight: Weight of the L2 loss.
        focal_weight: Weight of the focal cross-entropy (softmax outputs).
        focal_gamma: Focusing exponent of the focal loss.
        dice_weight: Weight of the Dice loss (softmax outputs).
        class_weights: Per-channel weights of L1, L2, focal and Dice.
        tv_weight: Weight of the total variation of the output.
        latent_weight: Weight of the L2 regularisation of the latent code.
        pool_size: Past (source, image) pairs shown to the discriminator; 0
            shows only the current batch (the paper).
        **kwargs: The shared options of `kerastrans.models.TranslationGAN`
            (``gradient_penalty_weight``, ``label_jitter``, ``warmup_steps``,
            ``d_update_every``, ``perceptual_weight``, ``perceptual``,
            ``seed``, ``name``, ``dtype``).

    >>> model = Pix2Pix((32, 32, 1), generator={"channels": (8, 16)},
    ...                 discriminator={"base_channels": 8, "depth": 2})
    >>> model.compile()
    >>> tuple(model.predict(keras.ops.zeros((1, 32, 32, 1)), verbose=0).shape)
    (1, 32, 32, 1)
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        output_channels: int = 1,
        generator: Mapping | None = None,
        discriminator: Mapping | None = None,
        *,
        conditional: bool = True,
        adversarial: str = "vanilla",
        l1_weight: float = 100.0,
        l2_weight: float = 0.0,
        focal_weight: float = 0.0,
        focal_gamma: float = 2.0,
        dice_weight: float = 0.0,
        class_weights: Sequence[float] | None = None,
        tv_weight: float = 0.0,
        latent_weight: float = 0.0,
        pool_size: int = 0,
        name: str = "pix2pix",
        **kwargs,
    ):
        super().__init__(adversarial=adversarial, name=name, **kwargs)
        input_shape = tuple(input_shape)
        self.source_shape = input_shape
        self.output_channels = int(output_channels)
        self.conditional = bool(conditional)
        self.focal_gamma = float(focal_gamma)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.pool_size = check_count("pool_size", pool_size, 0)
        self.loss_weights = check_weights(
            {
                "l1": l1_weight,
                "l2": l2_weight,
                "focal": focal_weight,
                "dice": dice_weight,
                "tv": tv_weight,
                "perceptual": self.perceptual_weight,
                "latent": latent_weight,
                "adversarial": self.adversarial_weight,
            }
        )

        # Networks: rebuilt from the option dicts alone when a model is loaded.
        policy = self.dtype_policy.name
        self.generator_options = dict(generator or {})
        self.generator = self._make_generator(input_shape)
        self.discriminator_options = dict(discriminator or {})
        self.discriminator = None
        self.image_pool = None
        if self.adversarial_weight:
            self.check_critic(self.discriminator_options)
            pair_channels = self.output_channels + (input_shape[2] if conditional else 0)
            pair_shape = (*self.generator.output_size(input_shape), pair_channels)
            self.discriminator = PatchDiscriminator(
                pair_shape,
                name="discriminator",
                dtype=policy,
                **{"seed": self.network_seed(2), **self.discriminator_options},
            )
            if self.pool_size:
                self.image_pool = ImagePool(self.pool_size, pair_shape, seed=self.network_seed(3))
        active = [key for key in PIXEL_LOSSES if self.loss_weights[key]]
        adversarial_names = ["adversarial", "d_loss"] if self.discriminator is not None else []
        penalty = ["gp"] if self.discriminator is not None and adversarial == "wgan-gp" else []
        self.add_trackers(["g_loss", *active, *adversarial_names, *penalty, "l1", "psnr", "ssim"])
        self.built = True

    def _make_generator(self, input_shape: tuple) -> keras.Model:
        """The generator; models with another network (reconstruction) override this."""
        return Generator(
            input_shape,
            self.output_channels,
            name="generator",
            dtype=self.dtype_policy.name,
            **{"seed": self.network_seed(1), **self.generator_options},
        )

    def _generators(self) -> list:
        return [self.generator]

    def _discriminators(self) -> list:
        return [] if self.discriminator is None else [self.discriminator]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _pair(self, source, image):
        """What the discriminator judges: the image, or (source, image) if conditional."""
        if not self.conditional:
            return image
        return ops.concatenate([ops.cast(source, image.dtype), image], axis=-1)

    def _pixel_terms(self, target, fake, latent) -> dict:
        """The generator's non-adversarial losses with a non-zero weight."""
        losses = {
            "l1": lambda: l1_loss(target, fake, self.class_weights),
            "l2": lambda: l2_loss(target, fake, self.class_weights),
            "focal": lambda: focal_loss(target, fake, self.focal_gamma, self.class_weights),
            "dice": lambda: dice_loss(target, fake, self.class_weights),
            "tv": lambda: total_variation(fake),
            "perceptual": lambda: self.perceptual_loss(target, fake),
            "latent": lambda: latent_loss(latent),
        }
        return {key: losses[key]() for key in PIXEL_LOSSES if self.loss_weights[key]}

    def train_step(self, data):
        source, target = unpack_pair(data)
        step = self.current_step()
        penalty = d_loss = None
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # 1. Translate, keeping the latent code for its regulariser.
            features = self.generator.encode(source, training=True)
            fake = self.generator.decode(features, training=True)
            # 2. Pixel losses against the target.
            terms = self._pixel_terms(target, fake, features[-1])
            if self.discriminator is not None:
                # 3. The generator tries to make the discriminator call (source, fake) real.
                real_pair, fake_pair = self._pair(source, target), self._pair(source, fake)
                fake_logits = self.discriminator(fake_pair, training=True)
                terms["adversarial"] = generator_adversarial_loss(fake_logits, self.adversarial)
                # 4. The discriminator sees real pairs and current (or pooled past) fakes.
                if self.image_pool is not None:
                    fake_pair, fake_logits = self.image_pool(ops.stop_gradient(fake_pair)), None
                d_loss, penalty = self.discriminator_loss(
                    self.discriminator, real_pair, fake_pair, fake_logits=fake_logits
                )
            g_loss = self.weighted_sum(terms, self.loss_weights, self.adversarial_gate(step))
        # 5. Update the generator, then the discriminator on its schedule.
        apply_gradients(g_tape, g_loss, self.g_variables, self.g_optimizer)
        if self.discriminator is not None:
            apply_gradients(
                d_tape,
                d_loss,
                self.d_variables,
                self.d_optimizer,
                when=self.discriminator_due(step),
            )
        return self.record({"g_loss": g_loss, **terms, "d_loss": d_loss, "gp": penalty})

    def test_step(self, data):
        source, target = unpack_pair(data)
        features = self.generator.encode(source, training=False)
        fake = self.generator.decode(features, training=False)
        terms = self._pixel_terms(target, fake, features[-1])
        terms.setdefault("l1", l1_loss(target, fake))
        return self.record({**terms, **image_metrics(target, fake)})

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "input_shape": self.source_shape,
                "output_channels": self.output_channels,
                "generator": self.generator_options,
                "discriminator": self.discriminator_options,
                "conditional": self.conditional,
                "l1_weight": self.loss_weights["l1"],
                "l2_weight": self.loss_weights["l2"],
                "focal_weight": self.loss_weights["focal"],
                "focal_gamma": self.focal_gamma,
                "dice_weight": self.loss_weights["dice"],
                "class_weights": self.class_weights,
                "tv_weight": self.loss_weights["tv"],
                "latent_weight": self.loss_weights["latent"],
                "pool_size": self.pool_size,
            }
        )
        return config
