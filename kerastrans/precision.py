"""Floating-point precision of the networks: float32, mixed bfloat16 or mixed float16.

Mixed precision computes convolutions in a 16-bit type and keeps the weights in
float32 (`keras.mixed_precision`). kerastrans keeps everything that needs the
range or the accuracy of float32 in float32: normalisation statistics (Keras
batch and group normalisation and our instance normalisation upcast), the
final activation of every network (its layer has ``dtype="float32"``), and all
losses and metrics (they cast their inputs). ``mixed_float16`` also needs loss
scaling against gradient underflow: the models wrap their optimizers in a
`keras.optimizers.LossScaleOptimizer` (see `loss_scale_optimizer`).

``"auto"`` (the default of configs, ``kerastrans fit``, the demo and the
benchmarks) stands for mixed bfloat16 on machines that compute bfloat16
natively and float32 elsewhere (`resolve_precision`, `kerastrans.hardware`);
a run records the precision it chose.

Choose the precision before the model is built, either globally with
`apply_precision` (what the CLI does for ``--precision``) or for one block of
code with `precision_scope`, or pass ``dtype=`` to a model or network.

>>> with precision_scope("mixed_bfloat16") as policy:
...     policy.compute_dtype, policy.variable_dtype
('bfloat16', 'float32')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from kerastrans.hardware import native_bfloat16

__all__ = [
    "AUTO",
    "PRECISIONS",
    "apply_precision",
    "check_precision",
    "loss_scale_optimizer",
    "precision_scope",
    "resolve_policy",
    "resolve_precision",
]

#: Precision names accepted everywhere (``--precision``, ``dtype=`` of models).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

#: The precision name that lets the machine choose (see `resolve_precision`).
AUTO = "auto"


def check_precision(name: str) -> str:
    """Return ``name`` if it is one of `PRECISIONS`.

    Raises:
        ValueError: For any other name.
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    return name


def resolve_precision(name: str) -> str:
    """The precision ``name`` stands for on this machine.

    ``"auto"`` becomes ``"mixed_bfloat16"`` where the CPU (AVX512-BF16 or
    AMX-BF16) or the GPUs compute bfloat16 natively and ``"float32"``
    elsewhere, where bfloat16 would be emulated and slower; every other name
    of `PRECISIONS` stands for itself.

    Raises:
        ValueError: For a name that is neither ``"auto"`` nor in `PRECISIONS`.

    >>> resolve_precision("float32")
    'float32'
    >>> resolve_precision("auto") in ("float32", "mixed_bfloat16")
    True
    """
    if name == AUTO:
        return "mixed_bfloat16" if native_bfloat16() else "float32"
    return check_precision(name)


def resolve_policy(dtype: str | keras.DTypePolicy | None = None) -> keras.DTypePolicy:
    """Return the dtype policy that ``dtype`` names; `None` means the global policy.

    Args:
        dtype: A precision name, a `keras.DTypePolicy` or `None`.

    Returns:
        The policy object.

    Raises:
        ValueError: If ``dtype`` names a policy that is not in `PRECISIONS`.
    """
    if dtype is None:
        return keras.config.dtype_policy()
    if isinstance(dtype, keras.DTypePolicy):
        check_precision(dtype.name)
        return dtype
    return keras.DTypePolicy(check_precision(dtype))


def apply_precision(name: str) -> keras.DTypePolicy:
    """Set the global Keras dtype policy to ``name`` and return the previous one.

    Networks and models built afterwards compute in that precision. Call it
    once at program start (the CLI does), or use `precision_scope`.

    Args:
        name: One of `PRECISIONS`.

    Returns:
        The policy that was global before, so a caller can restore it.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(check_precision(name))
    return previous


@contextlib.contextmanager
def precision_scope(name: str | keras.DTypePolicy | None) -> Iterator[keras.DTypePolicy]:
    """Make ``name`` the global policy inside the block and restore the old one after.

    Args:
        name: One of `PRECISIONS`, a policy, or `None` for the current policy
            (the block then changes nothing).

    Yields:
        The policy in force inside the block.
    """
    policy = resolve_policy(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scale_optimizer(
    optimizer: keras.optimizers.Optimizer, dtype: str | keras.DTypePolicy | None = None
) -> keras.optimizers.Optimizer:
    """Wrap ``optimizer`` in a dynamic `LossScaleOptimizer` if the policy is float16.

    bfloat16 has the exponent range of float32 and needs no loss scaling, so
    the optimizer is returned unchanged for it and for float32.

    Args:
        optimizer: The optimizer of one network.
        dtype: The policy the network computes in (`None`: the global policy).

    Returns:
        ``optimizer`` itself, or a `LossScaleOptimizer` around it.
    """
    policy = resolve_policy(dtype)
    if policy.compute_dtype == "float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
