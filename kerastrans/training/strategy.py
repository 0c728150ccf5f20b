"""Distribution strategies, and which worker of a cluster writes the run directory.

- ``"default"``: one device (`tf.distribute.get_strategy`).
- ``"mirrored"``: `tf.distribute.MirroredStrategy` over the local GPUs (or CPU).
- ``"multiworker"``: `tf.distribute.MultiWorkerMirroredStrategy` over the
  cluster described by the ``TF_CONFIG`` environment variable, the standard
  way TensorFlow jobs run on Kubernetes, Slurm or Vertex AI. Every worker runs
  the same command; the dataset is sharded per worker; only the chief writes
  the run directory, the others write to a temporary folder that is deleted
  (the usual Keras pattern).
- ``"auto"``: ``"mirrored"`` when more than one GPU is visible, else ``"default"``.

Create the strategy first in a program: `MultiWorkerMirroredStrategy` must
exist before other TensorFlow work starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from kerastrans._compat import forget_distribution_strategy, in_multi_worker_mode

__all__ = [
    "STRATEGIES",
    "adapt_model",
    "fit_scope",
    "is_chief",
    "is_multiworker",
    "make_strategy",
    "workers_agree",
    "write_directory",
]

logger = logging.getLogger(__name__)

#: Names accepted by `make_strategy` (and ``kerastrans fit --strategy``).
STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Create the distribution strategy ``name`` (one of `STRATEGIES`).

    Raises:
        ValueError: For another name, or a ``TF_CONFIG`` that is not valid JSON.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    text = os.environ.get("TF_CONFIG")
    if not text:
        logger.warning("strategy 'multiworker' without TF_CONFIG: training on this machine alone")
    else:
        try:
            json.loads(text)
        except ValueError as error:
            raise ValueError(f"TF_CONFIG must be JSON, got {text!r} ({error})") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multiworker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` is a `MultiWorkerMirroredStrategy`."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (always, unless a non-chief worker).

    The chief is the task of type ``chief``, or worker 0 of a cluster without one.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multiworker(strategy) or resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


@contextlib.contextmanager
def write_directory(run_dir: str | os.PathLike, strategy: tf.distribute.Strategy) -> Iterator[Path]:
    """Yield the folder this process writes to: ``run_dir``, or a temporary one.

    Non-chief workers of a cluster compute the same checkpoints, logs and
    grids as the chief (every worker must take part in the collective work)
    but write them to a temporary folder, removed at the end.
    """
    if is_chief(strategy):
        yield Path(run_dir)
        return
    folder = Path(tempfile.mkdtemp(prefix="kerastrans-worker-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def workers_agree(strategy: tf.distribute.Strategy, ok: bool) -> bool:
    """Whether ``ok`` holds on every worker of a cluster (on this process alone otherwise).

    Every worker must call it at the same point: the flags are summed over
    all replicas with a collective operation. A worker that cannot start (the
    chief refused the run directory's lock) thereby stops the others, which
    would otherwise wait for it in their first training step.
    """
    if not is_multiworker(strategy) or not in_multi_worker_mode(strategy):
        return ok
    failed = strategy.run(lambda: tf.constant(0.0 if ok else 1.0))
    return float(strategy.reduce("SUM", failed, axis=None)) == 0.0


def adapt_model(model, strategy: tf.distribute.Strategy) -> None:
    """Work around two Keras 3.15 bugs with `MultiWorkerMirroredStrategy` (TensorFlow #72388).

    1. Before training, Keras averages the first batch over the replicas with
       ``strategy.reduce`` on the whole ``(input, target)`` structure, to
       build the model symbolically; the multi-worker strategy rejects a
       nested structure there. The kerastrans models are built when they are
       constructed, so the model forgets its strategy (Keras then skips that
       step) and `fit_scope` gives it back through ``strategy.scope()``.
    2. In a cluster of several workers, Keras averages each logged value over
       the workers with ``strategy.reduce("MEAN", value, axis=0)``, which
       fails for the scalar losses and metrics every train step returns; the
       steps' logs get a batch axis of length 1, so that the average runs over
       the replicas. A single worker (one task in ``TF_CONFIG``, or none)
       takes Keras' other path, which passes the logs on as they are: there
       they stay scalars.

    Other strategies need neither and are left alone.
    """
    if not is_multiworker(strategy):
        return
    forget_distribution_strategy(model)
    # The condition under which Keras reduces the logs with ``axis=0`` (Keras'
    # ``_collective_all_reduce_multi_worker``).
    if in_multi_worker_mode(strategy):
        for name in ("train_step", "test_step"):
            setattr(model, name, _logs_with_batch_axis(getattr(model, name)))


def _logs_with_batch_axis(step):
    def wrapped(data):
        return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

    return wrapped


def fit_scope(strategy: tf.distribute.Strategy):
    """The context ``model.fit`` runs in: ``strategy.scope()`` after `adapt_model`, else none."""
    return strategy.scope() if is_multiworker(strategy) else contextlib.nullcontext()
