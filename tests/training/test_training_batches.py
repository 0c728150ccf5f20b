"""`kerastrans.training.data.training_batches`: epochs shorter than a pass read on through it."""

import dataclasses

import numpy as np
import tensorflow as tf

from kerastrans.training.data import training_batches
from kerastrans.training.resolve import resolve_config


def test_short_epochs_read_on_through_the_split(paired_dataset, tiny_config):
    """8 pairs, epochs of 2 steps of 2: epochs 0 and 1 read different pairs, epoch 2 wraps.

    Before, every epoch re-read the split from its start, so runs with short epochs
    (validation every 100 steps of a 32,000-image split) only ever saw its first
    ``steps x batch + shuffle_buffer`` examples.
    """
    config = resolve_config(tiny_config(paired_dataset, steps_per_epoch=2), default_seed=1)
    # A buffer of one: the stream is the stored order, so what each epoch reads is known.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, shuffle_buffer=1))
    strategy = tf.distribute.get_strategy()

    def epoch_inputs(epoch):
        batches = list(training_batches(config, epoch, 0, strategy))
        assert len(batches) == 2
        return np.concatenate([inputs.numpy() for inputs, _ in batches])

    stored = np.concatenate([epoch_inputs(0), epoch_inputs(1)])
    assert len({image.tobytes() for image in stored}) == 8  # every pair once
    np.testing.assert_array_equal(epoch_inputs(2), stored[:4])  # then the next pass
