"""Every use of a private Keras, TensorFlow or TensorFlow Datasets API, in one place.

Each function names the library version that needs it (the versions kerastrans
is tested with: Keras 3.15, TensorFlow 2.21, tensorflow-datasets 4.9.10) and
has a test of its own in ``tests/test_compat.py`` that fails when the private
API disappears or changes meaning. The rest of the package calls these
functions and touches no private attribute of those libraries.

TensorFlow Datasets is imported only by the functions that use it, so that
importing this module does not pull it in.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import tensorflow as tf

__all__ = [
    "ProgbarLogger",
    "adam_moments",
    "all_layers",
    "forget_distribution_strategy",
    "in_multi_worker_mode",
    "local_adhoc_builder",
    "scalar_summary_metadata",
    "tfds_progress_bars",
    "tfds_progress_bars_shown",
]


# ----------------------------------------------------------------------------------------------
# Keras and TensorFlow.


def all_layers(model: keras.Layer) -> list[keras.Layer]:
    """``model`` and every layer inside it, recursively (each once).

    Keras 3.15 has no public recursive listing: ``Layer._flatten_layers``.
    """
    return model._flatten_layers()


def adam_moments(optimizer: keras.optimizers.Adam, variable) -> tuple[Any, Any]:
    """The first and second moment variables ``optimizer`` keeps for ``variable``.

    Keras 3.15 keeps them in ``Adam._momentums`` and ``Adam._velocities``, in
    the order of ``BaseOptimizer._get_variable_index`` (which also maps a
    replica's copy of a mirrored variable to its slot).
    """
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several workers (a cluster in ``TF_CONFIG``).

    TensorFlow 2.21: ``strategy.extended._in_multi_worker_mode()``, the
    condition under which Keras 3.15 reduces the logs of a train step over the
    workers with ``axis=0`` (``_collective_all_reduce_multi_worker`` in
    ``keras/src/backend/tensorflow/trainer.py``).
    """
    return bool(strategy.extended._in_multi_worker_mode())


def forget_distribution_strategy(model: keras.Model) -> None:
    """Make ``model`` use the strategy of the current scope instead of the one it was built in.

    Keras 3.15 (TensorFlow backend) stores the strategy a model is created
    under in ``Model._distribute_strategy``; when it is `None`, Keras skips the
    symbolic build before training and takes the strategy from the enclosing
    ``strategy.scope()``.
    """
    model._distribute_strategy = None


class ProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras' progress bar with the epoch count, steps per epoch and first step given.

    Keras 3.15 sets ``epochs`` and ``target`` from the ``fit`` call and counts
    steps from 0 in the private ``_update_progbar``; a run that calls ``fit``
    once per epoch, or resumes within an epoch, shows its own numbers here.
    Subclasses implement `counts`.
    """

    def counts(self) -> tuple[int, int, int]:
        """``(epochs, steps_per_epoch, first_step)`` to show; first_step counts from 0."""
        raise NotImplementedError

    def set_params(self, params):
        super().set_params(params)
        self.epochs, self.target, _ = self.counts()

    def _update_progbar(self, batch, logs=None):
        super()._update_progbar(batch + self.counts()[2], logs)


def scalar_summary_metadata() -> Any:
    """The ``SummaryMetadata`` that makes TensorBoard show a ``tf.summary.write`` as a scalar.

    TensorFlow 2.21 exports the protocol buffer's enum ``DATA_CLASS_SCALAR``
    only from ``tensorflow.core.framework.summary_pb2`` (``tf.summary.scalar``
    comes with the ``tensorboard`` package, which kerastrans does not need).
    """
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_SCALAR)
    metadata.plugin_data.plugin_name = "scalars"
    return metadata


# ----------------------------------------------------------------------------------------------
# TensorFlow Datasets.


def tfds_progress_bars_shown() -> bool:
    """Whether TFDS shows its progress bars (set by ``tfds.display_progress_bar``).

    tensorflow-datasets 4.9.10 keeps the switch in the private
    ``tensorflow_datasets.core.utils.tqdm_utils._active`` and has no getter.
    """
    from tensorflow_datasets.core.utils import tqdm_utils

    return bool(getattr(tqdm_utils, "_active", True))


@contextlib.contextmanager
def tfds_progress_bars(*, enabled: bool) -> Iterator[None]:
    """Switch TFDS's own progress bars for the block, then restore the previous setting."""
    import tensorflow_datasets as tfds

    previous = tfds_progress_bars_shown()
    tfds.display_progress_bar(enabled)
    try:
        yield
    finally:
        tfds.display_progress_bar(previous)


def local_adhoc_builder(
    *,
    metadata: Mapping[str, Any],
    supervised_keys: tuple[str, str] | None,
    log: logging.Logger,
    **kwargs: Any,
) -> Any:
    """A ``tfds.dataset_builders.AdhocBuilder`` for a local dataset, written in the order given.

    Unlike TFDS's own, it never asks GCS for precomputed info (TFDS asks while
    a new dataset is set up, and leaves an empty ``tmp*tfds`` folder in the
    temp dir each time), logs instead of printing on standard output, stores
    ``metadata`` and ``supervised_keys`` and disables shuffling.
    tensorflow-datasets 4.9.10: overrides ``DatasetInfo.initialize_from_bucket``
    and the builder's private ``_log_download_bytes``/``_log_download_done``, and
    reads the private ``_description``/``_feature_spec`` that ``AdhocBuilder``
    stores from its arguments.

    Args:
        metadata: Stored as the dataset's ``metadata.json``.
        supervised_keys: ``(input, target)`` feature names, or `None`.
        log: The logger of TFDS's two messages (the caller's).
        **kwargs: Arguments of ``AdhocBuilder`` (``name``, ``version``,
            ``features``, ``split_datasets``, ``data_dir``, ``description``,
            ``file_format``, ...).
    """
    builder_class = _local_adhoc_builder_class()
    return builder_class(metadata=metadata, supervised_keys=supervised_keys, log=log, **kwargs)


@functools.cache
def _local_adhoc_builder_class() -> type:
    import tensorflow_datasets as tfds

    class LocalInfo(tfds.core.DatasetInfo):
        def initialize_from_bucket(self) -> None:
            return

    class LocalAdhocBuilder(tfds.dataset_builders.AdhocBuilder, skip_registration=True):
        def __init__(self, *, metadata, supervised_keys, log, **kwargs) -> None:
            self._kerastrans_metadata = metadata
            self._kerastrans_supervised_keys = supervised_keys
            self._kerastrans_log = log
            super().__init__(**kwargs)

        def _info(self) -> tfds.core.DatasetInfo:
            return LocalInfo(
                builder=self,
                description=self._description,
                features=self._feature_spec,
                supervised_keys=self._kerastrans_supervised_keys,
                disable_shuffling=True,
                metadata=tfds.core.MetadataDict(self._kerastrans_metadata),
            )

        def _log_download_bytes(self) -> None:
            self._kerastrans_log.info("Writing dataset %s to %s", self.name, self.data_dir)

        def _log_download_done(self) -> None:
            self._kerastrans_log.info("Dataset %s written", self.name)

    return LocalAdhocBuilder
