"""2.5D inference: stack each slice with its neighbours, exactly as training does.

A model trained with ``data.neighbours = K`` takes each slice with the ``K``
slices before and after it in its series as extra channels. `stack_slices`
feeds a stream of slices (series one after the other, each in order of
position along the slice normal, see `kerastrans.io.series.order_dicom_files`)
through the training pipeline's own `kerastrans.data.stack.stack_neighbours`,
so the end slices of a series repeat the edge and a slice without a series
stands alone, as in training.

>>> slices = [(n, np.full((1, 1, 1), n, np.float32), "s") for n in range(3)]
>>> [image.ravel().tolist() for _, image in stack_slices(slices, 1)]
[[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 2.0]]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import tensorflow as tf

from kerastrans.data.stack import stack_neighbours

__all__ = ["stack_slices"]

K = TypeVar("K")


def stack_slices(
    items: Iterable[tuple[K, np.ndarray, str | None]], neighbours: int
) -> Iterator[tuple[K, np.ndarray]]:
    """Stack each slice with ``neighbours`` slices on each side from its series.

    Args:
        items: ``(key, H x W x C slice, series)`` in stored order: the slices
            of a series next to each other, in order of position; series
            `None` or ``""`` for a slice without one. Read lazily.
        neighbours: Slices on each side (``K`` >= 0).

    Yields:
        ``(key, H x W x (2K + 1) C stack)`` in input order: channels
        ``[j * C, (j + 1) * C)`` hold slice ``j - K`` (float32).
    """
    if neighbours == 0:
        for key, pixels, _ in items:
            yield key, pixels
        return
    items = iter(items)
    first = next(items, None)
    if first is None:
        return
    keys: dict[int, K] = {}
    channels = np.shape(first[1])[-1]

    def examples() -> Iterator[dict]:
        for index, (key, pixels, series) in enumerate(itertools.chain([first], items)):
            keys[index] = key
            yield {
                "index": index,
                "input": np.asarray(pixels, np.float32),
                "series": series or "",
            }

    signature = {
        "index": tf.TensorSpec([], tf.int64),
        "input": tf.TensorSpec([None, None, channels], tf.float32),
        "series": tf.TensorSpec([], tf.string),
    }
    dataset = tf.data.Dataset.from_generator(examples, output_signature=signature)
    for example in stack_neighbours(dataset, neighbours, "input", ("input",)).as_numpy_iterator():
        yield keys.pop(int(example["index"])), example["input"]
