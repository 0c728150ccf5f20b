"""Tests of `kerastrans.export`: a SavedModel that speaks physical units, served without us."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastrans.config import Window
from kerastrans.errors import DataError
from kerastrans.export import (
    export_translator,
    find_saved_model,
    load_exported,
    read_export_info,
)
from kerastrans.nets import Generator
from kerastrans.translate import Translator

CT = Window.from_center_width(40, 400)  # [-160, 240] HU

#: Loads a SavedModel in a process where ``import kerastrans`` fails, and runs it.
_LOAD_WITHOUT_KERASTRANS = """
import sys
import importlib.abc


class NoKerastrans(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "kerastrans" or name.startswith("kerastrans."):
            raise ImportError("kerastrans is not installed here")
        return None


sys.meta_path.insert(0, NoKerastrans())
import numpy as np
import tensorflow as tf

try:
    import kerastrans  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("kerastrans was importable")
model_dir, images, out = sys.argv[1:]
serve = tf.saved_model.load(model_dir).signatures["serving_default"]
np.save(out, serve(images=tf.constant(np.load(images)))["output"].numpy())
"""


class NeedsStaticSize(keras.layers.Layer):
    """A layer that, like some Keras layers, cannot run on unknown image sizes."""

    def call(self, inputs):
        if inputs.shape[1] is None:
            raise ValueError("needs a static height")
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class CallsPython(keras.layers.Layer):
    def call(self, inputs):
        output = tf.numpy_function(np.negative, [inputs], tf.float32)
        return tf.ensure_shape(output, inputs.shape)


def wrap(layer):
    inputs = keras.Input((None, None, 1))
    return keras.Model(inputs, layer(inputs))


def hu_images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1000, 1000, shape).astype(np.float32)


@pytest.fixture(scope="module")
def generator():
    """A tiny U-Net (2 levels: sizes must be multiples of 2), random weights."""
    return Generator((None, None, 1), 1, channels=(4, 8), stem_kernel=3, up="transpose", seed=3)


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    translator = Translator.from_generator(generator, Window(-1000, 2000), CT)
    model_dir = tmp_path_factory.mktemp("export") / "ldct"
    return translator, export_translator(translator, model_dir)


def test_export_writes_a_numbered_version_folder(exported):
    _, folder = exported
    assert folder.name == "1"
    assert (folder / "saved_model.pb").is_file()
    assert find_saved_model(folder.parent) == folder
    assert folder.stat().st_mode & 0o755 == 0o755  # readable by a server running as another user
    assert [p.name for p in folder.parent.iterdir()] == ["1"]  # no temporary folder left


def test_serving_signature_takes_dynamic_float32_batches(exported):
    _, folder = exported
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, None, None, 1]
    assert spec.dtype == tf.float32
    assert signature.structured_outputs["output"].dtype == tf.float32


def test_saved_model_cli_shows_the_signature(exported):
    _, folder = exported
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir"]
    shown = subprocess.run(
        [*cli, str(folder), "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "inputs['images'] tensor_info:" in shown
    assert "shape: (-1, -1, -1, 1)" in shown
    assert "outputs['output'] tensor_info:" in shown


def test_saved_model_runs_without_kerastrans_and_matches_the_translator(exported, tmp_path):
    translator, folder = exported
    images = hu_images((3, 10, 14, 1))
    np.save(tmp_path / "images.npy", images)
    command = [sys.executable, "-c", _LOAD_WITHOUT_KERASTRANS, str(folder)]
    subprocess.run(
        [*command, str(tmp_path / "images.npy"), str(tmp_path / "out.npy")],
        check=True,
        capture_output=True,
    )
    served = np.load(tmp_path / "out.npy")
    expected = translator(images).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-3)
    # ... and what model.predict gives on the windowed input, mapped back to HU.
    predicted = translator.generator.predict((images + 1000) / 1000 - 1, verbose=0)
    np.testing.assert_allclose(served, (predicted + 1) * 200 - 160, atol=1e-2)


def test_exported_graph_windows_pads_and_crops(tmp_path):
    average = keras.Sequential(
        [
            keras.Input((None, None, 1)),
            keras.layers.AveragePooling2D(4),
            keras.layers.UpSampling2D(4),
        ]
    )
    translator = Translator(average, CT, CT, size_multiple=4)
    exported = load_exported(export_translator(translator, tmp_path / "m"))
    images = hu_images((2, 9, 13, 1))
    out = exported(images).numpy()
    assert out.shape == (2, 9, 13, 1)
    np.testing.assert_allclose(out, translator(images).numpy(), atol=1e-3)

    identity = Translator(wrap(keras.layers.Identity()), CT, CT)
    exported = load_exported(export_translator(identity, tmp_path / "identity"))
    np.testing.assert_allclose(exported(images).numpy(), np.clip(images, -160, 240), atol=1e-3)


def test_mixed_precision_generator_exports_float32_at_both_ends(tmp_path):
    generator = wrap(keras.layers.Conv2D(1, 1, dtype="mixed_bfloat16"))
    folder = export_translator(Translator(generator, CT, CT), tmp_path / "m")
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].dtype == tf.float32
    out = signature(images=tf.constant(hu_images((1, 4, 4, 1))))["output"]
    assert out.dtype == tf.float32


def test_export_records_windows_and_loads_as_a_translator(exported):
    _, folder = exported
    info = read_export_info(folder.parent)
    assert info["input_window"] == {"base": -1000.0, "range": 2000.0}
    assert info["size_multiple"] == 2
    loaded = load_exported(folder.parent)
    assert (loaded.input_window, loaded.output_window) == (Window(-1000, 2000), CT)
    assert loaded.input_shape == (None, None, 1)
    with pytest.raises(ValueError, match=r"N x any x any x 1 .* got shape \(1, 4, 4, 3\)"):
        loaded(hu_images((1, 4, 4, 3)))


def test_reexport_is_an_error_unless_overwrite(tmp_path):
    translator = Translator(wrap(keras.layers.Identity()), CT, CT)
    folder = export_translator(translator, tmp_path / "m")
    with pytest.raises(FileExistsError, match="already exists"):
        export_translator(translator, tmp_path / "m")
    other = Translator(wrap(keras.layers.Identity()), CT, Window(0, 1))
    assert export_translator(other, tmp_path / "m", overwrite=True) == folder
    assert read_export_info(folder)["output_window"] == {"base": 0.0, "range": 1.0}
    assert export_translator(other, tmp_path / "m", version=2).name == "2"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
    assert find_saved_model(tmp_path / "m").name == "2"


def test_generator_that_needs_static_sizes_is_exported_with_a_fixed_size(tmp_path):
    translator = Translator(wrap(NeedsStaticSize()), CT, CT)
    with pytest.raises(ValueError, match=r"unknown height/width .*\(--image-size\)"):
        export_translator(translator, tmp_path / "m")
    assert not (tmp_path / "m" / "1").exists()
    loaded = load_exported(export_translator(translator, tmp_path / "m", image_size=(6, 10)))
    assert loaded.input_shape == (6, 10, 1)
    assert loaded(hu_images((2, 6, 10, 1))).shape == (2, 6, 10, 1)


def test_generator_that_calls_python_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"calls Python \(PyFunc ops"):
        export_translator(Translator(wrap(CallsPython()), CT, CT), tmp_path / "m")


def test_export_arguments_are_checked(tmp_path):
    translator = Translator(wrap(keras.layers.Identity()), CT, CT)
    with pytest.raises(ValueError, match="version must be an int >= 1, got 0"):
        export_translator(translator, tmp_path / "m", version=0)
    with pytest.raises(ValueError, match=r"image_size must be positive .* got \(0, 4\)"):
        export_translator(translator, tmp_path / "m", image_size=(0, 4))


def test_loading_a_folder_without_saved_model_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no SavedModel"):
        load_exported(tmp_path)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "1" / "assets.extra").mkdir()
    (tmp_path / "1" / "assets.extra" / "kerastrans.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match=r"kerastrans\.json: cannot read"):
        read_export_info(tmp_path)
