"""The tf.data pipeline: from a TFDS-format dataset to batches in [-1, 1].

`make_dataset` reads a dataset written by `kerastrans.data.records` and
returns batches ready for ``model.fit``:

1. read the split in stored order (2.5D: stack neighbouring slices of the
   same series as input channels, `kerastrans.data.stack`);
2. shard per input pipeline (``tf.distribute.InputContext``);
3. training only: shuffle;
4. window each domain to [-1, 1] with clipping (`kerastrans.data.window`);
5. training only: one random transform per example shared by input and
   target (crop, flips, rotation/zoom/shift; input and target of different
   sizes get corresponding regions, see `kerastrans.data.augment`), then
   Gaussian noise on the input;
6. pad to a multiple of ``pad_multiple`` (sizes before padding are kept);
7. batch, prefetch (``AUTOTUNE``).

A paired dataset gives ``(input, target)``; an unpaired one gives
``(image_a, image_b)`` drawn from the domains ``<split>A`` and ``<split>B``
with independent shuffles (in training, one epoch has ``max(len(A), len(B))``
examples, the smaller domain is cycled; in evaluation, pairs follow the stored
order until the smaller domain ends). With ``with_info=True`` a third
element holds ids and sizes before padding (use
`kerastrans.data.padding.crop_to_size` to undo the padding).

Randomness is stateless: every example gets its own seed from a seeded
``tf.data.Dataset.random`` stream (new values each epoch), so a pipeline with
a seed gives the same batches on every run and however its maps are
scheduled; without a seed every run differs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import tensorflow as tf
import tensorflow_datasets as tfds

from kerastrans.config import DataConfig, Window
from kerastrans.data.augment import augment
from kerastrans.data.padding import pad_to_multiple
from kerastrans.data.records import IMAGE_KEYS, load_builder, read_summary
from kerastrans.data.stack import stack_neighbours
from kerastrans.data.summary import DatasetSummary, SplitSummary
from kerastrans.data.window import noise_scale, window
from kerastrans.errors import file_error

__all__ = ["make_dataset"]

AUTOTUNE = tf.data.AUTOTUNE
#: Salts that make the random streams of the two domains and of workers independent.
_DOMAIN_SALT = {"input": 0, "target": 1}
_WORKER_SALT = 7919


def make_dataset(
    dataset_dir: str | os.PathLike,
    split: str,
    config: DataConfig,
    *,
    training: bool,
    global_batch_size: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    with_info: bool = False,
    start: int = 0,
) -> tf.data.Dataset:
    """Return batches of ``(input, target)`` windowed to [-1, 1].

    Args:
        dataset_dir: Folder of a dataset written by `kerastrans.data.records`.
        split: Split to read, e.g. ``"train"``; for an unpaired dataset the
            domains ``<split>A`` and ``<split>B``.
        config: Windows (both given: `None` windows are refused, see
            `kerastrans.config.DataConfig.windows`), augmentation, crop,
            padding, 2.5D, seed, shuffle.
        training: Shuffle, augment and crop, and drop the last partial batch.
            Otherwise examples come in stored order, whole and unchanged.
        global_batch_size: Batch size over all replicas; defaults to
            ``config.batch_size``.
        input_context: Given by ``strategy.distribute_datasets_from_function``:
            this pipeline reads every ``num_input_pipelines``-th example and
            batches ``global_batch_size / num_replicas_in_sync``.
        with_info: Add a third element ``{"input_id", "target_id",
            "input_size", "target_size"}`` (ids and ``[height, width]`` before
            padding).
        start: Training only: the stream begins at example ``start`` (modulo
            the split's size; for an unpaired dataset, of each domain's) and
            wraps around: the split is read as ``split[start:] + split[:start]``
            before the shuffle buffer, so that successive epochs shorter than a
            pass read on through the split instead of re-reading its beginning.

    Returns:
        A batched `tf.data.Dataset` of float32 ``B x H x W x C`` pairs.

    Raises:
        DataError: If the dataset or split is missing, or a 2.5D stack is asked
            of a split whose series are not stored in order.
        ValueError: If images of several sizes would be batched together, or
            a window is `None`.
    """
    summary = read_summary(dataset_dir)
    builder = load_builder(dataset_dir)
    batch_size = global_batch_size or config.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if summary.kind == "paired":
        _check_split(summary, split, config, batch_size, training)
        windows = _windows(config)
        dataset = _domain(
            builder,
            summary,
            split,
            IMAGE_KEYS["paired"],
            windows,
            config,
            training,
            input_context,
            start,
        )
    else:
        if config.neighbours:
            raise ValueError(
                f"neighbours (2.5D) needs a paired dataset, got neighbours="
                f"{config.neighbours} for the unpaired dataset {dataset_dir}"
            )
        domains = {"input": f"{split}A", "target": f"{split}B"}
        for name in domains.values():
            _check_split(summary, name, config, batch_size, training)
        windows = _windows(config)
        a, b = (
            _domain(
                builder,
                summary,
                domains[role],
                (role,),
                windows,
                config,
                training,
                input_context,
                start,
            )
            for role in ("input", "target")
        )
        if training:  # one epoch: max(len(A), len(B)) examples over all input pipelines
            pipelines = input_context.num_input_pipelines if input_context is not None else 1
            epoch = -(
                -max(summary.splits[name].num_examples for name in domains.values()) // pipelines
            )
            a, b = a.repeat(), b.repeat()
        dataset = tf.data.Dataset.zip(a, b).map(_merge_domains)
        if training:
            dataset = dataset.take(epoch)
    dataset = dataset.map(
        _as_tuple if with_info else lambda example: _as_tuple(example)[:2],
        num_parallel_calls=AUTOTUNE,
    )
    dataset = dataset.batch(batch_size, drop_remainder=training).prefetch(AUTOTUNE)
    return dataset.with_options(_options(config.seed is not None or not training, input_context))


def _windows(config: DataConfig) -> dict[str, Window]:
    """The windows of the input and target images (refused while left to the dataset)."""
    return dict(zip(("input", "target"), config.windows(), strict=True))


# ----------------------------------------------------------------------------------------------


def _domain(
    builder: tfds.core.DatasetBuilder,
    summary: DatasetSummary,
    split: str,
    roles: tuple[str, ...],
    windows: dict[str, Window],
    config: DataConfig,
    training: bool,
    input_context: tf.distribute.InputContext | None,
    start: int = 0,
) -> tf.data.Dataset:
    """Read one split and prepare its examples: dicts with ``roles`` images in [-1, 1]."""
    stored = IMAGE_KEYS[summary.kind]  # feature names on disk, one per role
    info = summary.splits[split]
    channels = {
        role: info.features[key].shapes[0][-1] for role, key in zip(roles, stored, strict=True)
    }
    shapes = {
        role: _static_shape(info, key, role == roles[0], config, training)
        for role, key in zip(roles, stored, strict=True)
    }

    # A training stream is built anew for each epoch (from another start) and cut to the
    # epoch's steps: TFDS's in-memory cache of small datasets would be filled in part and
    # discarded every epoch, with a warning. Evaluation reads whole splits and keeps it.
    read_config = tfds.ReadConfig(try_autocache=not training)

    def read(begin: int, end: int) -> tf.data.Dataset:
        """Examples ``[begin, end)`` in stored order (2.5D stacks made within them)."""
        part = builder.as_dataset(
            split=f"{split}[{begin}:{end}]", shuffle_files=False, read_config=read_config
        )
        part = part.map(
            lambda example: {
                "id": example["id"],
                "series": example["series"],
                **{
                    role: tf.ensure_shape(example[key], [None, None, channels[role]])
                    for role, key in zip(roles, stored, strict=True)
                },
            }
        )
        if config.neighbours:
            part = stack_neighbours(part, config.neighbours, roles[0], roles)
        return part

    dataset = _rotated(read, info.num_examples, start if training else 0, config.neighbours)
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    salt = _DOMAIN_SALT[roles[0]] + _WORKER_SALT * (
        input_context.input_pipeline_id if input_context is not None else 0
    )
    seed = None if config.seed is None else config.seed * 1_000_003 + salt
    noise_std = (
        noise_scale(config.augment.noise_std, windows["input"]) if roles[0] == "input" else 0
    )

    def prepare(example: dict, example_seed: tf.Tensor | None = None) -> dict:
        images = [window(example[role], windows[role]) for role in roles]
        if example_seed is not None:
            images = augment(
                images, example_seed, config.augment, crop=config.crop, noise_std=noise_std
            )
        prepared = {"id": example["id"]}
        for role, image in zip(roles, images, strict=True):
            image, size = pad_to_multiple(image, config.pad_multiple)
            prepared[role], prepared[f"{role}_size"] = tf.ensure_shape(image, shapes[role]), size
        return prepared

    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if config.augment.enabled or config.crop is not None:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
            return tf.data.Dataset.zip(dataset, seeds).map(prepare, num_parallel_calls=AUTOTUNE)
    return dataset.map(prepare, num_parallel_calls=AUTOTUNE)


def _rotated(
    read: Callable[[int, int], tf.data.Dataset], count: int, start: int, margin: int
) -> tf.data.Dataset:
    """Examples ``start .. count - 1`` then ``0 .. start - 1`` of a split, from ``read``.

    ``read(begin, end)`` gives examples ``[begin, end)`` in stored order. 2.5D
    stacks need their neighbours: each part is read with ``margin`` more
    examples on the side of the cut, which are dropped after stacking, so a
    slice next to the cut gets the same stack as in the whole split.
    """
    start %= max(count, 1)
    if start == 0:
        return read(0, count)
    first = max(start - margin, 0)
    after = read(first, count).skip(start - first)
    before = read(0, min(start + margin, count)).take(start)
    return after.concatenate(before)


def _merge_domains(a: dict, b: dict) -> dict:
    """One unpaired example from one example of each domain (ids kept per domain)."""
    return {
        "input": a["input"],
        "input_size": a["input_size"],
        "input_id": a["id"],
        "target": b["target"],
        "target_size": b["target_size"],
        "target_id": b["id"],
    }


def _as_tuple(example: dict) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
    info = {
        "input_id": example.get("input_id", example.get("id")),
        "target_id": example.get("target_id", example.get("id")),
        "input_size": example["input_size"],
        "target_size": example["target_size"],
    }
    return example["input"], example["target"], info


def _check_split(
    summary: DatasetSummary, split: str, config: DataConfig, batch_size: int, training: bool
) -> None:
    """Fail early, with the reason, instead of deep inside tf.data."""
    if split not in summary.splits:
        raise file_error(summary.path, f"no split {split!r} (splits: {', '.join(summary.splits)})")
    info = summary.splits[split]
    if training and info.num_examples < batch_size:
        raise ValueError(
            f"split {split!r} has {info.num_examples} examples, fewer than one batch of "
            f"{batch_size} (training drops incomplete batches)"
        )
    if config.neighbours and not info.series_ordered:
        raise file_error(
            summary.path,
            f"split {split!r} does not store the slices of each "
            "series together in order of position, which 2.5D stacks need "
            "(rebuild it from kerastrans.io.read_series order)",
        )
    mixed = info.mixed_sizes(config.pad_multiple)
    if batch_size > 1 and not (training and config.crop is not None) and mixed:
        raise ValueError(
            f"cannot batch {batch_size} images of several sizes from split {split!r} "
            f"({mixed}); set crop (training), batch_size 1 or a larger pad_multiple"
        )


def _static_shape(
    info: SplitSummary, key: str, reference: bool, config: DataConfig, training: bool
) -> list[int | None]:
    """The ``[H, W, C]`` every prepared image of ``key`` has, `None` where it varies."""
    stats = info.features[key]
    channels = stats.shapes[0][-1] * (2 * config.neighbours + 1 if reference else 1)
    size: Sequence[int] | None = None
    if training and config.crop is not None:
        if reference:
            size = config.crop
        elif info.size_ratio is not None:
            size = [round(n * r) for n, r in zip(config.crop, info.size_ratio, strict=True)]
    elif stats.num_shapes == 1:
        size = stats.shapes[0][:2]
    if size is None:
        return [None, None, channels]
    return [*_padded(size, config.pad_multiple), channels]


def _padded(size: Sequence[int], multiple: int) -> tuple[int, ...]:
    return tuple(-(-n // multiple) * multiple for n in size)


def _options(
    deterministic: bool, input_context: tf.distribute.InputContext | None
) -> tf.data.Options:
    """Deterministic order unless training without a seed (then faster, any order)."""
    options = tf.data.Options()
    options.deterministic = deterministic
    if input_context is not None:  # sharded above: tf.distribute must not shard again
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options
