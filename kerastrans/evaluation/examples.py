"""The examples of a dataset split as NumPy arrays, in stored order, for evaluation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["Example", "chunks", "read_examples"]


@dataclasses.dataclass(frozen=True)
class Example:
    """One example of a split: id, input and target (float32 ``H x W x C``)."""

    id: str
    input: np.ndarray
    target: np.ndarray
    #: 2.5D: the input stacked with its neighbours (what the model takes), else `None`.
    stack: np.ndarray | None = None


def read_examples(
    dataset_dir: Path,
    split: str,
    max_images: int | None,
    neighbours: int = 0,
    *,
    swap: bool = False,
) -> Iterator[Example]:
    """The examples of ``split`` in stored order, as NumPy arrays (``swap``: target first).

    With ``neighbours``, each input is also stacked with its neighbours by the
    training pipeline's `kerastrans.data.stack.stack_neighbours`.
    """
    import tensorflow_datasets as tfds

    from kerastrans.data.records import load_builder
    from kerastrans.data.shards import shard_errors
    from kerastrans.data.stack import stack_neighbours

    dataset = load_builder(dataset_dir).as_dataset(split=split, shuffle_files=False)
    first, second = ("target", "input") if swap else ("input", "target")
    if neighbours:
        dataset = dataset.map(lambda example: {**example, "stack": example[first]})
        dataset = stack_neighbours(dataset, neighbours, "stack", ("stack", "input", "target"))
    if max_images is not None:
        dataset = dataset.take(max_images)
    with shard_errors([dataset_dir]):
        for example in tfds.as_numpy(dataset):
            stack = example.get("stack") if neighbours else None
            yield Example(example["id"].decode(), example[first], example[second], stack)


def chunks(items: Iterable[Example], size: int) -> Iterator[list[Example]]:
    chunk: list[Example] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
