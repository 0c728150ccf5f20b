"""``benchmarks/_flops.py``: the train step's FLOPs counted from the layers."""

import pytest

# Hand count of the tiny network below, per image (MACs = multiply-accumulates):
#   conv 3x3, 3 -> 4, 'same' on 8x8:         8*8 positions * 9 * 3 * 4 = 6912
#   shared conv 1x1, 4 -> 4, called twice:   2 * (8*8 * 1 * 4 * 4)    = 2048
#   conv 2x2 stride 2, 4 -> 2 (out 4x4):     4*4 * 4 * 4 * 2          =  512
#   transposed conv 4x4 stride 2, 2 -> 5:    4*4 inputs * 16 * 2 * 5  = 2560
#   dense 5 -> 3 on each of 8*8 positions:   64 * 5 * 3               =  960
#   (torch: dense on the flattened 8*8*5:    320 * 3                  =  960)
TINY_MACS = 6912 + 2048 + 512 + 2560 + 960
BATCH = 2


@pytest.fixture(scope="module")
def flops(benchmark):
    return benchmark("_flops")


def _tiny_keras_network():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 3))
    shared = layers.Conv2D(4, 1)
    x = shared(shared(layers.Conv2D(4, 3, padding="same")(inputs)))
    x = layers.Conv2D(2, 2, strides=2)(x)
    inner = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            layers.Conv2DTranspose(5, 4, strides=2, padding="same"),
            layers.Dense(3),
        ]
    )
    return keras.Model(inputs, inner(x))


def test_keras_counter_counts_each_call_of_nested_and_shared_layers(flops):
    import numpy as np

    model = _tiny_keras_network()
    assert (
        flops.keras_forward_macs(model, np.zeros((BATCH, 8, 8, 3), "float32")) == BATCH * TINY_MACS
    )


def test_keras_counter_leaves_the_layers_as_they_were(flops):
    import numpy as np

    model = _tiny_keras_network()
    images = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    before = np.asarray(model(images))
    flops.keras_forward_macs(model, images)
    assert not any("call" in vars(layer) for layer in flops._keras_counted_layers(model))
    np.testing.assert_array_equal(np.asarray(model(images)), before)
    assert flops.keras_forward_macs(model, images) == TINY_MACS  # no double hooks


def test_torch_counter_counts_the_same_tiny_network(flops):
    torch = pytest.importorskip("torch")
    from torch import nn

    shared = nn.Conv2d(4, 4, 1)
    network = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        shared,
        shared,
        nn.Conv2d(4, 2, 2, stride=2),
        nn.ConvTranspose2d(2, 5, 4, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(320, 3),
    )
    assert flops.torch_forward_macs(network, torch.zeros(BATCH, 3, 8, 8)) == BATCH * TINY_MACS


def test_step_flops_count_the_passes_of_each_network_times_six(flops):
    # pix2pix: generator once, discriminator on the real and the fake pair.
    assert flops.step_gflops("pix2pix", 1_000_000_000, 250_000_000) == 2 * 3 * 1.5
    # CycleGAN: each of 2 generators 3 times, each of 2 discriminators twice.
    assert flops.step_gflops("cyclegan", 1_000_000_000, 250_000_000) == 2 * 3 * 7.0


def test_layer_formulas_match_the_hand_count(flops):
    assert flops.conv_macs((3, 3), 3, 4, (8, 8), batch=2) == 2 * 6912
    assert flops.conv_macs((1, 1), 4, 8, (2, 2), groups=2) == 4 * 2 * 8
    assert flops.transposed_conv_macs((4, 4), 2, 5, (4, 4)) == 2560
    assert flops.dense_macs(5, 3, positions=64) == 960
