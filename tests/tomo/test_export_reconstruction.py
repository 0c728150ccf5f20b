"""A sinogram -> image model with the TF ray transform serves without kerastrans, ODL, ASTRA."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastrans.config import Window
from kerastrans.export import export_translator, load_exported
from kerastrans.models.reconstruction import FBPUNetModel, LearnedPrimalDual
from kerastrans.tomo.geometry import GeometrySpec
from kerastrans.tomo.layer import RayTransformLayer
from kerastrans.translate import Translator

SPEC = GeometrySpec((32, 32), num_angles=12)
SINOGRAMS = Window(0.0, 40.0)  # line integrals of a phantom (mm x 1/mm)
IMAGES = Window(0.0, 1.0)

#: Runs a SavedModel where kerastrans, ODL and ASTRA cannot be imported.
_SERVE_WITHOUT_PHYSICS = """
import importlib.abc
import sys

BLOCKED = ("kerastrans", "odl", "astra")


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed here")
        return None


sys.meta_path.insert(0, Blocker())
for name in BLOCKED:
    sys.modules.pop(name, None)
import numpy as np
import tensorflow as tf

for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} was importable")
model_dir, inputs, out = sys.argv[1:]
serve = tf.saved_model.load(model_dir).signatures["serving_default"]
np.save(out, serve(images=tf.constant(np.load(inputs)))["output"].numpy())
loaded = [name for name in sys.modules if name.split(".")[0] in BLOCKED]
if loaded:
    raise SystemExit(f"loaded {loaded}")
"""


def fbp_network(backend):
    """FBP layer then a 3 x 3 convolution: sinograms in [-1, 1] to images in [-1, 1]."""
    inputs = keras.Input((*SPEC.sinogram_shape, 1))
    image = RayTransformLayer(SPEC, mode="fbp", backend=backend)((inputs + 1.0) * 20.0)
    outputs = keras.layers.Conv2D(1, 3, padding="same", name="refine")(image)
    model = keras.Model(inputs, outputs)
    model.get_layer("refine").set_weights(
        [np.full((3, 3, 1, 1), 2.0 / 9, np.float32), np.array([-1.0], np.float32)]
    )
    return model


def sinograms(count):
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 40.0, (count, *SPEC.sinogram_shape, 1)).astype(np.float32)


def test_sinogram_model_serves_without_kerastrans_odl_or_astra(tmp_path):
    model = fbp_network("tf")
    folder = export_translator(Translator.from_generator(model, SINOGRAMS, IMAGES), tmp_path / "m")
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    assert signature.structured_input_signature[1]["images"].shape.as_list() == [None, 12, 47, 1]
    batch = sinograms(3)
    served = serve_without_physics(folder, batch, tmp_path)
    assert served.shape == (3, 32, 32, 1)
    predicted = model.predict(batch / 20.0 - 1.0, verbose=0)  # the windowed input
    np.testing.assert_allclose(served, (predicted + 1.0) * 0.5, atol=1e-5)
    np.testing.assert_allclose(load_exported(folder)(batch).numpy(), served, atol=1e-6)


def test_odl_backend_model_is_refused_at_export(tmp_path):
    translator = Translator.from_generator(fbp_network("odl"), SINOGRAMS, IMAGES)
    with pytest.raises(ValueError, match="the generator calls Python"):
        export_translator(translator, tmp_path / "m")


def serve_without_physics(folder, batch, tmp_path):
    np.save(tmp_path / "in.npy", batch)
    command = [sys.executable, "-c", _SERVE_WITHOUT_PHYSICS, str(folder)]
    subprocess.run([*command, str(tmp_path / "in.npy"), str(tmp_path / "out.npy")], check=True)
    return np.load(tmp_path / "out.npy")


@pytest.mark.parametrize(
    ("model_class", "network"),
    [
        (LearnedPrimalDual, {"iterations": 2, "channels": 8, "initial": "fbp"}),
        (FBPUNetModel, {"unet": {"channels": [4, 8]}}),
    ],
    ids=["lpd", "fbp-unet"],
)
def test_reconstruction_model_exports_and_equals_predict(model_class, network, tmp_path):
    model = model_class(SPEC, SINOGRAMS, IMAGES, network, seed=1)
    model.compile()
    translator = Translator.from_generator(model.generator, SINOGRAMS, IMAGES)
    folder = export_translator(translator, tmp_path / "m")
    batch = sinograms(2)
    served = serve_without_physics(folder, batch, tmp_path)
    predicted = model.predict(batch / 20.0 - 1.0, verbose=0)
    np.testing.assert_allclose(served, (predicted + 1.0) * 0.5, atol=1e-5)
