"""Machinery shared by the translation models.

`TranslationGAN` holds what pix2pix, CycleGAN and AUTOMAP have in common:
one optimizer per group of networks (``compile(g_optimizer=, d_optimizer=)``),
metric trackers, the adversarial and gradient-penalty terms with label jitter,
warm-up and update frequency of the discriminator, the optional perceptual
loss, and serialisation of the compile settings. `apply_gradients` is the one
place where a loss becomes an update: it scales the loss to the global batch
under `tf.distribute`, applies loss scaling for float16, and can skip the
update on a schedule (also inside a `MirroredStrategy` replica).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras
import tensorflow as tf
from keras import ops

from kerastrans._compat import all_layers
from kerastrans.losses import (
    PerceptualLoss,
    check_adversarial,
    discriminator_adversarial_loss,
    gradient_penalty,
)
from kerastrans.nets import FusedBatchNormalization, InstanceNormalization
from kerastrans.nets.blocks import check_count
from kerastrans.optimizers import FusedAdam, check_clipping
from kerastrans.precision import loss_scale_optimizer, resolve_policy

__all__ = [
    "TranslationGAN",
    "apply_gradients",
    "check_weights",
    "image_metrics",
    "replica_scaled",
    "unpack_pair",
]


def unpack_pair(data, names: tuple[str, str] = ("source", "target")):
    """Return the two images of a batch ``(x, y)`` (a third element is ignored)."""
    if isinstance(data, (tuple, list)) and len(data) >= 2 and data[1] is not None:
        return data[0], data[1]
    got = "a batch without its second image" if isinstance(data, (tuple, list)) else type(data)
    raise TypeError(f"expected batches ({names[0]}, {names[1]}) of images, got {got}")


def replica_scaled(loss):
    """Divide a per-replica mean loss by the number of replicas in sync.

    Gradients are summed over replicas, so this makes each update the
    gradient of the mean over the global batch (local batch x replicas).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def apply_gradients(tape: tf.GradientTape, loss, variables: list, optimizer, when=None) -> None:
    """Differentiate ``loss`` with ``tape`` and update ``variables`` with ``optimizer``.

    Args:
        tape: The tape that recorded the forward pass.
        loss: Scalar per-replica mean loss.
        variables: The variables to update (the optimizer was built on them).
        optimizer: A Keras optimizer (loss scaling of a `LossScaleOptimizer`
            is applied here and undone by its ``apply``).
        when: Optional scalar boolean tensor; the update (and the optimizer's
            iteration count) is skipped when it is false.

    Raises:
        ValueError: If the optimizer clips gradients under more than one
            replica (`check_clipping`).
    """
    check_clipping(optimizer)
    with tape:  # resume recording: the scaling must be on the tape
        scaled = optimizer.scale_loss(replica_scaled(loss))
    gradients = tape.gradient(scaled, variables)
    if when is None:
        optimizer.apply(gradients, variables)
    elif not tf.distribute.has_strategy():
        ops.cond(when, lambda: optimizer.apply(gradients, variables), lambda: None)
    else:
        # A branch that aggregates across replicas must run in cross-replica
        # context (as LossScaleOptimizer does): decide there, then update each replica.
        def cross_replica(distribution, when, gradients):
            def update():
                distribution.extended.call_for_each_replica(
                    optimizer.apply, args=(gradients, variables)
                )

            ops.cond(distribution.experimental_local_results(when)[0], update, lambda: None)

        tf.distribute.get_replica_context().merge_call(cross_replica, args=(when, gradients))


def image_metrics(target, prediction) -> dict:
    """PSNR and SSIM (dB, unitless) of images in [-1, 1] (data range 2)."""
    target, prediction = ops.cast(target, "float32"), ops.cast(prediction, "float32")
    filter_size = min(11, *[size for size in target.shape[1:3] if size is not None])
    return {
        "psnr": ops.mean(tf.image.psnr(target, prediction, max_val=2.0)),
        "ssim": ops.mean(tf.image.ssim(target, prediction, max_val=2.0, filter_size=filter_size)),
    }


def _check_weight(argument: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{argument} must be >= 0, got {value}")
    return float(value)


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check that loss weights (keyed by loss name) are >= 0; return them as floats."""
    return {name: _check_weight(f"{name}_weight", value) for name, value in weights.items()}


class TranslationGAN(keras.Model):
    """Base class of the translation models (not used on its own).

    Args:
        adversarial: Adversarial loss, one of
            `kerastrans.losses.ADVERSARIAL_LOSSES`.
        adversarial_weight: Weight of the generator's adversarial term; 0
            trains without a discriminator.
        gradient_penalty_weight: Weight of the WGAN-GP penalty.
        label_jitter: Standard deviation of Gaussian noise added to the
            discriminator's targets 1 and 0, per image (vanilla and LSGAN only;
            vanilla targets are clipped to [0, 1]).
        warmup_steps: Generator steps before the adversarial term and the
            discriminator updates start.
        d_update_every: Update the discriminator every this many steps.
        perceptual_weight: Weight of the perceptual loss.
        perceptual: Options of `kerastrans.losses.PerceptualLoss`
            (``weights_path``, ``layer``, ``network``); needed if
            ``perceptual_weight > 0``. The network is loaded by `compile`.
        seed: Seed of the model's random draws (label jitter, penalty
            interpolation, image pool); the networks get derived seeds.
        name: Model name.
        dtype: Precision (see `kerastrans.precision`); `None`: global policy.
    """

    def __init__(
        self,
        *,
        adversarial: str = "vanilla",
        adversarial_weight: float = 1.0,
        gradient_penalty_weight: float = 10.0,
        label_jitter: float = 0.0,
        warmup_steps: int = 0,
        d_update_every: int = 1,
        perceptual_weight: float = 0.0,
        perceptual: Mapping | None = None,
        seed: int | None = None,
        name: str = "translation_gan",
        dtype: str | None = None,
    ):
        policy = resolve_policy(dtype)
        super().__init__(name=name, dtype=policy)
        self.adversarial = check_adversarial(adversarial)
        self.adversarial_weight = _check_weight("adversarial_weight", adversarial_weight)
        self.gradient_penalty_weight = _check_weight(
            "gradient_penalty_weight", gradient_penalty_weight
        )
        self.label_jitter = _check_weight("label_jitter", label_jitter)
        if self.label_jitter and adversarial not in ("vanilla", "lsgan"):
            raise ValueError(
                f"label_jitter applies to 'vanilla' and 'lsgan' losses, got "
                f"label_jitter={label_jitter} with adversarial={adversarial!r}"
            )
        self.warmup_steps = check_count("warmup_steps", warmup_steps, 0)
        self.d_update_every = check_count("d_update_every", d_update_every, 1)
        self.perceptual_weight = _check_weight("perceptual_weight", perceptual_weight)
        self.perceptual = dict(perceptual or {})
        if self.perceptual_weight and "weights_path" not in self.perceptual:
            raise ValueError(
                "perceptual_weight > 0 needs perceptual={'weights_path': <local file>, ...}, "
                f"got perceptual={perceptual}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.perceptual_loss: PerceptualLoss | None = None
        self._metric_trackers: dict[str, keras.metrics.Mean] = {}

    def network_seed(self, offset: int) -> int | None:
        """Seed for the ``offset``-th network (`None` if the model is unseeded)."""
        return None if self.seed is None else self.seed + 1000 * offset

    def check_critic(self, options: Mapping) -> None:
        """Refuse batch normalisation in a WGAN-GP critic (the penalty is per image)."""
        norm = options.get("norm", "batch")
        if self.adversarial == "wgan-gp" and norm == "batch":
            raise ValueError(
                "adversarial='wgan-gp' needs a discriminator without batch normalisation "
                f"(norm='instance', 'layer', 'group' or 'none'), got norm={norm!r}"
            )

    def add_trackers(self, names: Iterable[str]) -> None:
        """Create a `keras.metrics.Mean` for each name not tracked yet."""
        for name in names:
            if name not in self._metric_trackers:
                self._metric_trackers[name] = keras.metrics.Mean(name=name)

    @property
    def metrics(self) -> list:
        # Listed here so that `fit()` and `evaluate()` reset them each epoch.
        return list(self._metric_trackers.values())

    def compile(
        self,
        g_optimizer=None,
        d_optimizer=None,
        *,
        jit_compile="auto",
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
    ):
        """Set the optimizers (one per network group) and load the perceptual network.

        Args:
            g_optimizer: Optimizer of the generator(s); default
                ``Adam(2e-4, beta_1=0.5)`` (Isola et al. 2017).
            d_optimizer: Optimizer of the discriminator(s); same default.
                Unused when the model has no discriminator.
            jit_compile: Compile the train step with XLA (``"auto"``: as Keras).
            run_eagerly: Run the steps eagerly (debugging).
            steps_per_execution: Steps per compiled call.
        """
        super().compile(
            optimizer=None,
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
        )
        for layer in all_layers(self):
            if isinstance(layer, FusedBatchNormalization | InstanceNormalization):
                layer.use_fused_kernel = not self.jit_compile  # XLA fuses the plain formula
        groups = (
            ("g_optimizer", g_optimizer, self.g_variables),
            ("d_optimizer", d_optimizer, self.d_variables),
        )
        for attribute, optimizer, variables in groups:
            optimizer = keras.optimizers.get(optimizer) or FusedAdam(2e-4, beta_1=0.5)
            optimizer = loss_scale_optimizer(optimizer, self.dtype_policy)
            if variables:
                optimizer.build(variables)
            setattr(self, attribute, optimizer)
        if self.perceptual_weight and self.perceptual_loss is None:
            self.perceptual_loss = PerceptualLoss(**self.perceptual, dtype=self.dtype_policy.name)
        self._compile_arguments = {
            "g_optimizer": g_optimizer,
            "d_optimizer": d_optimizer,
            "jit_compile": self.jit_compile,
            "run_eagerly": run_eagerly,
            "steps_per_execution": steps_per_execution,
        }

    def get_compile_config(self) -> dict:
        if not self.compiled:
            return {}
        return {
            key: keras.saving.serialize_keras_object(value)
            for key, value in self._compile_arguments.items()
        }

    def compile_from_config(self, config: dict) -> None:
        # Restores the optimizers on load, so that their saved state is read back.
        self.compile(
            **{key: keras.saving.deserialize_keras_object(value) for key, value in config.items()}
        )

    @property
    def g_variables(self) -> list:
        """Trainable variables of the generator(s), each once."""
        return _unique(self._generators())

    @property
    def d_variables(self) -> list:
        """Trainable variables of the discriminator(s), each once."""
        return _unique(self._discriminators())

    def _generators(self) -> list[keras.Model]:
        raise NotImplementedError

    def _discriminators(self) -> list[keras.Model]:
        raise NotImplementedError

    # -- pieces of a train step --------------------------------------------------------------

    def current_step(self):
        """The generator's step count, read now (before this step's updates change it)."""
        return ops.copy(self.g_optimizer.iterations.value)

    def adversarial_gate(self, step):
        """1 once ``step`` reaches ``warmup_steps`` (0 before), as a float32 scalar."""
        if not self.warmup_steps:
            return 1.0
        return ops.cast(step >= self.warmup_steps, "float32")

    def discriminator_due(self, step):
        """Boolean tensor: update the discriminators at ``step``; `None` means always."""
        if not self.warmup_steps and self.d_update_every == 1:
            return None
        return ops.logical_and(step >= self.warmup_steps, step % self.d_update_every == 0)

    def discriminator_loss(self, discriminator, real, fake, real_logits=None, fake_logits=None):
        """Adversarial loss of ``discriminator`` (with the gradient penalty for WGAN-GP).

        Logits already computed in the step can be passed to save a forward pass.

        Returns:
            ``(loss, penalty)``; ``penalty`` is `None` unless WGAN-GP.
        """
        if real_logits is None:
            real_logits = discriminator(real, training=True)
        if fake_logits is None:
            fake_logits = discriminator(fake, training=True)
        real_label, fake_label = 1.0, 0.0
        if self.label_jitter:
            shape = (ops.shape(real_logits)[0], 1, 1, 1)
            real_label += keras.random.normal(
                shape, stddev=self.label_jitter, seed=self.seed_generator
            )
            fake_label += keras.random.normal(
                shape, stddev=self.label_jitter, seed=self.seed_generator
            )
            if self.adversarial == "vanilla":
                real_label, fake_label = ops.clip(real_label, 0, 1), ops.clip(fake_label, 0, 1)
        loss = discriminator_adversarial_loss(
            real_logits, fake_logits, self.adversarial, real_label, fake_label
        )
        if self.adversarial != "wgan-gp":
            return loss, None
        alpha = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), seed=self.seed_generator)
        penalty = gradient_penalty(discriminator, real, ops.stop_gradient(fake), alpha)
        return loss + self.gradient_penalty_weight * penalty, penalty

    def weighted_sum(self, terms: Mapping, weights: Mapping, gate=1.0):
        """Sum of ``weights[name] * terms[name]``, adversarial terms multiplied by ``gate``."""
        total = 0.0
        for name, value in terms.items():
            weight = weights[name] * (gate if name.startswith("adversarial") else 1.0)
            total = total + weight * value
        return total

    def record(self, values: Mapping) -> dict:
        """Update the trackers with ``values`` (entries that are `None` are skipped)."""
        results = {}
        for name, value in values.items():
            if value is not None:
                self._metric_trackers[name].update_state(value)
                results[name] = self._metric_trackers[name].result()
        return results

    def get_config(self) -> dict:
        return {
            "adversarial": self.adversarial,
            "adversarial_weight": self.adversarial_weight,
            "gradient_penalty_weight": self.gradient_penalty_weight,
            "label_jitter": self.label_jitter,
            "warmup_steps": self.warmup_steps,
            "d_update_every": self.d_update_every,
            "perceptual_weight": self.perceptual_weight,
            "perceptual": self.perceptual or None,
            "seed": self.seed,
            "name": self.name,
            "dtype": self.dtype_policy.name,
        }

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _unique(networks: list) -> list:
    """Trainable variables of ``networks`` in order, shared ones once."""
    variables = {}
    for network in networks:
        for variable in network.trainable_variables:
            variables.setdefault(id(variable), variable)
    return list(variables.values())
