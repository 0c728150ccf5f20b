"""Tests of `kerastrans.translate`: windowing, padding and cropping around a generator."""

import keras
import numpy as np
import pytest

from kerastrans.config import Window
from kerastrans.nets import Generator
from kerastrans.translate import Translator, shape_mismatch, translate_in_batches

CT = Window.from_center_width(40, 400)  # [-160, 240] HU


def identity(channels=1, shape=(None, None)):
    return keras.Sequential([keras.Input((*shape, channels)), keras.layers.Identity()])


def block_average(multiple):
    """Averages blocks of ``multiple`` pixels: sizes must be multiples of it."""
    return keras.Sequential(
        [
            keras.Input((None, None, 1)),
            keras.layers.AveragePooling2D(multiple),
            keras.layers.UpSampling2D(multiple),
        ]
    )


def hu_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1000, 1000, shape).astype(np.float32)


def test_identity_generator_returns_the_input_clipped_to_the_window():
    images = hu_images((2, 8, 12, 1))
    out = Translator(identity(), CT, CT)(images).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.clip(images, -160, 240), atol=1e-3)


def test_output_is_mapped_through_the_output_window():
    images = hu_images((1, 4, 4, 1))
    out = Translator(identity(), Window(-1000, 2000), Window(0, 1))(images).numpy()
    np.testing.assert_allclose(out, (images + 1000) / 2000, atol=1e-6)


def test_sizes_that_are_not_multiples_are_padded_with_the_window_low_end_and_cropped():
    images = hu_images((1, 9, 13, 1), seed=1)
    out = Translator(block_average(4), CT, CT, size_multiple=4)(images).numpy()

    windowed = (np.clip(images, -160, 240) + 160) / 200 - 1
    padded = np.pad(windowed, [(0, 0), (0, 3), (0, 3), (0, 0)], constant_values=-1.0)
    blocks = padded.reshape(1, 3, 4, 4, 4, 1).mean(axis=(2, 4))
    expected = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)[:, :9, :13]
    assert out.shape == (1, 9, 13, 1)
    np.testing.assert_allclose(out, (expected + 1) * 200 - 160, atol=1e-3)


def test_mixed_precision_generator_still_returns_float32():
    inputs = keras.Input((None, None, 1))
    generator = keras.Model(inputs, keras.layers.Conv2D(1, 1, dtype="mixed_bfloat16")(inputs))
    assert generator.output.dtype == "bfloat16"
    out = Translator(generator, CT, CT)(hu_images((1, 4, 4, 1)))
    assert out.dtype == "float32"


def test_wrong_channel_count_is_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"N x any x any x 3 .* got shape \(1, 4, 4, 1\)"):
        Translator(identity(channels=3), CT, CT)(hu_images((1, 4, 4, 1)))


def test_fixed_shape_generator_takes_only_its_shape():
    translator = Translator(identity(shape=(8, 8)), CT, CT, size_multiple=None)
    assert translator(hu_images((2, 8, 8, 1))).shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match=r"N x 8 x 8 x 1 .* got shape \(1, 16, 16, 1\)"):
        translator(hu_images((1, 16, 16, 1)))


def test_size_multiple_must_match_the_generator_kind():
    with pytest.raises(ValueError, match="size_multiple=None means a fixed input shape"):
        Translator(identity(), CT, CT, size_multiple=None)
    with pytest.raises(ValueError, match=r"fixed input shape .* use size_multiple=None"):
        Translator(identity(shape=(8, 8)), CT, CT, size_multiple=2)
    with pytest.raises(ValueError, match="size_multiple must be an int >= 1 or None, got 0"):
        Translator(identity(), CT, CT, size_multiple=0)


def test_from_generator_reads_the_size_multiple():
    generator = Generator((None, None, 1), 1, channels=(4, 8, 8), stem_kernel=3, up="transpose")
    assert Translator.from_generator(generator, CT, CT).size_multiple == 4
    assert Translator.from_generator(identity(shape=(8, 8)), CT, CT).size_multiple is None
    assert Translator.from_generator(identity(), CT, CT).size_multiple == 1


def test_shape_mismatch_explains_fixed_shapes():
    assert shape_mismatch((128, 128, 1), (64, 64, 1)) == (
        "the network takes 64 x 64 x 1 images (fixed shape), got 128 x 128 x 1"
    )
    assert shape_mismatch((9, 13, 2), (None, None, 1)) == (
        "the network takes 1-channel images, got 9 x 13 x 2"
    )


def test_translate_in_batches_batches_equal_shapes_only():
    calls = []

    def double(batch):
        calls.append(batch.shape)
        return batch * 2

    items = [("a", np.ones((4, 4, 1))), ("b", np.ones((6, 4, 1))), ("c", np.full((4, 4, 1), 3))]
    out = dict(translate_in_batches(double, items, batch_size=2))
    assert calls == [(2, 4, 4, 1), (1, 6, 4, 1)]
    assert {key: float(value.max()) for key, value in out.items()} == {"a": 2, "b": 2, "c": 6}
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        list(translate_in_batches(double, items, batch_size=0))


def test_translated_ct_keeps_bone_above_1000_hu_with_the_default_windows(tmp_path):
    from pydicom.data import get_testdata_file

    from kerastrans.data import write_dataset
    from kerastrans.data.examples import folder_examples
    from kerastrans.io import read_image
    from kerastrans.training import default_windows

    path = get_testdata_file("693_UNCI.dcm")  # head CT, bone up to 1812 HU
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "693_UNCI.dcm").symlink_to(path)
    write_dataset(tmp_path / "ds", {"train": folder_examples(tmp_path / "scan")}, progress=False)
    hu = read_image(path)
    output = Translator(identity(), *default_windows(tmp_path / "ds"))(hu[np.newaxis]).numpy()
    assert hu.max() == 1812 and np.count_nonzero(hu > 1000) == 2203
    np.testing.assert_allclose(output.max(), 1812, atol=0.5)
    np.testing.assert_allclose(output[0], np.clip(hu, -1024, 3071), atol=0.5)
