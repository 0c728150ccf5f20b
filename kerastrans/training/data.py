"""The batches a run trains and validates on, positioned exactly for a resume.

Epoch ``e`` of a run streams `kerastrans.data.make_dataset` with its own seed,
derived from the data seed and ``e``, repeated as needed and cut to
``steps_per_epoch`` batches. It starts where the previous epochs' examples end
(example ``e x steps_per_epoch x batch_size`` of the split, wrapping around):
epochs shorter than a pass read on through the split, so a run of ``n``
steps reads about ``n x batch_size`` of its examples in turn (each epoch's
shuffle buffer mixes across the boundary), not the same first ones every
epoch. The stream of an epoch is therefore the same
whenever it is built, and a run resumed at step ``s`` of epoch ``e`` skips
``s`` batches of that epoch and sees exactly the batches it would have seen
(augmentation included). Under a distribution strategy each input pipeline
(one per worker) is built by ``strategy.distribute_datasets_from_function``
with its `tf.distribute.InputContext`: the split is sharded per worker and
batched per replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from kerastrans.config import Config
from kerastrans.data import crop_to_size, make_dataset, unwindow

__all__ = ["epoch_seed", "grid_examples", "training_batches", "validation_batches"]

#: Multiplier that spreads the seeds of successive epochs (a prime below 2**31).
_EPOCH_STRIDE = 104_729


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the data stream of ``epoch`` (in ``[0, 2**31)``, as `DataConfig` wants)."""
    return (seed + _EPOCH_STRIDE * (epoch + 1)) % 2**31


def training_batches(
    config: Config, epoch: int, skip: int, strategy: tf.distribute.Strategy
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """Batches of ``epoch`` after its first ``skip`` steps.

    Args:
        config: A resolved config (data seed and ``steps_per_epoch`` set).
        epoch: Index of the epoch.
        skip: Steps of the epoch already done (resume), < ``steps_per_epoch``.
        strategy: The run's strategy.

    Returns:
        ``steps_per_epoch - skip`` global batches of ``(input, target)``.
    """
    data = dataclasses.replace(config.data, seed=epoch_seed(config.data.seed, epoch))
    steps = config.training.steps_per_epoch

    def pipeline(context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        dataset = make_dataset(
            data.dataset,
            data.train_split,
            data,
            training=True,
            input_context=context,
            start=epoch * steps * data.batch_size,
        )
        per_step = _replicas_per_pipeline(strategy, context)
        return dataset.repeat().take(steps * per_step).skip(skip * per_step)

    return _distribute(pipeline, strategy)


def validation_batches(
    config: Config, strategy: tf.distribute.Strategy, examples: int
) -> tf.data.Dataset | tf.distribute.DistributedDataset | None:
    """Validation batches (one image per replica), or `None` without validation.

    Each pipeline is repeated and cut to the same number of steps, so that
    workers with shards of unequal size stay in step.

    Args:
        config: A resolved config (``data.validation`` set, or `None`).
        strategy: The run's strategy.
        examples: Number of validation examples (pairs for unpaired data).
    """
    data = config.data
    if data.validation is None or examples < 1:
        return None
    replicas = strategy.num_replicas_in_sync
    steps = validation_steps(config, strategy, examples)

    def pipeline(context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        dataset = make_dataset(
            data.validation,
            data.eval_split,
            data,
            training=False,
            global_batch_size=replicas,
            input_context=context,
        )
        return dataset.repeat().take(steps * _replicas_per_pipeline(strategy, context))

    return _distribute(pipeline, strategy)


def validation_steps(config: Config, strategy: tf.distribute.Strategy, examples: int) -> int:
    """Validation steps per epoch: every example once, at most ``training.validation_steps``."""
    steps = -(-examples // strategy.num_replicas_in_sync)
    limit = config.training.validation_steps
    return steps if limit is None else min(steps, limit)


def grid_examples(config: Config, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` examples shown in the image grids, in physical units.

    Taken from the validation split when there is one, else from the
    training split, whole and without augmentation.

    Returns:
        ``(input, target)`` float32 ``H x W x C`` arrays (unpaired data: an
        image of each domain).
    """
    data = config.data
    folder, split = (
        (data.validation, data.eval_split) if data.validation else (data.dataset, data.train_split)
    )
    if count < 1:
        return []
    dataset = make_dataset(folder, split, data, training=False, global_batch_size=1, with_info=True)
    examples = []
    for inputs, targets, info in dataset.take(count):
        images = [
            unwindow(crop_to_size(batch[0], info[f"{role}_size"][0]), window).numpy()
            for batch, role, window in (
                (inputs, "input", data.input_window),
                (targets, "target", data.target_window),
            )
        ]
        examples.append((images[0], images[1]))
    return examples


def _replicas_per_pipeline(
    strategy: tf.distribute.Strategy, context: tf.distribute.InputContext | None
) -> int:
    """Per-replica batches one input pipeline feeds per global step."""
    if context is None:
        return 1
    return strategy.num_replicas_in_sync // context.num_input_pipelines


def _distribute(
    pipeline: Callable[[tf.distribute.InputContext | None], tf.data.Dataset],
    strategy: tf.distribute.Strategy,
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The plain dataset on one device, else one pipeline per worker, batched per replica."""
    multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if strategy.num_replicas_in_sync == 1 and not multiworker:
        return pipeline(None)
    return strategy.distribute_datasets_from_function(pipeline)
