"""2.5D models in `convert` and `evaluate`: the same neighbour stacks as the training pipeline."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from kerastrans.config import DataConfig, Window
from kerastrans.convert import convert
from kerastrans.data.examples import folder_examples
from kerastrans.data.pipeline import make_dataset
from kerastrans.data.records import write_dataset
from kerastrans.data.window import unwindow
from kerastrans.evaluate import evaluate
from kerastrans.io import read_image

WIDE = Window(-3000, 6000)  # no clipping
#: File name -> position along the slice normal: file-name order is not slice order.
POSITIONS = {"IM0.dcm": 10.0, "IM1.dcm": 0.0, "IM2.dcm": 15.0, "IM3.dcm": 5.0}


class Recording:
    """A 2.5D "model" (K = 1) that records the stacks it gets and returns the centre slice."""

    input_window = output_window = WIDE
    input_shape = (None, None, 3)
    neighbours = 1

    def __init__(self):
        self.stacks = []

    def __call__(self, images):
        images = np.asarray(images)
        self.stacks.extend(images)
        return images[..., 1:2]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Four CT slices of one series, each slice's HU shifted by 100 x its rank in space."""
    root = tmp_path_factory.mktemp("stack") / "in"
    root.mkdir()
    for name, z in POSITIONS.items():
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.ImagePositionPatient = [0.0, 0.0, z]
        dataset.RescaleIntercept = float(dataset.RescaleIntercept) + 20 * z
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.save_as(root / name)
    return root


@pytest.fixture(scope="module")
def training_stacks(series, tmp_path_factory):
    """The input stacks of the training pipeline (``data.neighbours=1``), in HU."""
    path = tmp_path_factory.mktemp("stack") / "ds"
    write_dataset(path, {"test": list(folder_examples(series))}, progress=False)
    config = DataConfig(input_window=WIDE, target_window=WIDE, neighbours=1, batch_size=1)
    batches = make_dataset(path, "test", config, training=False)
    stacks = [unwindow(inputs[0], WIDE).numpy() for inputs, _ in batches]
    return path, stacks


def test_convert_stacks_neighbours_in_slice_order_like_training(series, training_stacks, tmp_path):
    _, expected = training_stacks
    model = Recording()
    summary = convert(model, series, tmp_path / "out", batch_size=3, progress=False)
    assert (summary.slices, summary.errors) == (4, ())
    assert len(model.stacks) == len(expected) == 4
    for got, want in zip(model.stacks, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=0.01)
    # the stacks run in space (z = 0, 5, 10, 15), the ends repeat the edge slice
    by_z = sorted(POSITIONS, key=POSITIONS.get)
    slices = {name: read_image(series / name)[..., 0] for name in by_z}
    np.testing.assert_array_equal(model.stacks[0][..., 0], slices[by_z[0]])
    np.testing.assert_array_equal(model.stacks[0][..., 2], slices[by_z[1]])
    np.testing.assert_array_equal(model.stacks[3][..., 2], slices[by_z[3]])
    for name in POSITIONS:  # each output is its own slice (the centre channel)
        np.testing.assert_allclose(
            read_image(tmp_path / "out" / name)[..., 0], slices[name], atol=0.5
        )


def test_evaluate_stacks_neighbours_like_training(training_stacks):
    path, expected = training_stacks
    model = Recording()
    report = evaluate(model, path, baseline="input", progress=False)
    for got, want in zip(model.stacks, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=0.01)
    assert report.means()["model"]["mae"] == 0.0  # the centre slice is the target


def test_a_stack_that_does_not_fit_the_channels_is_refused(series, tmp_path):
    class Wrong(Recording):
        neighbours = 2  # 3 channels cannot hold 5 slices

    with pytest.raises(
        ValueError, match="neighbours=2 takes a multiple of 5 input channels, got 3"
    ):
        convert(Wrong(), series, tmp_path / "out", progress=False)


def test_translator_records_its_neighbours_and_the_export_keeps_them(tmp_path):
    import keras

    from kerastrans.export import export_translator, load_exported
    from kerastrans.translate import Translator

    net = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1)])
    with pytest.raises(ValueError, match="neighbours=2 needs input channels divisible by 5, got 3"):
        Translator(net, WIDE, WIDE, neighbours=2)
    export_translator(Translator(net, WIDE, WIDE, size_multiple=4, neighbours=1), tmp_path / "m")
    exported = load_exported(tmp_path / "m")
    assert (exported.neighbours, exported.size_multiple) == (1, 4)
