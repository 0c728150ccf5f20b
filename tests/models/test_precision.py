"""Tests of the precision option."""

import keras
import pytest

from kerastrans.precision import (
    PRECISIONS,
    apply_precision,
    check_precision,
    loss_scale_optimizer,
    precision_scope,
    resolve_policy,
)


def test_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"precision must be one of \('float32'.*got 'fp16'"):
        check_precision("fp16")
    assert check_precision("mixed_bfloat16") == "mixed_bfloat16"


def test_scope_sets_the_policy_inside_and_restores_it_after():
    before = keras.config.dtype_policy().name
    with precision_scope("mixed_bfloat16") as policy:
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert (policy.compute_dtype, policy.variable_dtype) == ("bfloat16", "float32")
    assert keras.config.dtype_policy().name == before


def test_apply_precision_returns_the_previous_policy():
    previous = apply_precision("mixed_float16")
    try:
        assert keras.config.dtype_policy().name == "mixed_float16"
    finally:
        keras.config.set_dtype_policy(previous)
    assert resolve_policy(None).name == previous.name


@pytest.mark.parametrize("precision", PRECISIONS)
def test_only_float16_gets_loss_scaling(precision):
    optimizer = loss_scale_optimizer(keras.optimizers.Adam(), precision)
    wrapped = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (precision == "mixed_float16")
    assert loss_scale_optimizer(optimizer, precision) is optimizer  # never wrapped twice
