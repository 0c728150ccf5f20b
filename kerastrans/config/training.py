"""Config of training (optimisers, schedules, checkpoints) and the whole `Config` tree."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from kerastrans.config._convert import _check, _coerce_fields
from kerastrans.config.data import DataConfig, Window
from kerastrans.config.losses import LossesConfig
from kerastrans.config.model import (
    MODEL_PRESETS,
    ModelConfig,
    _check_counts,
    _check_kind,
    _preset,
)


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule over the whole run (``epochs x steps_per_epoch`` steps).

    Args:
        kind: ``"constant"``; ``"linear"``: constant for the first
            ``decay_start`` of the run, then linear to ``final_fraction``
            (pix2pix); ``"cosine"``: cosine decay to ``final_fraction``;
            ``"cosine_restarts"``: cosine with warm restarts (SGDR), the first
            period ``restart_period`` of the run, each next one
            ``restart_growth`` times longer and ``restart_decay`` times lower.
        decay_start: Fraction of the run before the linear decay starts.
        final_fraction: Learning rate at the end, as a fraction of the initial one.
        restart_period: First cosine period as a fraction of the run.
        restart_growth: Length factor of each next period.
        restart_decay: Peak factor of each next period.
    """

    kind: Literal["constant", "linear", "cosine", "cosine_restarts"] = "constant"
    decay_start: float = 0.5
    final_fraction: float = 0.0
    restart_period: float = 0.25
    restart_growth: float = 2.0
    restart_decay: float = 1.0

    def __post_init__(self) -> None:
        _coerce_fields(self)
        for name in ("decay_start", "final_fraction"):
            value = getattr(self, name)
            _check(0 <= value <= 1, f"schedule.{name} must be in [0, 1], got {value}")
        _check(
            0 < self.restart_period <= 1,
            f"schedule.restart_period must be in (0, 1], got {self.restart_period}",
        )
        _check(self.restart_growth >= 1, f"schedule.restart_growth must be >= 1, got "
               f"{self.restart_growth}")  # fmt: skip
        _check(0 < self.restart_decay <= 1, f"schedule.restart_decay must be in (0, 1], got "
               f"{self.restart_decay}")  # fmt: skip


#: The model argument each field of `TrainingConfig` that the model takes feeds (every kind
#: takes them), as `kerastrans.config.LOSS_ARGUMENTS`; the other fields drive the optimizers
#: and the training loop.
TRAINING_ARGUMENTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "warmup_steps": ("warmup_steps", None),
    "d_update_every": ("d_update_every", None),
}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How long and how the model is trained, and what a run directory records.

    Args:
        epochs: Number of epochs; a finished run asked for more continues.
        steps_per_epoch: Steps per epoch; `None`: one pass over the training
            split (filled in by ``kerastrans fit``).
        validation_steps: Validation batches per epoch (`None`: the whole split).
        g_learning_rate: Adam learning rate of the generator(s).
        d_learning_rate: Adam learning rate of the discriminator(s).
        beta_1: Adam's first-moment decay (0.5 for GANs, Radford et al. 2016).
        beta_2: Adam's second-moment decay.
        clip_norm: Clip the gradient of each optimizer's networks to this
            global norm before the update (Keras' ``global_clipnorm``; `None`:
            no clipping). A loss spike then enters Adam's moments with at most
            this norm; Adler & Oktem clip to 1 when they train learned
            primal-dual. Refused with more than one replica, where Keras would
            clip each replica's part of the gradient, not the sum.
        schedule: Learning-rate schedule of both optimizers.
        warmup_steps: Steps before the adversarial term and the discriminator start.
        d_update_every: Update the discriminator(s) every this many steps.
        checkpoint_every: Save the resume state every this many steps (and at
            the end of every epoch), atomically.
        keep_checkpoints: Resume states kept (the newest ones).
        grid_images: Examples in the image grid saved each epoch (0: none).
        grid_window: Display window of the grids, physical units (`None`: each
            domain's training window).
        grid_difference: Differences of +- this (physical units) are white /
            black in the grids; `None`: a tenth of the display window's range.
        keep_best: A validation metric of the epoch logs (``"val_psnr"``,
            ``"val_l1"``, ...): the model of its best epoch is kept beside the
            latest one, and `kerastrans.runs.load_run` (so ``evaluate``,
            ``convert`` and ``export``) uses it. PSNR and SSIM count higher as
            better, the others lower. A GAN can get worse late in a run; the
            validation split, not the test split, chooses the epoch.
    """

    epochs: int = 100
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    g_learning_rate: float = 2e-4
    d_learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    clip_norm: float | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    warmup_steps: int = 0
    d_update_every: int = 1
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    grid_images: int = 4
    grid_window: Window | None = None
    grid_difference: float | None = None
    keep_best: str | None = None

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check_counts(
            "training", epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
            validation_steps=self.validation_steps, d_update_every=self.d_update_every,
            checkpoint_every=self.checkpoint_every, keep_checkpoints=self.keep_checkpoints,
        )  # fmt: skip
        _check_counts("training", 0, warmup_steps=self.warmup_steps, grid_images=self.grid_images)
        for name in ("g_learning_rate", "d_learning_rate"):
            value = getattr(self, name)
            _check(value > 0, f"training.{name} must be > 0, got {value}")
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            _check(0 <= value < 1, f"training.{name} must be in [0, 1), got {value}")
        if self.clip_norm is not None:
            _check(self.clip_norm > 0, f"training.clip_norm must be > 0, got {self.clip_norm}")
        if self.grid_difference is not None:
            _check(self.grid_difference > 0, f"training.grid_difference must be > 0, got "
                   f"{self.grid_difference}")  # fmt: skip
        if self.keep_best is not None:
            _check(
                self.keep_best.startswith("val_") and len(self.keep_best) > 4,
                "training.keep_best must name a validation metric such as 'val_psnr', got "
                f"{self.keep_best!r}",
            )


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration of a run: data, model, losses and training.

    ``losses`` left out (or given in part) takes the defaults of ``model.kind``.
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    losses: LossesConfig | None = None
    training: TrainingConfig = TrainingConfig()

    def __post_init__(self) -> None:
        model = self.model
        kind = _check_kind(
            model.get("kind", "pix2pix") if isinstance(model, Mapping) else model.kind
        )
        object.__setattr__(self, "losses", _preset(self.losses, MODEL_PRESETS[kind]["losses"]))
        _coerce_fields(self)
        self.losses.check_model(kind)
