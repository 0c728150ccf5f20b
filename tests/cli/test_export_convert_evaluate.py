"""Tests of ``kerastrans export``, ``convert`` and ``evaluate`` on the command line."""

import csv
import os
import shutil
from pathlib import Path

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


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder in which files cannot be created (root ignores permissions: /sys/fs then)."""
    if os.geteuid() == 0:
        return Path("/sys/fs")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    """An untrained CycleGAN run between two HU windows, as ``fit`` leaves it."""
    from kerastrans.training import build_model

    config = Config(
        data=DataConfig(input_window=Window(-1000, 2000), target_window=CT),
        model=ModelConfig(kind="cyclegan", input_shape=(16, 16, 1), output_shape=(16, 16, 1),
                          generator={"depth": 2, "base_channels": 4, "residual_blocks": 1},
                          discriminator={"base_channels": 4, "depth": 1}),
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("cli") / "cyclegan"
    folder.mkdir()
    build_model(config).save(folder / "model.keras")
    save_config(config, folder / "config.yaml")
    return folder


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """A paired dataset of 3 images of 16 x 16: inputs (domain A) around -500, targets around 0."""
    rng = np.random.default_rng(2)
    examples = [
        {"input": rng.normal(-500, 200, (16, 16, 1)).astype(np.float32),
         "target": rng.normal(0, 80, (16, 16, 1)).astype(np.float32), "id": f"s{i}"}
        for i in range(3)
    ]  # fmt: skip
    folder = tmp_path_factory.mktemp("cli") / "paired"
    write_dataset(folder, {"test": examples}, progress=False)
    return folder, examples


def test_saved_model_refuses_the_direction_it_does_not_hold(model_dir, images, tmp_path, capsys):
    assert read_export_info(model_dir)["direction"] == "AtoB"
    out = tmp_path / "out"
    args = ["convert", str(model_dir), str(images), str(out), "--direction", "BtoA"]
    assert main(args) == 1
    [line] = error_lines(capsys)
    assert line == (
        f"kerastrans convert: error: {model_dir / '1'}: holds the AtoB direction only, "
        "not BtoA (export the run with --direction BtoA)"
    )
    assert not out.exists()
    assert main(["evaluate", str(model_dir), str(images), "--direction", "BtoA"]) == 1
    [line] = error_lines(capsys)
    assert "holds the AtoB direction only, not BtoA" in line


def test_cyclegan_btoa_feeds_domain_b_and_scores_against_domain_a(cyclegan_run, paired, tmp_path,
                                                                   capsys):  # fmt: skip
    from kerastrans.metrics import METRICS, mae, psnr, rmse, ssim
    from kerastrans.runs import load_run

    dataset, examples = paired
    backward = load_run(cyclegan_run).translator("BtoA")
    targets = np.stack([example["target"] for example in examples])
    outputs = backward(targets).numpy()
    expected = [[f(o, e["input"]) for f in (psnr, ssim, rmse, mae)]
                for o, e in zip(outputs, examples, strict=True)]  # fmt: skip

    report = tmp_path / "report"
    args = ["evaluate", str(cyclegan_run), str(dataset), "--direction", "BtoA", "--no-progress"]
    assert main([*args, "--out", str(report)]) == 0
    with open(report / "metrics.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[:-1]
    got = [[float(row[f"model_{m}"]) for m in METRICS] for row in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-4)

    model = tmp_path / "model"
    assert main(["export", str(cyclegan_run), "--out", str(model), "--direction", "BtoA"]) == 0
    assert read_export_info(model)["direction"] == "BtoA"
    capsys.readouterr()
    assert main(["evaluate", str(model), str(dataset), "--no-progress"]) == 1
    [line] = error_lines(capsys)
    assert line.endswith("holds the BtoA direction only, not AtoB (export the run with "
                         "--direction AtoB)")  # fmt: skip
    assert main([*args[:1], str(model), *args[2:], "--out", str(tmp_path / "r2")]) == 0
    with open(tmp_path / "r2" / "metrics.csv", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[:-1]
    got = [[float(row[f"model_{m}"]) for m in METRICS] for row in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_a_model_folder_of_versions_uses_the_highest_and_says_so(images, tmp_path, capsys):
    identity = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
    wide = Window(-1000, 2000)
    export_translator(Translator(identity, CT, CT), tmp_path / "model", version=1)
    export_translator(Translator(identity, wide, wide), tmp_path / "model", version=2)
    odd = str(images / "odd.npy")
    source = np.load(images / "odd.npy")

    assert main(["convert", str(tmp_path / "model"), odd, str(tmp_path / "v2")]) == 0
    printed = capsys.readouterr().out
    assert f"model: {tmp_path / 'model' / '2'}, the highest of versions 1, 2" in printed
    np.testing.assert_allclose(np.load(tmp_path / "v2" / "odd.npy")[..., 0], source, atol=1e-3)

    args = ["convert", str(tmp_path / "model"), odd, str(tmp_path / "v1"), "--version", "1"]
    assert main(args) == 0
    assert "highest" not in capsys.readouterr().out
    np.testing.assert_allclose(np.load(tmp_path / "v1" / "odd.npy")[..., 0],
                               np.clip(source, -160, 240), atol=1e-3)  # fmt: skip

    args = ["convert", str(tmp_path / "model"), odd, str(tmp_path / "v3"), "--version", "3"]
    assert main(args) == 1
    [line] = error_lines(capsys)
    assert line == (
        f"kerastrans convert: error: {tmp_path / 'model'}: no SavedModel version 3 (versions: 1, 2)"
    )


def test_keras_files_that_are_not_kerastrans_models_are_one_line_errors(
    run_dir, images, tmp_path, capsys
):
    plain = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Identity()])
    plain.save(tmp_path / "plain.keras")
    odd = str(images / "odd.npy")
    assert main(["convert", str(tmp_path / "plain.keras"), odd, str(tmp_path / "o1")]) == 1
    [line] = error_lines(capsys)
    assert line.startswith(f"kerastrans convert: error: {tmp_path / 'plain.keras'}: is a Keras "
                           "file but not a kerastrans model or run")  # fmt: skip

    shutil.copytree(run_dir, tmp_path / "run")
    shutil.copy(tmp_path / "plain.keras", tmp_path / "run" / "model.keras")
    assert main(["convert", str(tmp_path / "run"), odd, str(tmp_path / "o2")]) == 1
    [line] = error_lines(capsys)
    assert line == (
        f"kerastrans convert: error: {tmp_path / 'run' / 'model.keras'}: is a Keras file but "
        "not a kerastrans model: a Sequential, while config.yaml names a Pix2Pix"
    )

    data = (run_dir / "model.keras").read_bytes()
    (tmp_path / "run" / "model.keras").write_bytes(data[: len(data) // 2])
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m")]) == 1
    [line] = error_lines(capsys)
    assert line == (
        f"kerastrans export: error: {tmp_path / 'run' / 'model.keras'}: truncated or corrupt "
        "(not a complete .keras zip archive)"
    )


def test_export_quotes_the_serve_path(run_dir, tmp_path, capsys):
    out = tmp_path / "my models" / "ldct"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert f"--model_base_path='{out}'" in capsys.readouterr().out


def test_outputs_that_cannot_be_written_are_one_line_errors(
    run_dir, model_dir, images, tmp_path, read_only_dir, capsys, monkeypatch
):
    import kerastrans.evaluate

    def must_not_run(*args, **kwargs):
        raise AssertionError("evaluate computed before checking its output")

    monkeypatch.setattr(kerastrans.evaluate, "evaluate", must_not_run)
    file = tmp_path / "file"
    file.write_text("x")
    blocked = read_only_dir / "kerastrans-out"
    for args, where in [
        (["export", str(run_dir), "--out", str(file)], f"{file}: is a file, not a folder"),
        (["export", str(run_dir), "--out", str(blocked)], f"{blocked}: cannot write here"),
        (["evaluate", str(model_dir), str(images), "--out", str(file)], f"{file}: is a file"),
        (["evaluate", str(model_dir), str(images), "--out", str(blocked)], f"{blocked}: cannot"),
        (["convert", str(model_dir), str(images), str(file)], f"{file}: is a file, not a folder"),
        (["convert", str(model_dir), str(images), str(blocked)], f"{blocked}: cannot write here"),
        (["convert", str(model_dir), str(images), str(file / "x")], f"{file / 'x'}: cannot create"),
    ]:
        assert main(args) == 1, args
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"kerastrans {args[0]}: error: {where}"), line
