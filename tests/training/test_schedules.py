"""Learning-rate schedules: their values along a run and their serialisation."""

import keras
import numpy as np
import pytest

from kerastrans.config import ScheduleConfig
from kerastrans.training.schedules import LinearDecay, make_schedule


def _values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_constant_schedule_is_the_plain_rate():
    assert make_schedule(2e-4, ScheduleConfig(), 100) == 2e-4


def test_linear_schedule_holds_then_decays_to_the_final_fraction():
    config = ScheduleConfig(kind="linear", decay_start=0.4, final_fraction=0.1)
    values = _values(make_schedule(1.0, config, 100), [0, 40, 70, 100, 150])
    np.testing.assert_allclose(values, [1.0, 1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_cosine_schedule_ends_at_the_final_fraction():
    schedule = make_schedule(1.0, ScheduleConfig(kind="cosine", final_fraction=0.2), 100)
    np.testing.assert_allclose(_values(schedule, [0, 50, 100]), [1.0, 0.6, 0.2], rtol=1e-5)


def test_cosine_restarts_return_to_the_peak_after_each_period():
    config = ScheduleConfig(kind="cosine_restarts", restart_period=0.25, restart_growth=1.0)
    values = _values(make_schedule(1.0, config, 100), [0, 24, 25, 50])
    assert values[0] == pytest.approx(1.0) and values[1] < 0.01
    np.testing.assert_allclose(values[2:], [1.0, 1.0], rtol=1e-5)


def test_linear_decay_round_trips_through_keras_serialisation():
    schedule = LinearDecay(1e-3, hold_steps=10, decay_steps=20, end_learning_rate=1e-5)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, LinearDecay)
    np.testing.assert_allclose(_values(restored, [0, 20, 40]), _values(schedule, [0, 20, 40]))


def test_bad_lengths_are_rejected_with_their_values():
    with pytest.raises(ValueError, match="total_steps must be >= 1, got 0"):
        make_schedule(1e-3, ScheduleConfig(kind="cosine"), 0)
    with pytest.raises(ValueError, match="hold_steps=-1, decay_steps=0"):
        LinearDecay(1e-3, hold_steps=-1, decay_steps=0)
