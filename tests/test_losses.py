"""Tests of the losses: values by hand, the WGAN-GP penalty and its gradient, perceptual."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerastrans.config import Window
from kerastrans.errors import DataError
from kerastrans.losses import (
    ADVERSARIAL_LOSSES,
    PerceptualLoss,
    air_loss,
    dice_loss,
    discriminator_adversarial_loss,
    focal_loss,
    generator_adversarial_loss,
    gradient_loss,
    gradient_penalty,
    hu_to_unit,
    l1_loss,
    l2_loss,
    latent_loss,
    total_variation,
    window_rescale,
)

RNG = np.random.default_rng(0)


def value(tensor) -> float:
    return float(ops.convert_to_numpy(tensor))


def test_l1_and_l2_are_means_weighted_per_channel():
    y_true = np.zeros((1, 2, 2, 2), "float32")
    y_pred = np.stack([np.full((1, 2, 2), 1.0), np.full((1, 2, 2), 3.0)], -1).astype("float32")
    assert value(l1_loss(y_true, y_pred)) == pytest.approx(2.0)
    assert value(l2_loss(y_true, y_pred)) == pytest.approx(5.0)
    assert value(l1_loss(y_true, y_pred, class_weights=[1.0, 0.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"one weight per channel \(2\), got 3"):
        l1_loss(y_true, y_pred, class_weights=[1, 1, 1])


def test_focal_loss_with_gamma_zero_is_the_cross_entropy_and_focusing_lowers_it():
    target = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]], "float32")  # (1, 2, 1, 2) one-hot
    probabilities = np.array([[[[0.8, 0.2]], [[0.4, 0.6]]]], "float32")
    cross_entropy = -(np.log(0.8) + np.log(0.6)) / 2
    assert value(focal_loss(target, probabilities, gamma=0.0)) == pytest.approx(cross_entropy)
    focal = -(0.2**2 * np.log(0.8) + 0.4**2 * np.log(0.6)) / 2
    assert value(focal_loss(target, probabilities, gamma=2.0)) == pytest.approx(focal, rel=1e-5)


def test_dice_loss_is_zero_for_a_perfect_and_one_for_a_disjoint_segmentation():
    target = np.zeros((1, 4, 4, 2), "float32")
    target[..., :2, 0] = 1.0
    target[..., 2:, 1] = 1.0
    assert value(dice_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert value(dice_loss(target, target[..., ::-1])) == pytest.approx(1.0, abs=1e-6)
    # Weighting only the first class, which is half right: dice = 2 * 4 / (8 + 8) = 0.5.
    half = target.copy()
    half[0, :2, :2, 0] = 0.0
    half[0, :2, 2:, 0] = 1.0
    assert value(dice_loss(target, half, class_weights=[1.0, 0.0])) == pytest.approx(0.5)


def test_total_variation_of_a_ramp_counted_by_hand():
    ramp = np.tile(np.arange(4, dtype="float32"), (4, 1))[None, :, :, None]  # dx = 1, dy = 0
    assert value(total_variation(ramp, "anisotropic")) == pytest.approx(1.0)
    assert value(total_variation(ramp, "isotropic", tau=0.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="method must be 'anisotropic' or 'isotropic', got 'tv'"):
        total_variation(ramp, "tv")


@pytest.mark.parametrize("method", ["diff", "sobel"])
def test_gradient_loss_ignores_intensity_offsets_but_not_edges(method):
    x = RNG.normal(size=(2, 8, 8, 1)).astype("float32")
    assert value(gradient_loss(x, x + 0.5, method=method)) == pytest.approx(0.0, abs=1e-6)
    assert value(gradient_loss(x, 2 * x, method=method, norm="l2")) > 0.1


def test_hu_window_mapping_and_rescaling_between_windows():
    window_a, window_b = Window.from_bounds(-1000, 1000), Window.from_bounds(-1000, 500)
    assert hu_to_unit(-1000, window_a) == -1.0
    assert hu_to_unit(0, window_a) == 0.0
    x = np.array([-1.0, 0.0, 1.0], "float32")  # -1000, -250, 500 HU in window_b
    rescaled = ops.convert_to_numpy(window_rescale(x, window_b, window_a))
    np.testing.assert_allclose(rescaled, [-1.0, -0.25, 0.5])


def test_air_loss_compares_only_pixels_where_one_image_is_air():
    source = np.array([-1.0, -1.0, 0.5, 0.5], "float32").reshape(1, 2, 2, 1)
    translated = np.array([-1.0, 0.2, -1.0, 0.4], "float32").reshape(1, 2, 2, 1)
    # Air (<= -0.9) in exactly one image: pixels 2 (|-1 - 0.2|) and 3 (|0.5 + 1|).
    assert value(air_loss(source, translated, -0.9)) == pytest.approx((1.2 + 1.5) / 4)


def test_latent_loss_norms():
    z = np.array([[1.0, -3.0]], "float32")
    assert value(latent_loss(z, "l2")) == pytest.approx(5.0)
    assert value(latent_loss(z, "l1")) == pytest.approx(2.0)


def test_adversarial_losses_on_known_logits():
    real, fake = np.full((1, 2, 2, 1), 2.0, "float32"), np.full((1, 2, 2, 1), -1.0, "float32")
    expected = {
        "vanilla": (np.log1p(np.e), 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0)))),
        "lsgan": (4.0, 0.5 * (1.0 + 1.0)),
        "hinge": (1.0, 0.5 * (0.0 + 0.0)),
        "wgan-gp": (1.0, 0.5 * (-2.0 + -1.0)),
    }
    for kind in ADVERSARIAL_LOSSES:
        generator, discriminator = expected[kind]
        assert value(generator_adversarial_loss(fake, kind)) == pytest.approx(generator, rel=1e-5)
        assert value(discriminator_adversarial_loss(real, fake, kind)) == pytest.approx(
            discriminator, rel=1e-5
        )
    with pytest.raises(ValueError, match=r"adversarial must be one of .*got 'wgan'"):
        generator_adversarial_loss(fake, "wgan")


def test_gradient_penalty_and_its_gradient_match_a_hand_computation_on_a_linear_critic():
    # Critic: 1x1 convolution with weights w, scored by its mean over H x W pixels, so
    # d score / d x = w / (H W) at every pixel and ||grad|| = ||w|| / sqrt(H W).
    height = width = 4
    critic = keras.Sequential([keras.Input((height, width, 3)), keras.layers.Conv2D(1, 1)])
    w = np.array([3.0, 4.0, 12.0], "float32")  # ||w|| = 13
    critic.set_weights([w.reshape(1, 1, 3, 1), np.zeros(1, "float32")])
    real = RNG.normal(size=(2, height, width, 3)).astype("float32")
    fake = RNG.normal(size=(2, height, width, 3)).astype("float32")
    alpha = RNG.uniform(size=(2, 1, 1, 1)).astype("float32")
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, real, fake, alpha)
    norm = 13.0 / np.sqrt(height * width)
    assert value(penalty) == pytest.approx((norm - 1.0) ** 2, rel=1e-5)
    assert value(penalty) > 0
    kernel_gradient = tape.gradient(penalty, critic.layers[0].kernel)
    expected = 2 * (norm - 1.0) * w / (13.0 * np.sqrt(height * width))
    np.testing.assert_allclose(ops.convert_to_numpy(kernel_gradient).ravel(), expected, rtol=1e-4)


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg16_notop.weights.h5"
    keras.utils.set_random_seed(0)
    keras.applications.VGG16(weights=None, include_top=False).save_weights(path)
    return path


def test_perceptual_loss_compares_features_of_grey_images_from_a_local_weights_file(vgg_weights):
    loss = PerceptualLoss(vgg_weights, layer="block1_conv2")
    x = RNG.uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    assert value(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert value(loss(x, -x)) > 0
    # Two grey channels are compared one by one: swapping them changes the loss.
    pair = np.concatenate([x, -x], axis=-1)
    assert value(loss(pair, pair[..., ::-1])) > 0


def test_perceptual_loss_refuses_missing_or_foreign_weights(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"nope\.h5: perceptual loss weights file not found"
    ):
        PerceptualLoss(tmp_path / "nope.h5")
    foreign = tmp_path / "dense.weights.h5"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save_weights(foreign)
    with pytest.raises(DataError, match=r"dense\.weights\.h5: cannot load vgg16 weights"):
        PerceptualLoss(foreign)
