"""FLOPs of a train step counted from its layers, and the machine's matmul peak.

Counting convention (what ``gflops`` of ``train_step.json`` means):

- a layer's forward multiply-accumulates (MACs), batch included:
  convolution ``N * H_out * W_out * k_h * k_w * C_in / groups * C_out``;
  transposed convolution ``N * H_in * W_in * k_h * k_w * C_in * C_out / groups``
  (every input pixel is scattered to ``k_h * k_w`` places in each output
  channel); dense ``positions * in_features * out_features``. Normalisation,
  activations, dropout, concatenation, losses and optimizer updates are not
  counted (they are memory-bound and small next to the convolutions);
- one MAC is 2 FLOPs, and forward + backward is 3 x the forward (the backward
  computes the gradient of the inputs and of the weights, each as large as the
  forward). This overcounts slightly: nothing needs the gradient of the input
  images, nor the discriminator's weight gradient through the generator's
  adversarial loss;
- a step counts every forward pass it really makes (`STEP_PASSES`): pix2pix
  runs the generator once and the discriminator twice (real pair, fake pair,
  whose logits serve both losses); CycleGAN runs each generator three times
  (translation, cycle, identity) and each discriminator twice.

The counters instrument a real forward pass, so they count what the network
does, shared layers and nested models included.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence

__all__ = [
    "FLOPS_PER_MAC",
    "STEP_PASSES",
    "TRAIN_FACTOR",
    "conv_macs",
    "conv_peak_gflops",
    "dense_macs",
    "keras_forward_macs",
    "matmul_peak_gflops",
    "step_gflops",
    "torch_forward_macs",
    "transposed_conv_macs",
]

FLOPS_PER_MAC = 2
#: Forward + backward (input and weight gradients) in units of one forward.
TRAIN_FACTOR = 3
#: Forward passes per train step of each network, per architecture.
STEP_PASSES = {
    "pix2pix": {"generator": 1, "discriminator": 2},
    "cyclegan": {"generator": 2 * 3, "discriminator": 2 * 2},
}


def conv_macs(
    kernel: Sequence[int],
    in_channels: int,
    out_channels: int,
    output_size: Sequence[int],
    *,
    batch: int = 1,
    groups: int = 1,
) -> int:
    """Forward MACs of a convolution with output ``output_size`` (height, width)."""
    return batch * math.prod(output_size) * math.prod(kernel) * in_channels // groups * out_channels


def transposed_conv_macs(
    kernel: Sequence[int],
    in_channels: int,
    out_channels: int,
    input_size: Sequence[int],
    *,
    batch: int = 1,
    groups: int = 1,
) -> int:
    """Forward MACs of a transposed convolution of an input of ``input_size`` (height, width)."""
    return batch * math.prod(input_size) * math.prod(kernel) * in_channels * out_channels // groups


def dense_macs(in_features: int, out_features: int, positions: int = 1) -> int:
    """Forward MACs of a dense layer applied at ``positions`` places (batch included)."""
    return positions * in_features * out_features


def step_gflops(kind: str, generator_macs: int, discriminator_macs: int) -> float:
    """GFLOP of one train step of ``kind`` from one forward pass of each network.

    >>> step_gflops("pix2pix", 10**9, 10**8)
    7.2
    """
    passes = STEP_PASSES[kind]
    macs = passes["generator"] * generator_macs + passes["discriminator"] * discriminator_macs
    return FLOPS_PER_MAC * TRAIN_FACTOR * macs / 1e9


# -- counters ------------------------------------------------------------------------------


def _keras_layer_macs(layer, inputs, outputs) -> int:
    import keras

    in_shape, out_shape = tuple(inputs.shape), tuple(outputs.shape)
    if isinstance(layer, keras.layers.Conv2DTranspose):  # kernel (k_h, k_w, C_out, C_in)
        *kernel, out_channels, in_channels = layer.kernel.shape
        return transposed_conv_macs(
            kernel, in_channels, out_channels, in_shape[1:3], batch=in_shape[0]
        )
    if isinstance(layer, keras.layers.Conv2D):  # kernel (k_h, k_w, C_in / groups, C_out)
        *kernel, in_per_group, out_channels = layer.kernel.shape
        return conv_macs(kernel, in_per_group, out_channels, out_shape[1:3], batch=out_shape[0])
    *positions, in_features = in_shape  # Dense
    return dense_macs(in_features, layer.units, math.prod(positions))


def _keras_counted_layers(model) -> list:
    import keras

    counted = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, counted):
            found.append(layer)
        stack.extend(getattr(layer, "layers", ()))
    return list({id(layer): layer for layer in found}.values())


@contextlib.contextmanager
def _recording_calls(layers: list, total: list) -> Iterator[None]:
    """Make each layer's ``call`` add its MACs to ``total[0]``; restore on exit."""

    def recording(layer, call):
        def wrapper(inputs, *args, **kwargs):
            outputs = call(inputs, *args, **kwargs)
            total[0] += _keras_layer_macs(layer, inputs, outputs)
            return outputs

        return wrapper

    try:
        for layer in layers:
            object.__setattr__(layer, "call", recording(layer, layer.call))
        yield
    finally:
        for layer in layers:
            if "call" in vars(layer):
                object.__delattr__(layer, "call")


def keras_forward_macs(model, inputs) -> int:
    """MACs of one forward pass of a Keras ``model`` on ``inputs``.

    Runs ``model(inputs, training=False)`` once with every Conv2D,
    Conv2DTranspose and Dense layer (nested models included) recording its
    MACs, so a layer called twice counts twice.
    """
    total = [0]
    with _recording_calls(_keras_counted_layers(model), total):
        model(inputs, training=False)
    return total[0]


def torch_forward_macs(module, *inputs) -> int:
    """MACs of one forward pass of a PyTorch ``module`` (needs torch), like `keras_forward_macs`."""
    import torch
    from torch import nn

    total = [0]

    def hook(layer, args, output):
        if isinstance(layer, nn.ConvTranspose2d):
            batch, in_channels, *size = args[0].shape
            total[0] += transposed_conv_macs(
                layer.kernel_size,
                in_channels,
                layer.out_channels,
                size,
                batch=batch,
                groups=layer.groups,
            )
        elif isinstance(layer, nn.Conv2d):
            batch, out_channels, *size = output.shape
            total[0] += conv_macs(
                layer.kernel_size,
                layer.in_channels,
                out_channels,
                size,
                batch=batch,
                groups=layer.groups,
            )
        else:  # nn.Linear
            total[0] += dense_macs(
                layer.in_features, layer.out_features, output.numel() // layer.out_features
            )

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, counted)]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


# -- the machine's peak --------------------------------------------------------------------


def matmul_peak_gflops(dtype: str, size: int = 4096, repeats: int = 10) -> float:
    """Best GFLOP/s of a ``size`` x ``size`` TensorFlow matmul in ``dtype`` over ``repeats`` runs.

    ``2 * size**3`` FLOPs per product; the best run, after one untimed run,
    stands for what the machine's cores can do in ``dtype`` ("float32" or
    "bfloat16") through TensorFlow's kernels (oneDNN on x86).
    """
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_uniform((size, size), seed=(0, 1)), dtype)
    return 2 * size**3 / _best_seconds(lambda x: tf.linalg.matmul(x, x), (a,), repeats) / 1e9


def conv_peak_gflops(
    dtype: str, size: int = 64, channels: int = 256, batch: int = 8, repeats: int = 10
) -> float:
    """Best GFLOP/s of a 3 x 3 convolution, ``channels`` to ``channels``, on ``size``-pixel maps.

    A second probe of the machine's peak beside `matmul_peak_gflops`: on some
    CPUs oneDNN's convolution kernels beat its matmul (a 2-core Xeon with AMX
    ran this convolution at 1.8 x the 4096 x 4096 bfloat16 matmul), and a
    peak below what a training step reaches bounds nothing.
    """
    import tensorflow as tf

    x = tf.cast(tf.random.stateless_uniform((batch, size, size, channels), seed=(0, 2)), dtype)
    w = tf.cast(tf.random.stateless_uniform((3, 3, channels, channels), seed=(0, 3)), dtype)
    seconds = _best_seconds(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), (x, w), repeats)
    return 2 * batch * size**2 * channels**2 * 9 / seconds / 1e9


def _best_seconds(function, arguments: tuple, repeats: int) -> float:
    """Shortest of ``repeats`` calls of ``function`` compiled, after one untimed call."""
    import tensorflow as tf

    compiled = tf.function(function)  # CPU calls return when done
    compiled(*arguments)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        compiled(*arguments)
        best = min(best, time.perf_counter() - start)
    return best
