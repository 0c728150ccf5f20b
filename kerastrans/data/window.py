"""Windowing: physical units (HU) <-> the [-1, 1] range networks work in.

A `kerastrans.config.Window` ``(base, range)`` maps ``[base, base + range]``
affinely onto ``[-1, 1]`` and clips what lies outside. `unwindow` is the exact
inverse on the window (up to float32 rounding). Both are plain TensorFlow ops,
so the same code runs in the tf.data pipeline, inside a Keras model and in an
exported SavedModel, which therefore takes and returns physical units.

>>> import numpy as np
>>> from kerastrans.config import Window
>>> hu = np.array([-1000.0, 0.0, 1000.0, 3000.0], np.float32)
>>> window(hu, Window(base=-1000, range=2000)).numpy().tolist()
[-1.0, 0.0, 1.0, 1.0]
>>> unwindow([-1.0, 0.0, 1.0], Window(base=-1000, range=2000)).numpy().tolist()
[-1000.0, 0.0, 1000.0]
"""

from __future__ import annotations

import tensorflow as tf

from kerastrans.config import Window

__all__ = ["Window", "noise_scale", "unwindow", "window"]


def window(values: tf.Tensor, window: Window, *, clip: bool = True) -> tf.Tensor:
    """Map physical units to [-1, 1]: ``base -> -1``, ``base + range -> +1``.

    Args:
        values: Tensor (any shape) in physical units (HU for CT); cast to float32.
        window: The `Window` of this domain.
        clip: Clip the result to [-1, 1] (values outside the window saturate).

    Returns:
        A float32 tensor of the same shape.
    """
    half = tf.constant(window.range / 2, tf.float32)
    scaled = (tf.cast(values, tf.float32) - tf.constant(window.base, tf.float32)) / half - 1.0
    return tf.clip_by_value(scaled, -1.0, 1.0) if clip else scaled


def unwindow(values: tf.Tensor, window: Window) -> tf.Tensor:
    """Map [-1, 1] back to physical units: the exact inverse of `window` on the window.

    Args:
        values: Tensor (any shape) in the window's [-1, 1] scale; cast to float32.
        window: The `Window` of this domain.

    Returns:
        A float32 tensor of the same shape in physical units.
    """
    half = tf.constant(window.range / 2, tf.float32)
    return (tf.cast(values, tf.float32) + 1.0) * half + tf.constant(window.base, tf.float32)


def noise_scale(std: float, window: Window) -> float:
    """Convert a standard deviation in physical units to the window's [-1, 1] scale."""
    return 2.0 * float(std) / window.range
