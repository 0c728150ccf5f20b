"""Tests of the Pix2Pix model: train step, losses, schedule, saving, precision."""

import json

import keras
import numpy as np
import pytest
from model_helpers import (
    TINY_DISCRIMINATOR,
    TINY_GENERATOR,
    constructor_arguments,
    losses_over_steps,
)

from kerastrans._compat import all_layers
from kerastrans.models import Pix2Pix
from kerastrans.nets import FusedBatchNormalization


def tiny(**options) -> Pix2Pix:
    return Pix2Pix((32, 32, 1), 1, TINY_GENERATOR, TINY_DISCRIMINATOR, seed=0, **options)


@pytest.fixture(scope="module")
def trained(pair):
    """A model with dropout and an image pool, trained 5 steps; its logs per step."""
    model = Pix2Pix(
        (32, 32, 1),
        1,
        {**TINY_GENERATOR, "dropout": 0.3, "norm": "batch"},
        TINY_DISCRIMINATOR,
        pool_size=4,
        seed=0,
    )
    model.compile(g_optimizer=keras.optimizers.Adam(2e-3), d_optimizer=keras.optimizers.Adam(2e-4))
    logs = [model.train_on_batch(*pair, return_dict=True) for _ in range(5)]
    return model, logs


def test_train_steps_reduce_the_generator_loss_on_a_fixed_batch(trained):
    _, logs = trained
    assert logs[-1]["g_loss"] < logs[0]["g_loss"]
    assert logs[-1]["l1"] < logs[0]["l1"]
    assert set(logs[0]) == {"g_loss", "l1", "adversarial", "d_loss"}


def test_inference_is_the_same_for_predict_call_and_after_save_and_load(trained, pair, tmp_path):
    model, _ = trained
    predicted = model.predict(pair[0], verbose=0)
    np.testing.assert_array_equal(predicted, keras.ops.convert_to_numpy(model(pair[0])))
    path = tmp_path / "pix2pix.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode stays on
    assert type(loaded) is Pix2Pix
    np.testing.assert_array_equal(loaded.predict(pair[0], verbose=0), predicted)
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config(), default=list)
    # The optimizers come back with their state, so training can resume.
    assert int(loaded.g_optimizer.iterations.numpy()) == 5
    assert int(loaded.image_pool.count.numpy()) == 4


def test_config_holds_exactly_the_constructor_arguments(trained):
    model, _ = trained
    assert set(model.get_config()) == constructor_arguments(Pix2Pix)


def test_test_step_reports_image_metrics(trained, pair):
    model, _ = trained
    logs = model.test_on_batch(*pair, return_dict=True)
    assert set(logs) == {"l1", "psnr", "ssim"}
    assert logs["psnr"] > 0 and -1 <= logs["ssim"] <= 1


def test_wgan_gp_applies_a_nonzero_penalty_and_refuses_a_batch_norm_critic(pair):
    model = tiny(adversarial="wgan-gp")
    model.compile()
    logs = model.train_on_batch(*pair, return_dict=True)
    assert logs["gp"] > 0
    assert logs["d_loss"] != pytest.approx(0.0)
    with pytest.raises(ValueError, match="'wgan-gp' needs a discriminator without batch"):
        Pix2Pix((32, 32, 1), 1, TINY_GENERATOR, {"norm": "batch"}, adversarial="wgan-gp")


def test_discriminator_updates_follow_the_warmup_and_the_update_frequency(pair):
    model = tiny(warmup_steps=2, d_update_every=2, adversarial="lsgan", label_jitter=0.1)
    model.compile()
    logs = [model.train_on_batch(*pair, return_dict=True) for _ in range(6)]
    # Before the warm-up ends the adversarial term does not count.
    assert logs[0]["g_loss"] == pytest.approx(100 * logs[0]["l1"], rel=1e-5)
    assert logs[2]["g_loss"] == pytest.approx(
        100 * logs[2]["l1"] + logs[2]["adversarial"], rel=1e-5
    )
    # Steps 0..5: the discriminator learns at steps 2 and 4 only.
    assert int(model.g_optimizer.iterations.numpy()) == 6
    assert int(model.d_optimizer.iterations.numpy()) == 2


def test_without_adversarial_weight_there_is_no_discriminator(pair):
    model = tiny(adversarial_weight=0.0, l1_weight=1.0, tv_weight=0.1, latent_weight=0.01)
    model.compile()
    logs = model.train_on_batch(*pair, return_dict=True)
    assert model.discriminator is None and model.d_variables == []
    assert set(logs) == {"g_loss", "l1", "tv", "latent"}


def test_segmentation_targets_train_with_focal_and_dice_losses(pair):
    labels = (pair[1] > 0).astype("int32")[..., 0]
    one_hot = np.eye(2, dtype="float32")[labels]
    model = Pix2Pix(
        (32, 32, 1),
        2,
        {**TINY_GENERATOR, "out_activation": "softmax"},
        TINY_DISCRIMINATOR,
        l1_weight=0.0,
        focal_weight=1.0,
        dice_weight=1.0,
        class_weights=[1.0, 2.0],
        adversarial_weight=0.0,
        seed=0,
    )
    model.compile(g_optimizer=keras.optimizers.Adam(3e-3))
    dice = losses_over_steps(model, pair[0], one_hot, 6, key="dice")
    assert dice[-1] < dice[0]


def test_mixed_bfloat16_trains_and_returns_float32_images(pair):
    model = tiny(dtype="mixed_bfloat16")
    model.compile()
    logs = model.train_on_batch(*pair, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert model.predict(pair[0], verbose=0).dtype == np.float32
    assert model.generator.get_config()["dtype"] == "mixed_bfloat16"


def test_mixed_float16_scales_the_losses_down_until_the_gradients_are_finite(pair):
    model = tiny(dtype="mixed_float16")
    model.compile()
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    losses = losses_over_steps(model, *pair, 10)
    # Steps with overflowing float16 gradients are skipped and halve the scale (2**15 at first).
    assert 0 < int(model.g_optimizer.iterations.numpy()) < 10
    assert float(model.g_optimizer.dynamic_scale.numpy()) < 2**15
    assert losses[-1] < losses[0]


def test_perceptual_loss_uses_a_local_weights_file(pair, tmp_path):
    with pytest.raises(ValueError, match="perceptual_weight > 0 needs perceptual="):
        tiny(perceptual_weight=1.0)
    weights = tmp_path / "vgg16.weights.h5"
    keras.applications.VGG16(weights=None, include_top=False).save_weights(weights)
    model = tiny(
        adversarial_weight=0.0,
        perceptual_weight=1.0,
        perceptual={"weights_path": str(weights), "layer": "block1_conv2"},
    )
    model.compile()
    assert model.train_on_batch(*pair, return_dict=True)["perceptual"] > 0


def test_batches_without_a_target_are_refused(pair):
    model = tiny(adversarial_weight=0.0)
    model.compile(run_eagerly=True)
    with pytest.raises(TypeError, match=r"expected batches \(source, target\) of images, got a"):
        model.train_on_batch(pair[0])


def test_xla_compiled_steps_leave_batch_norm_to_xla(pair):
    model = Pix2Pix((32, 32, 1), 1, {**TINY_GENERATOR, "norm": "batch"}, TINY_DISCRIMINATOR, seed=0)
    model.compile(jit_compile=True)
    norms = [layer for layer in all_layers(model) if isinstance(layer, FusedBatchNormalization)]
    assert norms and not any(layer.use_fused_kernel for layer in norms)
    logs = model.train_on_batch(*pair, return_dict=True)
    assert all(np.isfinite(value) for value in logs.values())
