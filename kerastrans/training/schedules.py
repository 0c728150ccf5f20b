"""Learning-rate schedules of a run: constant, linear decay, cosine, cosine with restarts.

Each schedule is a `keras.optimizers.schedules.LearningRateSchedule` (or a
plain float for ``constant``), so it is serialised with the optimizer in
``model.keras`` and is a function of the optimizer's ``iterations`` alone: a
resumed run that restores the optimizer state continues the schedule at the
right step. Lengths given as fractions of the run (`ScheduleConfig`) become
steps here, from ``epochs x steps_per_epoch``.

>>> from kerastrans.config import ScheduleConfig
>>> schedule = make_schedule(1e-3, ScheduleConfig(kind="linear", decay_start=0.5), 100)
>>> [round(float(schedule(step)), 6) for step in (0, 50, 75, 100)]
[0.001, 0.001, 0.0005, 0.0]
"""

from __future__ import annotations

import keras
from keras import ops

from kerastrans.config import ScheduleConfig

__all__ = ["LinearDecay", "make_schedule"]


@keras.saving.register_keras_serializable(package="kerastrans")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant for ``hold_steps``, then linear to ``end_learning_rate`` over ``decay_steps``.

    The schedule of pix2pix and CycleGAN (Isola et al. 2017; Zhu et al. 2017:
    100 epochs at the initial rate, then 100 epochs of linear decay to 0).

    Args:
        initial_learning_rate: Rate during the hold, and where the decay starts.
        hold_steps: Steps at the initial rate (>= 0).
        decay_steps: Steps of the linear decay (>= 1); the rate stays at
            ``end_learning_rate`` afterwards.
        end_learning_rate: Rate at the end of the decay.
        name: Name of the schedule.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        hold_steps: int,
        decay_steps: int,
        end_learning_rate: float = 0.0,
        name: str = "LinearDecay",
    ):
        super().__init__()
        if hold_steps < 0 or decay_steps < 1:
            raise ValueError(
                f"LinearDecay needs hold_steps >= 0 and decay_steps >= 1, got "
                f"hold_steps={hold_steps}, decay_steps={decay_steps}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.hold_steps = int(hold_steps)
        self.decay_steps = int(decay_steps)
        self.end_learning_rate = float(end_learning_rate)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip((step - self.hold_steps) / self.decay_steps, 0.0, 1.0)
        start, end = self.initial_learning_rate, self.end_learning_rate
        return ops.cast(start + (end - start) * progress, "float32")

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "hold_steps": self.hold_steps,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "name": self.name,
        }


def make_schedule(
    learning_rate: float, config: ScheduleConfig, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Build the schedule ``config`` describes for a run of ``total_steps`` optimizer steps.

    Args:
        learning_rate: Initial (peak) learning rate.
        config: Kind and shape of the schedule.
        total_steps: Steps of the whole run (``epochs x steps_per_epoch``).

    Returns:
        ``learning_rate`` itself for ``"constant"``, else a serialisable
        `LearningRateSchedule`.

    Raises:
        ValueError: If ``total_steps`` < 1.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    end = learning_rate * config.final_fraction
    if config.kind == "constant":
        return float(learning_rate)
    if config.kind == "linear":
        hold = round(config.decay_start * total_steps)
        return LinearDecay(learning_rate, hold, max(total_steps - hold, 1), end)
    if config.kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, total_steps, alpha=config.final_fraction
        )
    return keras.optimizers.schedules.CosineDecayRestarts(
        learning_rate,
        max(round(config.restart_period * total_steps), 1),
        t_mul=config.restart_growth,
        m_mul=config.restart_decay,
        alpha=config.final_fraction,
    )
