"""Windowing: exact inverse, clipping, and use inside a graph / SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from kerastrans.config import Window
from kerastrans.data.window import noise_scale, unwindow, window

WINDOWS = [Window(-1000, 2000), Window(-160, 400), Window(0, 1), Window(-1024, 4096)]
EPS = np.finfo(np.float32).eps


@pytest.mark.parametrize("win", WINDOWS, ids=str)
def test_unwindow_inverts_window_within_float32_eps(win):
    values = np.random.default_rng(0).uniform(win.low, win.high, 10_000).astype(np.float32)
    values[:2] = win.low, win.high
    restored = unwindow(window(values, win), win).numpy()
    tolerance = 4 * EPS * (abs(win.base) + win.range)
    np.testing.assert_allclose(restored, values, rtol=0, atol=tolerance)
    scaled = np.linspace(-1, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(window(unwindow(scaled, win), win).numpy(), scaled, atol=4 * EPS)


def test_window_maps_ends_to_unit_range_and_clips_outside():
    win = Window(-1000, 2000)
    hu = np.array([-3000, -1000, 0, 500, 1000, 5000], np.float32)
    np.testing.assert_array_equal(window(hu, win).numpy(), [-1, -1, 0, 0.5, 1, 1])
    np.testing.assert_array_equal(window(hu, win, clip=False).numpy(), [-3, -1, 0, 0.5, 1, 5])


def test_noise_scale_converts_physical_units_to_the_window_scale():
    assert noise_scale(20.0, Window(-1000, 2000)) == pytest.approx(0.02)
    assert noise_scale(20.0, Window(-160, 400)) == pytest.approx(0.1)


def test_window_and_unwindow_run_in_a_saved_model_graph(tmp_path):
    win_in, win_out = Window(-160, 400), Window(-1000, 2000)

    class Normalise(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def __call__(self, hu):
            return unwindow(window(hu, win_in), win_out)

    tf.saved_model.save(Normalise(), str(tmp_path / "model"))
    reloaded = tf.saved_model.load(str(tmp_path / "model"))
    hu = np.array([-500, -160, 40, 240, 900], np.float32).reshape(1, 1, 5, 1)
    expected = (np.clip((hu + 160) / 200 - 1, -1, 1) + 1) * 1000 - 1000
    np.testing.assert_allclose(reloaded(tf.constant(hu)).numpy(), expected, atol=1e-3)
