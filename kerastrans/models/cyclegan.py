"""CycleGAN: unpaired translation between domains A and B.

Zhu et al. (2017), "Unpaired image-to-image translation using
cycle-consistent adversarial networks" (ICCV). Generators G: A -> B and
F: B -> A, a discriminator per domain fed from a pool of past fakes, LSGAN
loss, cycle ``F(G(a)) ~ a``, ``G(F(b)) ~ b`` and identity ``F(a) ~ a``,
``G(b) ~ b`` losses. Extras of the reference code for CT: air-region
preservation (HU threshold), gradient and total-variation losses, perceptual
similarity of each image and its translation, and, when both generators share
one encoder, latent-code regularisation and a latent-code discriminator that
makes the codes of A and B indistinguishable. Batches are ``(a, b)`` tuples of
images in [-1, 1]; they need not correspond.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import keras
import tensorflow as tf
from keras import ops

from kerastrans.config import Window
from kerastrans.losses import (
    air_loss,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_loss,
    hu_to_unit,
    l1_loss,
    latent_loss,
    total_variation,
    window_rescale,
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

__all__ = ["CYCLEGAN_DISCRIMINATOR", "CYCLEGAN_GENERATOR", "CycleGAN"]

#: Default generator options: the ResNet generator with 9 residual blocks (Zhu et al.).
CYCLEGAN_GENERATOR = MappingProxyType(
    {"channels": (64, 128, 256), "skip": "none", "residual_blocks": 9, "norm": "instance"}
)
#: Default discriminator options: 70 x 70 PatchGAN with instance normalisation.
CYCLEGAN_DISCRIMINATOR = MappingProxyType({"norm": "instance"})
#: Default latent-code discriminator: two 3 x 3 convolutions, no down-sampling.
LATENT_DISCRIMINATOR = MappingProxyType({"depth": 0, "kernel_size": 3, "norm": "none"})

#: Generator terms besides the adversarial ones, in the order they are reported.
_TERMS = ("cycle", "identity", "air", "gradient", "tv", "perceptual", "latent")


@keras.saving.register_keras_serializable(package="kerastrans")
class CycleGAN(TranslationGAN):
    """Two generators and two discriminators trained on unpaired batches ``(a, b)``.

    Args:
        input_shape: ``(height, width, channels)`` of domain A in training
            (known height and width when ``pool_size > 0``).
        output_channels: Channels of domain B (same height and width).
        generator: Options of `kerastrans.nets.Generator` for G and F, over
            `CYCLEGAN_GENERATOR`.
        discriminator: Options of `kerastrans.nets.PatchDiscriminator` for
            both domains, over `CYCLEGAN_DISCRIMINATOR`.
        shared_encoder: G and F use one encoder (A and B need equal channels).
        latent_discriminator: Options of the latent-code discriminator, over
            `LATENT_DISCRIMINATOR`.
        adversarial: Adversarial loss (default ``"lsgan"`` as in the paper).
        adversarial_weight: Weight of the two adversarial terms.
        cycle_weight: Weight of the L1 cycle losses (10).
        identity_weight: Weight of the L1 identity losses (5 = 0.5 x cycle).
        latent_adversarial_weight: Weight of the encoder's latent adversarial
            term (needs ``shared_encoder``).
        latent_weight: Weight of the L2 regularisation of the latent codes.
        air_weight: Weight of the air-preservation loss (needs the next three).
        air_threshold: Air threshold in HU (e.g. -900).
        window_a: `Window` (or its dict ``{"base", "range"}``) that mapped
            domain A to [-1, 1], in physical units (HU).
        window_b: The same for domain B.
        gradient_weight: Weight of the L1 distance between image gradients of
            each image and its translation.
        tv_weight: Weight of the total variation of G's output.
        pool_size: Past fakes kept for each discriminator (50; 0: none).
        **kwargs: The shared options of `kerastrans.models.TranslationGAN`.
    """

    def __init__(
        self,
        input_shape: Sequence[int | None],
        output_channels: int = 1,
        generator: Mapping | None = None,
        discriminator: Mapping | None = None,
        *,
        shared_encoder: bool = False,
        latent_discriminator: Mapping | None = None,
        adversarial: str = "lsgan",
        cycle_weight: float = 10.0,
        identity_weight: float = 5.0,
        latent_adversarial_weight: float = 0.0,
        latent_weight: float = 0.0,
        air_weight: float = 0.0,
        air_threshold: float | None = None,
        window_a: Window | Mapping[str, float] | None = None,
        window_b: Window | Mapping[str, float] | None = None,
        gradient_weight: float = 0.0,
        tv_weight: float = 0.0,
        pool_size: int = 50,
        name: str = "cyclegan",
        **kwargs,
    ):
        super().__init__(adversarial=adversarial, name=name, **kwargs)
        shape_a = tuple(input_shape)
        shape_b = (*shape_a[:2], int(output_channels))
        self.shapes = shape_a, shape_b
        self.shared_encoder = bool(shared_encoder)
        self.pool_size = check_count("pool_size", pool_size, 0)
        self.loss_weights = check_weights(
            {
                "cycle": cycle_weight,
                "identity": identity_weight,
                "air": air_weight,
                "gradient": gradient_weight,
                "tv": tv_weight,
                "perceptual": self.perceptual_weight,
                "latent": latent_weight,
                "adversarial": self.adversarial_weight,
                "adversarial_latent": latent_adversarial_weight,
            }
        )
        self.windows = tuple(
            None if window is None else Window.from_value(window, name)
            for name, window in (("window_a", window_a), ("window_b", window_b))
        )
        self._check_options(shape_a, shape_b, air_threshold, *self.windows)
        self.air_threshold = air_threshold

        policy = self.dtype_policy.name
        self.generator_options = {**CYCLEGAN_GENERATOR, **(generator or {})}
        self.discriminator_options = {**CYCLEGAN_DISCRIMINATOR, **(discriminator or {})}
        self.latent_discriminator_options = {**LATENT_DISCRIMINATOR, **(latent_discriminator or {})}
        self.check_critic(self.discriminator_options)
        if latent_adversarial_weight:
            self.check_critic(self.latent_discriminator_options)
        self.generator_g = Generator(
            shape_a,
            shape_b[2],
            name="generator_g",
            dtype=policy,
            **{"seed": self.network_seed(1), **self.generator_options},
        )
        self.generator_f = Generator(
            shape_b,
            shape_a[2],
            name="generator_f",
            dtype=policy,
            encoder=self.generator_g.encoder if self.shared_encoder else None,
            **{"seed": self.network_seed(2), **self.generator_options},
        )
        self.discriminator_a, self.discriminator_b = (
            PatchDiscriminator(
                shape,
                name=f"discriminator_{domain}",
                dtype=policy,
                **{"seed": self.network_seed(3 + i), **self.discriminator_options},
            )
            for i, (domain, shape) in enumerate((("a", shape_a), ("b", shape_b)))
        )
        self.latent_discriminator = None
        if latent_adversarial_weight:
            code = self.generator_g.encoder.outputs[-1]
            if len(code.shape) != 4:
                raise ValueError(
                    "latent_adversarial_weight needs a latent feature map, not "
                    f"bottleneck_fc; got a latent code of shape {code.shape}"
                )
            self.latent_discriminator = PatchDiscriminator(
                (None, None, code.shape[-1]),
                name="discriminator_latent",
                dtype=policy,
                **{"seed": self.network_seed(5), **self.latent_discriminator_options},
            )
        self.pool_a = self.pool_b = None
        if self.pool_size:
            self.pool_a = ImagePool(self.pool_size, shape_a, seed=self.network_seed(6))
            self.pool_b = ImagePool(self.pool_size, shape_b, seed=self.network_seed(7))
        active = [
            key for key in (*_TERMS, "adversarial", "adversarial_latent") if self.loss_weights[key]
        ]
        discriminators = ["d_loss", "d_a", "d_b"] + ["d_latent"] * bool(self.latent_discriminator)
        penalty = ["gp"] if adversarial == "wgan-gp" else []
        tests = ["psnr_a2b", "ssim_a2b", "psnr_b2a", "ssim_b2a", "cycle"]
        self.add_trackers(["g_loss", *active, *discriminators, *penalty, *tests])
        self.built = True

    def _check_options(self, shape_a, shape_b, air_threshold, window_a, window_b) -> None:
        same_channels = shape_a[2] == shape_b[2]
        if self.shared_encoder and not same_channels:
            raise ValueError(
                f"shared_encoder needs domains with equal channels, got {shape_a[2]} "
                f"(A) and {shape_b[2]} (B)"
            )
        if self.loss_weights["identity"] and not same_channels:
            raise ValueError(
                f"identity_weight > 0 needs domains with equal channels, got "
                f"{shape_a[2]} (A) and {shape_b[2]} (B); set identity_weight=0"
            )
        if self.loss_weights["adversarial_latent"] and not self.shared_encoder:
            raise ValueError("latent_adversarial_weight > 0 needs shared_encoder=True")
        if self.loss_weights["air"] and None in (air_threshold, window_a, window_b):
            raise ValueError(
                "air_weight > 0 needs air_threshold (HU), window_a and window_b (Windows "
                f"in HU), got air_threshold={air_threshold}, window_a={window_a}, "
                f"window_b={window_b}"
            )

    def _generators(self) -> list:
        return [self.generator_g, self.generator_f]

    def _discriminators(self) -> list:
        latent = [self.latent_discriminator] if self.latent_discriminator is not None else []
        return [self.discriminator_a, self.discriminator_b, *latent]

    def call(self, inputs, training=False):
        """Translate A -> B (use ``generator_f`` for B -> A)."""
        return self.generator_g(inputs, training=training)

    def _extra_terms(self, real_a, real_b, fake_a, fake_b, code_a, code_b) -> dict:
        """The optional losses of the reference code that have a non-zero weight."""
        window_a, window_b = self.windows
        losses = {
            "air": lambda: (
                air_loss(
                    real_a,
                    window_rescale(fake_b, window_b, window_a),
                    hu_to_unit(self.air_threshold, window_a),
                )
                + air_loss(
                    real_b,
                    window_rescale(fake_a, window_a, window_b),
                    hu_to_unit(self.air_threshold, window_b),
                )
            ),
            "gradient": lambda: gradient_loss(real_a, fake_b) + gradient_loss(real_b, fake_a),
            "tv": lambda: total_variation(fake_b),
            "perceptual": lambda: (
                self.perceptual_loss(real_a, fake_b) + self.perceptual_loss(real_b, fake_a)
            ),
            "latent": lambda: latent_loss(code_a) + latent_loss(code_b),
        }
        return {key: value() for key, value in losses.items() if self.loss_weights[key]}

    def _identities(self, real_a, real_b, code_a, code_b):
        """``F(a)`` and ``G(b)``; with a shared encoder the codes of ``a`` and ``b`` are reused."""
        g, f = self.generator_g, self.generator_f
        if self.shared_encoder:
            return f.decode(code_a, training=True), g.decode(code_b, training=True)
        return f(real_a, training=True), g(real_b, training=True)

    def train_step(self, data):
        real_a, real_b = unpack_pair(data, ("a", "b"))
        g, f = self.generator_g, self.generator_f
        step = self.current_step()
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # 1. Translate both ways, keeping the latent codes.
            code_a = g.encode(real_a, training=True)
            fake_b = g.decode(code_a, training=True)
            code_b = f.encode(real_b, training=True)
            fake_a = f.decode(code_b, training=True)
            # 2. Cycle consistency: A -> B -> A and B -> A -> B.
            terms = {
                "cycle": l1_loss(real_a, f(fake_b, training=True))
                + l1_loss(real_b, g(fake_a, training=True))
            }
            # 3. Identity: F leaves A alone, G leaves B alone.
            if self.loss_weights["identity"]:
                same_a, same_b = self._identities(real_a, real_b, code_a, code_b)
                terms["identity"] = l1_loss(real_a, same_a) + l1_loss(real_b, same_b)
            terms.update(self._extra_terms(real_a, real_b, fake_a, fake_b, code_a[-1], code_b[-1]))
            # 4. Adversarial terms: each generator against the other domain's discriminator.
            logits_b = self.discriminator_b(fake_b, training=True)
            logits_a = self.discriminator_a(fake_a, training=True)
            terms["adversarial"] = sum(
                generator_adversarial_loss(logits, self.adversarial)
                for logits in (logits_a, logits_b)
            )
            d_terms = {}
            if self.latent_discriminator is not None:
                # The encoder makes codes of A look like codes of B (labels swapped).
                latent_a = self.latent_discriminator(code_a[-1], training=True)
                latent_b = self.latent_discriminator(code_b[-1], training=True)
                terms["adversarial_latent"] = discriminator_adversarial_loss(
                    latent_a, latent_b, self.adversarial
                )
                d_terms["d_latent"] = self.discriminator_loss(
                    self.latent_discriminator, code_b[-1], code_a[-1], latent_b, latent_a
                )
            g_loss = self.weighted_sum(terms, self.loss_weights, self.adversarial_gate(step))
            # 5. Discriminators: real images against current or pooled past fakes.
            for name, discriminator, real, fake, logits, pool in (
                ("d_b", self.discriminator_b, real_b, fake_b, logits_b, self.pool_b),
                ("d_a", self.discriminator_a, real_a, fake_a, logits_a, self.pool_a),
            ):
                if pool is not None:
                    fake, logits = pool(ops.stop_gradient(fake)), None
                d_terms[name] = self.discriminator_loss(
                    discriminator, real, fake, fake_logits=logits
                )
            d_loss = sum(loss for loss, _ in d_terms.values())
            penalties = [penalty for _, penalty in d_terms.values() if penalty is not None]
        # 6. Update both generators together, then the discriminators on their schedule.
        apply_gradients(g_tape, g_loss, self.g_variables, self.g_optimizer)
        apply_gradients(
            d_tape, d_loss, self.d_variables, self.d_optimizer, when=self.discriminator_due(step)
        )
        return self.record(
            {
                "g_loss": g_loss,
                **terms,
                "d_loss": d_loss,
                **{name: loss for name, (loss, _) in d_terms.items()},
                "gp": sum(penalties) if penalties else None,
            }
        )

    def test_step(self, data):
        real_a, real_b = unpack_pair(data, ("a", "b"))
        fake_b = self.generator_g(real_a, training=False)
        fake_a = self.generator_f(real_b, training=False)
        cycle = l1_loss(real_a, self.generator_f(fake_b, training=False)) + l1_loss(
            real_b, self.generator_g(fake_a, training=False)
        )
        # PSNR and SSIM are meaningful when the test pairs correspond.
        a2b = {f"{key}_a2b": value for key, value in image_metrics(real_b, fake_b).items()}
        b2a = {f"{key}_b2a": value for key, value in image_metrics(real_a, fake_a).items()}
        return self.record({"cycle": cycle, **a2b, **b2a})

    def get_config(self) -> dict:
        config = super().get_config()
        weights = self.loss_weights
        config.update(
            {
                "input_shape": self.shapes[0],
                "output_channels": self.shapes[1][2],
                "generator": self.generator_options,
                "discriminator": self.discriminator_options,
                "shared_encoder": self.shared_encoder,
                "latent_discriminator": self.latent_discriminator_options,
                "cycle_weight": weights["cycle"],
                "identity_weight": weights["identity"],
                "latent_adversarial_weight": weights["adversarial_latent"],
                "latent_weight": weights["latent"],
                "air_weight": weights["air"],
                "air_threshold": self.air_threshold,
                "window_a": _window_dict(self.windows[0]),
                "window_b": _window_dict(self.windows[1]),
                "gradient_weight": weights["gradient"],
                "tv_weight": weights["tv"],
                "pool_size": self.pool_size,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from `get_config` (also windows saved as ``(low, high)`` lists before)."""
        config = dict(config)
        for name in ("window_a", "window_b"):
            if isinstance(config.get(name), list | tuple):
                config[name] = Window.from_bounds(*config[name])
        return cls(**config)


def _window_dict(window: Window | None) -> dict[str, float] | None:
    return None if window is None else dataclasses.asdict(window)
