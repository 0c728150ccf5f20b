"""Tests of `kerastrans.convert`: folders of real DICOM (and PNG/NPY) files in and out."""

import json
import shutil

import keras
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

import kerastrans.conversion
from kerastrans.config import Window
from kerastrans.convert import convert
from kerastrans.errors import DataError
from kerastrans.export import export_translator
from kerastrans.io import read_image, write_image
from kerastrans.translate import Translator

CT = Window.from_center_width(40, 400)  # [-160, 240] HU
POSITIONS = (-75.0, -70.0, -65.0)


def identity(shape=(None, None)):
    return keras.Sequential([keras.Input((*shape, 1)), keras.layers.Identity()])


def hu(dataset):
    return apply_modality_lut(dataset.pixel_array, dataset).astype(np.float64)


def read_all(folder):
    return {
        path.relative_to(folder).as_posix(): path for path in folder.rglob("*") if path.is_file()
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """``series/`` (3 CT slices of one series), ``mr/`` (10-frame MR), a PNG, NPYs, junk."""
    root = tmp_path_factory.mktemp("convert") / "in"
    (root / "series").mkdir(parents=True)
    for index, z in enumerate(POSITIONS):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.ImagePositionPatient = [-158.135803, -179.035797, z]
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.InstanceNumber = index + 1
        dataset.save_as(root / "series" / f"IM{index}.dcm")
    (root / "mr").mkdir()
    shutil.copy(get_testdata_file("emri_small.dcm"), root / "mr" / "emri.dcm")
    rng = np.random.default_rng(0)
    write_image(root / "photo.png", rng.integers(0, 300, (12, 10)).astype(np.float32))
    np.save(root / "odd.npy", rng.uniform(-500, 500, (9, 13)).astype(np.float32))
    np.save(root / "stack.npy", rng.uniform(-500, 500, (6, 16, 16)).astype(np.float32))
    (root / "readme.txt").write_text("not an image", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def translator():
    return Translator(identity(), CT, CT, size_multiple=4)


@pytest.fixture(scope="module")
def converted(source, translator, tmp_path_factory):
    out = tmp_path_factory.mktemp("convert") / "out"
    return convert(translator, source, out, batch_size=4, progress=False), out


def test_every_image_is_written_under_its_relative_path(converted):
    summary, out = converted
    stack = [f"stack_{i:04d}.npy" for i in range(6)]
    frames = [f"mr/emri_{i:04d}.dcm" for i in range(10)]
    expected = ["series/IM0.dcm", "series/IM1.dcm", "series/IM2.dcm", *frames, "photo.png"]
    manifest = "kerastrans-convert.json"
    assert sorted(read_all(out)) == sorted([*expected, "odd.npy", *stack, manifest])
    assert (summary.files, summary.slices, summary.errors) == (7, 21, ())
    assert summary.ignored == 1  # readme.txt
    assert "7 files, 21 slices" in summary.format()
    assert "slices/s" in summary.format()


def test_dicom_series_becomes_one_derived_series_with_clipped_hu(converted, source):
    _, out = converted
    outputs = [pydicom.dcmread(out / "series" / f"IM{i}.dcm") for i in range(3)]
    inputs = [pydicom.dcmread(source / "series" / f"IM{i}.dcm") for i in range(3)]
    series = {ds.SeriesInstanceUID for ds in outputs}
    assert len(series) == 1
    assert series.isdisjoint({ds.SeriesInstanceUID for ds in inputs})
    sop_uids = {ds.SOPInstanceUID for ds in outputs}
    assert len(sop_uids) == 3
    assert sop_uids.isdisjoint({ds.SOPInstanceUID for ds in inputs})
    for output, source_ds in zip(outputs, inputs, strict=True):
        assert output.file_meta.MediaStorageSOPInstanceUID == output.SOPInstanceUID
        assert output.ImagePositionPatient == source_ds.ImagePositionPatient
        assert output.PixelRepresentation == 1  # negative HU stored signed, not wrapped
        # CT -> CT keeps the units: the source's display window, or the model's if it has none.
        source_window = (source_ds.get("WindowCenter"), source_ds.get("WindowWidth"))
        expected_window = (40.0, 400.0) if source_window[0] is None else source_window
        assert (output.WindowCenter, output.WindowWidth) == expected_window
        expected = np.clip(hu(source_ds), -160, 240)
        assert expected.min() == -160  # the test data do reach below the window
        np.testing.assert_allclose(hu(output), expected, atol=float(output.RescaleSlope) / 2)


def test_multi_frame_dicom_gives_one_derived_slice_per_frame(converted, source):
    _, out = converted
    frames = hu(pydicom.dcmread(source / "mr" / "emri.dcm"))
    outputs = [pydicom.dcmread(out / "mr" / f"emri_{i:04d}.dcm") for i in range(10)]
    assert len({ds.SeriesInstanceUID for ds in outputs}) == 1
    assert [int(ds.InstanceNumber) for ds in outputs] == list(range(1, 11))
    for index, output in enumerate(outputs):
        assert "NumberOfFrames" not in output
        np.testing.assert_allclose(hu(output), np.clip(frames[index], -160, 240), atol=0.5)


def test_npy_outputs_are_exact_and_odd_sizes_are_cropped_back(converted, source, translator):
    _, out = converted
    odd = np.load(source / "odd.npy")
    result = np.load(out / "odd.npy")
    assert result.shape == (9, 13, 1)
    np.testing.assert_array_equal(result, translator(odd[None, ..., None]).numpy()[0])
    fifth = np.load(source / "stack.npy")[4]
    np.testing.assert_allclose(np.load(out / "stack_0004.npy")[..., 0], np.clip(fifth, -160, 240),
                               atol=1e-3)  # fmt: skip


def test_png_inputs_stay_16_bit_png(converted, source):
    _, out = converted
    with Image.open(out / "photo.png") as image:
        assert image.mode.startswith("I")  # 16-bit grayscale
    # Window [-160, 240]: intercept -160, so stored = value + 160.
    expected = np.clip(read_image(source / "photo.png"), -160, 240)
    np.testing.assert_allclose(read_image(out / "photo.png") - 160, expected, atol=0.5)


def test_png16_format_of_dicom_states_its_intercept(source, translator, tmp_path):
    summary = convert(
        translator, source / "series", tmp_path / "png", output_format="png16", progress=False
    )
    assert summary.png_intercept == -160
    assert "png16: value = stored + (-160)" in summary.format()
    expected = np.clip(hu(pydicom.dcmread(source / "series" / "IM1.dcm")), -160, 240)
    stored = read_image(tmp_path / "png" / "IM1.png")[..., 0]
    np.testing.assert_allclose(stored + summary.png_intercept, expected, atol=0.5)


def test_unreadable_files_are_reported_and_the_rest_converted(source, translator, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(source / "series", folder)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\1\2\3")
    (folder / "empty.png").write_bytes(b"")
    lines = []
    summary = convert(translator, folder, tmp_path / "out", progress=False, on_error=lines.append)
    assert summary.slices == 3
    assert lines == list(summary.errors)
    assert [line.split(":")[0] for line in lines] == [
        str(folder / "broken.dcm"),
        str(folder / "empty.png"),
    ]
    assert all("\n" not in line for line in lines)
    assert "2 failed" in summary.format()


def test_fixed_shape_model_refuses_other_sizes_with_the_shape_it_needs(source, tmp_path):
    translator = Translator(identity(shape=(64, 64)), CT, CT, size_multiple=None)
    summary = convert(translator, source / "series", tmp_path / "out", progress=False)
    assert summary.slices == 0
    assert len(summary.errors) == 3
    assert summary.errors[0].endswith(
        "IM0.dcm: the network takes 64 x 64 x 1 images (fixed shape), got 128 x 128 x 1"
    )
    summary = convert(translator, source / "mr", tmp_path / "mr", progress=False)
    assert summary.slices == 10  # emri_small is 64 x 64


def test_exported_saved_model_converts_like_its_translator(source, translator, tmp_path):
    folder = export_translator(translator, tmp_path / "model")
    summary = convert(tmp_path / "model", source / "odd.npy", tmp_path / "out", progress=False)
    assert summary.slices == 1
    assert folder.parent == tmp_path / "model"
    expected = translator(np.load(source / "odd.npy")[None, ..., None]).numpy()[0]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "odd.npy"), expected, atol=1e-4)


def test_output_folder_rules(source, translator, tmp_path):
    with pytest.raises(ValueError, match="output_dir must not be inside the input folder"):
        convert(translator, source, source / "out", progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.npy").write_bytes(b"")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        convert(translator, source / "odd.npy", tmp_path / "full", progress=False)
    summary = convert(
        translator, source / "odd.npy", tmp_path / "full", overwrite=True, progress=False
    )
    assert summary.slices == 1
    with pytest.raises(ValueError, match=r"output_format must be one of .* got 'tiff'"):
        convert(translator, source, tmp_path / "x", output_format="tiff")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        convert(translator, source, tmp_path / "x", batch_size=0)


def test_dicom_format_needs_dicom_sources(source, translator, tmp_path):
    summary = convert(
        translator, source / "odd.npy", tmp_path / "out", output_format="dcm", progress=False
    )
    assert summary.errors == (
        f"{source / 'odd.npy'}: DICOM output needs a DICOM source (its header)",
    )


def manifest_of(folder):
    return json.loads((folder / "kerastrans-convert.json").read_text(encoding="utf-8"))


def contents(folder):
    """Every output as values (HU for DICOM), by relative path; the manifest left out."""
    values = {}
    for name, path in read_all(folder).items():
        if name.endswith(".dcm"):
            values[name] = hu(pydicom.dcmread(path))
        elif name.endswith(".npy"):
            values[name] = np.load(path)
        elif name.endswith(".png"):
            values[name] = read_image(path)
    return values


def test_an_interrupted_conversion_is_marked_incomplete_and_resumes(
    converted, source, translator, tmp_path, monkeypatch
):
    _, uninterrupted = converted
    assert manifest_of(uninterrupted)["complete"] is True
    out = tmp_path / "out"
    write = kerastrans.conversion.Conversion._write
    calls = []

    def killed_at_the_eighth(self, *args):
        calls.append(args)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return write(self, *args)

    monkeypatch.setattr(kerastrans.conversion.Conversion, "_write", killed_at_the_eighth)
    with pytest.raises(KeyboardInterrupt):
        convert(translator, source, out, batch_size=4, progress=False)
    monkeypatch.undo()
    assert manifest_of(out)["complete"] is False
    partial = len(contents(out))
    assert 0 < partial < 21
    leftover = out / ".odd.npy.tmp-x1y2.npy"  # the temporary file of a killed write
    leftover.write_bytes(b"half a file")

    summary = convert(translator, source, out, batch_size=4, progress=False)
    assert (summary.skipped, summary.slices) == (partial, 21 - partial)
    assert f"resumed: {partial} slices already written were kept" in summary.format()
    assert manifest_of(out)["complete"] is True
    assert not leftover.exists()
    assert read_all(out).keys() == read_all(uninterrupted).keys()
    expected, got = contents(uninterrupted), contents(out)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    for folder, count in (("series", 3), ("mr", 10)):  # one derived series each, resumed or not
        datasets = [pydicom.dcmread(path) for path in (out / folder).glob("*.dcm")]
        assert len(datasets) == count
        assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
        assert len({ds.SOPInstanceUID for ds in datasets}) == count


def test_a_folder_holding_another_conversion_is_refused(source, translator, tmp_path):
    out = tmp_path / "out"
    convert(translator, source / "series", out, progress=False)
    with pytest.raises(DataError) as error:
        convert(translator, source / "series", out, output_format="npy", progress=False)
    assert str(error.value) == (
        f"{out}: holds the output of another conversion (format 'same', now 'npy'); "
        "use another folder, or --overwrite"
    )
    other = Translator(identity(), CT, Window(-1000, 2000), size_multiple=4)
    with pytest.raises(DataError, match=r"another conversion \(model 'sha256:"):
        convert(other, source / "series", out, progress=False)
    summary = convert(other, source / "series", out, overwrite=True, progress=False)
    assert (summary.slices, summary.skipped) == (3, 0)


def test_progress_bar_counts_the_slices_written(source, translator, tmp_path, capsys):
    convert(translator, source / "mr", tmp_path / "out", progress=True)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in final
    assert "slices=10" in final


@pytest.mark.parametrize(
    ("input_window", "expected"),
    [(CT, (50.0, 350.0)), (Window(-1024, 4095), (40.0, 400.0))],
    ids=["same-window-keeps-the-source-display", "other-window-shows-the-output-window"],
)
def test_derived_dicom_display_window(tmp_path, input_window, expected):
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.WindowCenter, dataset.WindowWidth = 50, 350
    (tmp_path / "in").mkdir()
    dataset.save_as(tmp_path / "in" / "IM0.dcm")
    translator = Translator(identity(), input_window, CT, size_multiple=4)
    convert(translator, tmp_path / "in", tmp_path / "out", progress=False)
    output = pydicom.dcmread(tmp_path / "out" / "IM0.dcm")
    assert (float(output.WindowCenter), float(output.WindowWidth)) == expected


def test_a_tiled_conversion_resumes_and_tiles_are_part_of_its_settings(tmp_path):
    from kerastrans.manifest import fingerprint
    from kerastrans.tiling import TiledTranslator

    translator = Translator(identity(), CT, CT, size_multiple=4)
    tiled = TiledTranslator(translator, 8, 0.25, 4)
    assert fingerprint(tiled) is not None
    assert fingerprint(tiled) != fingerprint(translator)
    assert fingerprint(tiled) != fingerprint(TiledTranslator(translator, 16, 0.25, 4))
