"""Tests of `kerastrans.tiling`: tiled inference equals whole-image inference, batched."""

import logging

import keras
import numpy as np
import pytest

from kerastrans import tiling
from kerastrans.config import Window
from kerastrans.tiling import TiledTranslator, auto_tiled, tile_starts, tile_weights
from kerastrans.translate import Translator

CT = Window(-1000, 2000)


def convolutional(seed=0):
    """Two 3 x 3 convolutions: the receptive field reaches 2 pixels from each pixel."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((None, None, 1)),
            keras.layers.Conv2D(4, 3, padding="same", activation="tanh"),
            keras.layers.Conv2D(1, 3, padding="same", activation="tanh"),
        ]
    )


class Counting:
    """Wraps a translator and records the batch size of each call."""

    def __init__(self, translator):
        self.translator = translator
        self.input_shape = translator.input_shape
        self.calls = []

    def __call__(self, images):
        self.calls.append(len(images))
        return self.translator(images)


@pytest.fixture(scope="module")
def translator():
    return Translator(convolutional(), CT, CT)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return rng.uniform(-1000, 2000, (2, 40, 52, 1)).astype(np.float32)


def test_tiled_equals_whole_when_the_receptive_field_fits_a_quarter_overlap(translator, images):
    whole = translator(images).numpy()
    counting = Counting(translator)
    tiled = TiledTranslator(counting, tile=16, overlap=0.5, batch_size=7)(images)
    # overlap 8 pixels: weights are 0 on the 2 pixels next to a shared edge, the reach of the net
    np.testing.assert_allclose(tiled, whole, atol=0.05)  # HU, on a 3000 HU window
    tiles = 2 * len(tile_starts(40, 16, 0.5)) * len(tile_starts(52, 16, 0.5))
    assert sum(counting.calls) == tiles and max(counting.calls) == 7
    assert len(counting.calls) == -(-tiles // 7)


def test_without_the_zero_margin_tiles_would_differ(translator, images):
    """The check above is sharp: tiles that overlap too little to hide the reach differ."""
    whole = translator(images).numpy()
    tiled = TiledTranslator(translator, tile=16, overlap=0.125)(images)  # 2 pixels, margin 0
    assert np.abs(tiled - whole).max() > 1.0


def test_weights_of_two_neighbours_add_up_to_one():
    first, second = tile_weights(0, 16, 24, 8), tile_weights(8, 16, 24, 8)
    total = np.zeros(24, np.float32)
    total[:16] += first
    total[8:] += second
    np.testing.assert_allclose(total, 1, atol=1e-6)
    assert first[:8].tolist() == [1] * 8 and second[:2].tolist() == [0, 0]


def test_tile_starts_keep_the_size_multiple_and_end_at_the_edge():
    assert tile_starts(100, 32, 0.25, multiple=8) == [0, 24, 48, 68]
    assert tile_starts(32, 32, 0.25) == [0]


def test_bad_tiles_are_refused_with_the_reason(translator):
    multiple = Translator(convolutional(), CT, CT, size_multiple=8)
    with pytest.raises(
        ValueError, match="tile must be a multiple of the network's size multiple 8, got 20"
    ):
        TiledTranslator(multiple, tile=20)
    fixed = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Identity()])
    with pytest.raises(ValueError, match=r"takes 16 x 16 images \(fixed shape\), got tile=8"):
        TiledTranslator(Translator(fixed, CT, CT, size_multiple=None), tile=8)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1"):
        TiledTranslator(translator, tile=16, overlap=1)


def test_large_images_are_tiled_automatically_with_a_note(translator, images, monkeypatch, caplog):
    monkeypatch.setattr(tiling, "AUTO_TILE_PIXELS", 32 * 32)
    monkeypatch.setattr(tiling, "AUTO_TILE", 16)
    counting = Counting(translator)
    automatic = auto_tiled(counting, batch_size=64)
    with caplog.at_level(logging.WARNING, logger="kerastrans.tiling"):
        output = automatic(images)
        automatic(images)
    expected = TiledTranslator(translator, tile=16, overlap=tiling.DEFAULT_OVERLAP)(images)
    np.testing.assert_allclose(output, expected, atol=1e-4)
    assert counting.calls[0] > len(images)  # tiles, not images
    notes = [record.getMessage() for record in caplog.records]
    assert notes == [
        "images of 40 x 52 pixels are over the automatic tiling limit of 1024 pixels: "
        "translating them in 16 x 16 tiles with overlap 0.25 (--tile sets the size)"
    ]
    assert automatic.auto_tiled == 2
    small = images[:, :30, :30]
    np.testing.assert_array_equal(automatic(small), translator(small).numpy())


def test_cli_tile_option_reaches_the_model_and_checks_its_size_multiple(tmp_path, capsys):
    from kerastrans.cli.main import main
    from kerastrans.export import export_translator

    export_translator(Translator(convolutional(), CT, CT, size_multiple=4), tmp_path / "model")
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "big.npy", rng.uniform(-1000, 2000, (40, 52)).astype(np.float32))
    argv = ["convert", str(tmp_path / "model"), str(tmp_path / "in"), "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, str(tmp_path / "bad"), "--tile", "18"])
    assert exit_info.value.code == 2
    assert "tile must be a multiple of the network's size multiple 4, got 18" in (
        capsys.readouterr().err
    )
    assert main([*argv, str(tmp_path / "out"), "--tile", "16", "--overlap", "0.5"]) == 0
    whole = Translator(convolutional(), CT, CT)(
        np.load(tmp_path / "in" / "big.npy")[None, ..., None]
    )
    np.testing.assert_allclose(np.load(tmp_path / "out" / "big.npy"), whole[0], atol=0.05)
