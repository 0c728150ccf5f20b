"""Tests of ``kerastrans export``, ``convert`` and ``evaluate`` on the command line."""

import shutil

import keras
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from kerastrans.cli.main import main
from kerastrans.config import Config, DataConfig, GeneratorConfig, ModelConfig, Window, save_config
from kerastrans.data.records import write_dataset
from kerastrans.evaluate import evaluate
from kerastrans.export import export_translator, load_exported, read_export_info
from kerastrans.translate import Translator

CT = Window.from_center_width(40, 400)  # [-160, 240] HU


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An exported identity model with the CT window: HU in, HU clipped to the window out."""
    identity = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
    folder = tmp_path_factory.mktemp("cli") / "model"
    export_translator(Translator(identity, CT, CT, size_multiple=4), folder)
    return folder


@pytest.fixture
def images(tmp_path):
    """``ct/slice.dcm`` (real CT), ``odd.npy`` (9 x 13) and an unreadable ``bad.npy``."""
    (tmp_path / "in" / "ct").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "in" / "ct" / "slice.dcm")
    values = np.random.default_rng(0).uniform(-500, 500, (9, 13)).astype(np.float32)
    np.save(tmp_path / "in" / "odd.npy", values)
    return tmp_path / "in"


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if "kerastrans" in line]


def test_convert_writes_dicom_and_prints_a_summary(model_dir, images, tmp_path, capsys):
    code = main(["convert", str(model_dir), str(images), str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "2 files, 2 slices" in out
    assert "slices/s" in out
    derived = pydicom.dcmread(tmp_path / "out" / "ct" / "slice.dcm")
    source = pydicom.dcmread(images / "ct" / "slice.dcm")
    assert derived.SeriesInstanceUID != source.SeriesInstanceUID
    expected = np.clip(apply_modality_lut(source.pixel_array, source), -160, 240)
    np.testing.assert_allclose(apply_modality_lut(derived.pixel_array, derived), expected, atol=0.5)
    odd = np.load(tmp_path / "out" / "odd.npy")
    np.testing.assert_allclose(odd[..., 0], np.clip(np.load(images / "odd.npy"), -160, 240),
                               atol=1e-3)  # fmt: skip


def test_convert_reports_unreadable_files_and_exits_1(model_dir, images, tmp_path, capsys):
    (images / "bad.npy").write_bytes(b"not numpy")
    out_dir = tmp_path / "out"
    code = main(["convert", str(model_dir), str(images), str(out_dir), "--format", "npy"])
    assert code == 1
    [line] = error_lines(capsys)  # printed above the progress bar
    assert f"kerastrans convert: {images / 'bad.npy'}: cannot load NPY array" in line
    assert sorted(p.name for p in out_dir.rglob("*.npy")) == ["odd.npy", "slice.npy"]


def test_evaluate_prints_the_metrics_of_the_library_and_writes_a_report(model_dir, tmp_path,
                                                                         capsys):  # fmt: skip
    rng = np.random.default_rng(1)
    targets = rng.normal(0, 80, (3, 8, 8, 1)).astype(np.float32)
    examples = [
        {"input": t + rng.normal(0, 20, t.shape).astype(np.float32), "target": t, "id": f"s{i}"}
        for i, t in enumerate(targets)
    ]
    write_dataset(tmp_path / "ds", {"test": examples}, progress=False)
    args = ["evaluate", str(model_dir), str(tmp_path / "ds"), "--out", str(tmp_path / "report")]
    assert main([*args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    expected = evaluate(load_exported(model_dir), tmp_path / "ds", progress=False)
    assert expected.to_markdown() in printed
    csv_text = (tmp_path / "report" / "metrics.csv").read_text(encoding="utf-8")
    assert csv_text == expected.to_csv()
    assert (tmp_path / "report" / "samples.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "m", "i", "o", "--batch-size", "0"], "--batch-size: must be >= 1, got '0'"),
        (["convert", "m", "i", "o", "--format", "tiff"], "--format: invalid choice: 'tiff'"),
        (["convert", "m", "i"], "the following arguments are required: OUTPUT_DIR"),
        (["export", "run"], "the following arguments are required: --out"),
        (["export", "run", "--out", "m", "--direction", "AB"], "--direction: invalid choice"),
        (["export", "run", "--out", "m", "--image-size", "0", "4"], "--image-size: must be >= 1"),
        (["evaluate", "m", "d", "--data-range", "-1"], "must be a number > 0 or 'window'"),
        (["evaluate", "m", "d", "--baseline", "tv"], "--baseline: invalid choice: 'tv'"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert message in line


def test_convert_output_inside_input_is_a_usage_error(model_dir, images, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(model_dir), str(images), str(images / "out")])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "output_dir must not be inside the input folder" in line


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as ``kerastrans fit`` leaves it: config.yaml + model.keras (untrained)."""
    from kerastrans.training import build_model

    generator = GeneratorConfig(depth=2, base_channels=4, max_channels=8, up="transpose")
    config = Config(
        data=DataConfig(input_window=Window(-1000, 2000), target_window=CT),
        model=ModelConfig(input_shape=(16, 16, 1), output_shape=(16, 16, 1), generator=generator),
    )
    folder = tmp_path_factory.mktemp("cli") / "run"
    folder.mkdir()
    build_model(config).save(folder / "model.keras")
    save_config(config, folder / "config.yaml")
    return folder


def test_export_of_a_run_serves_what_convert_of_the_run_writes(run_dir, images, tmp_path, capsys):
    assert main(["export", str(run_dir), "--out", str(tmp_path / "model")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'model' / '1'}" in printed
    assert f"--model_base_path={tmp_path / 'model'}" in printed
    info = read_export_info(tmp_path / "model")
    assert (info["direction"], info["size_multiple"]) == ("AtoB", 2)
    assert info["output_window"] == {"base": -160.0, "range": 400.0}

    odd = str(images / "odd.npy")
    assert main(["convert", str(run_dir), odd, str(tmp_path / "from_run"), "--no-progress"]) == 0
    assert main(["convert", str(tmp_path / "model"), odd, str(tmp_path / "from_export")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "from_export" / "odd.npy"),
                               np.load(tmp_path / "from_run" / "odd.npy"), atol=1e-3)  # fmt: skip

    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_dir), "--out", str(tmp_path / "model"), "--direction", "BtoA"])
    assert exit_info.value.code == 2
    [line] = error_lines(capsys)
    assert "direction 'BtoA' needs a CycleGAN run" in line
    assert main(["export", str(run_dir), "--out", str(tmp_path / "model")]) == 1
    [line] = error_lines(capsys)
    assert line.endswith("already exists (--overwrite replaces it)")


def test_missing_model_is_a_one_line_data_error(images, tmp_path, capsys):
    code = main(["convert", str(tmp_path / "nothing"), str(images), str(tmp_path / "out")])
    assert code == 1
    [line] = error_lines(capsys)
    assert f"{tmp_path / 'nothing'}: not a run directory" in line
