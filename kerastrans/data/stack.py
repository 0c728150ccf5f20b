"""2.5D stacks: neighbouring slices of one series as extra input channels.

Datasets store the slices of a series next to each other in order of position
(see `kerastrans.data.records`), so neighbours are found with a sliding window
over the stored order, without random access. At the ends of a series the end
slice is repeated; a slice without a series (``series == ""``) has no
neighbours and is repeated itself.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["stack_neighbours"]

#: Series of the filler elements that pad the stream ends (never a real UID).
_FILLER = "\x00filler"


def stack_neighbours(
    dataset: tf.data.Dataset, neighbours: int, key: str, image_keys: tuple[str, ...]
) -> tf.data.Dataset:
    """Replace ``example[key]`` by the stack of slices ``-neighbours .. +neighbours``.

    Args:
        dataset: Examples in stored order, dicts with the image features,
            ``"series"`` (string) and the other fields.
        neighbours: Slices taken on each side (``k``); the result has
            ``(2k + 1) * C`` channels, ordered by position: channels
            ``[j * C, (j + 1) * C)`` hold slice ``j - k``.
        key: The image feature to stack (the input).
        image_keys: All image features (cropped back to their own size after
            the window is batched with padding).

    Returns:
        The dataset with stacked ``key``; other fields are those of the centre
        slice.
    """
    if neighbours == 0:
        return dataset
    width = 2 * neighbours + 1

    def with_sizes(example: dict) -> dict:
        sizes = {f"_size_{name}": tf.shape(example[name])[:2] for name in image_keys}
        return {**example, **sizes}

    dataset = dataset.map(with_sizes)
    filler = tf.data.Dataset.from_tensors(
        {
            **tf.nest.map_structure(_filler_value, dataset.element_spec),
            "series": tf.constant(_FILLER),
        }
    ).repeat(neighbours)
    windows = (
        filler.concatenate(dataset)
        .concatenate(filler)
        .window(width, shift=1, drop_remainder=True)
        .flat_map(lambda window: tf.data.Dataset.zip(window).padded_batch(width))
    )

    def centre(window: dict) -> dict:
        series = window["series"]
        index = tf.range(width)
        same = tf.equal(series, series[neighbours]) & (
            tf.not_equal(series[neighbours], "") | tf.equal(index, neighbours)
        )
        # The centre's series is contiguous in the window: clamp to its first/last slice.
        first = tf.reduce_min(tf.where(same, index, width))
        last = tf.reduce_max(tf.where(same, index, -1))
        chosen = tf.gather(window[key], tf.clip_by_value(index, first, last))
        size = window[f"_size_{key}"][neighbours]
        chosen = chosen[:, : size[0], : size[1], :]
        channels = chosen.shape[-1]
        stacked = tf.reshape(
            tf.transpose(chosen, [1, 2, 0, 3]),
            [size[0], size[1], width * channels if channels is not None else -1],
        )
        example = {
            name: value[neighbours]
            for name, value in window.items()
            if not name.startswith("_size_") and name != key
        }
        for name in image_keys:
            if name != key:
                size = window[f"_size_{name}"][neighbours]
                example[name] = example[name][: size[0], : size[1], :]
        example[key] = stacked
        return example

    return windows.map(centre, num_parallel_calls=tf.data.AUTOTUNE)


def _filler_value(spec: tf.TensorSpec) -> tf.Tensor:
    """A small tensor matching ``spec`` (unknown dimensions of size 1)."""
    shape = [1 if size is None else size for size in spec.shape]
    return tf.fill(shape, tf.constant("" if spec.dtype == tf.string else 0, spec.dtype))
