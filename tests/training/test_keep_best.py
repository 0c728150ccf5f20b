"""``training.keep_best``: the model of the best validation epoch, kept and loaded by `load_run`."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from kerastrans.config import TrainingConfig
from kerastrans.data import write_dataset
from kerastrans.errors import DataError
from kerastrans.runs import load_run
from kerastrans.training import ConfigError, fit
from kerastrans.training.callbacks import BestModel, higher_is_better, read_best


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile()
    return model


def _epochs(callback: BestModel, model: keras.Model, values: list[float], metric: str) -> None:
    """Run the callback's epoch ends with ``values``; the model's bias records the epoch."""
    callback.set_model(model)
    for epoch, value in enumerate(values):
        model.layers[0].bias.assign([float(epoch + 1)])
        callback.on_epoch_end(epoch, {"loss": 0.0, metric: value})


def _saved_epoch(run_dir) -> int:
    """The epoch whose model the best file holds (its bias, see `_epochs`)."""
    best = keras.saving.load_model(run_dir / read_best(run_dir)["file"])
    return int(best.layers[0].bias.numpy()[0])


@pytest.mark.parametrize(
    ("metric", "values", "best_epoch"),
    [
        ("val_psnr", [10.0, 12.0, 11.0, float("nan"), 12.0], 2),  # ties and NaN do not replace
        ("val_ssim", [0.5, 0.4, 0.7], 3),
        ("val_l1", [0.5, 0.3, 0.4], 2),  # a loss: lower is better
    ],
)
def test_the_best_epoch_is_kept_in_one_file_named_by_the_record(
    tmp_path, metric, values, best_epoch
):
    _epochs(BestModel(tmp_path, metric), _tiny_model(), values, metric)
    record = read_best(tmp_path)
    assert record["epoch"] == best_epoch
    assert record["metric"] == metric
    assert record["value"] == values[best_epoch - 1]
    assert [path.name for path in tmp_path.glob("best-epoch_*.keras")] == [record["file"]]
    assert record["file"] == f"best-epoch_{best_epoch:04d}.keras"
    assert _saved_epoch(tmp_path) == best_epoch


def test_a_resumed_run_keeps_its_best_against_worse_epochs(tmp_path):
    _epochs(BestModel(tmp_path, "val_psnr"), _tiny_model(), [20.0, 25.0], "val_psnr")
    resumed = BestModel(tmp_path, "val_psnr")  # a new process reads best.json back
    assert resumed.best == 25.0
    model = _tiny_model()
    resumed.set_model(model)
    model.layers[0].bias.assign([3.0])
    resumed.on_epoch_end(2, {"val_psnr": 24.0})
    assert read_best(tmp_path)["epoch"] == 2 and _saved_epoch(tmp_path) == 2
    model.layers[0].bias.assign([4.0])
    resumed.on_epoch_end(3, {"val_psnr": 26.0})
    assert read_best(tmp_path)["epoch"] == 4 and _saved_epoch(tmp_path) == 4


def test_a_metric_missing_from_the_logs_is_named_with_those_found(tmp_path):
    callback = BestModel(tmp_path, "val_psnr")
    callback.set_model(_tiny_model())
    with pytest.raises(ValueError, match=r"'val_psnr' is not .*found: val_l1, val_ssim"):
        callback.on_epoch_end(0, {"loss": 1.0, "val_l1": 0.2, "val_ssim": 0.5})


def test_psnr_and_ssim_count_higher_as_better_and_losses_lower():
    assert higher_is_better("val_psnr") and higher_is_better("val_ssim_a2b")
    assert not higher_is_better("val_l1") and not higher_is_better("val_cycle")


def test_config_refuses_a_name_that_is_not_a_validation_metric():
    with pytest.raises(ValueError, match=r"training\.keep_best must name a validation metric"):
        TrainingConfig(keep_best="psnr")


def _history(run_dir) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_fit_keeps_the_best_epoch_and_load_run_uses_it(paired_dataset, tiny_config, tmp_path):
    config = tiny_config(paired_dataset, epochs=3, keep_best="val_psnr")
    run_dir = tmp_path / "run"
    fit(config, run_dir, strategy="default", progress=False)
    psnr = [float(row["val_psnr"]) for row in _history(run_dir)]
    record = json.loads((run_dir / "best.json").read_text())
    assert record["epoch"] == 1 + int(np.argmax(psnr))
    assert record["value"] == pytest.approx(max(psnr))
    best, latest = load_run(run_dir), load_run(run_dir, which="latest")
    assert best.source.startswith(f"{record['file']} (best val_psnr")
    assert latest.source == "model.keras (latest)"
    expected = keras.saving.load_model(run_dir / record["file"]).generator.get_weights()
    for got, want in zip(best.model.generator.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    if record["epoch"] != 3:  # the latest model is another one
        differ = [
            not np.array_equal(a, b)
            for a, b in zip(
                best.model.generator.get_weights(),
                latest.model.generator.get_weights(),
                strict=True,
            )
        ]
        assert any(differ)


def test_fit_refuses_a_metric_the_model_does_not_report(paired_dataset, tiny_config, tmp_path):
    config = tiny_config(paired_dataset, keep_best="val_accuracy")
    with pytest.raises(ConfigError, match=r"'val_accuracy' is not a metric .*val_psnr"):
        fit(config, tmp_path / "run", strategy="default", progress=False)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_fit_refuses_keep_best_without_validation_data(tiny_config, tmp_path):
    folder = tmp_path / "train-only"
    image = np.zeros((16, 16, 1), np.float32)
    pairs = [{"input": image + i, "target": image, "id": f"pair{i}"} for i in range(4)]
    write_dataset(folder, {"train": pairs}, progress=False)
    config = tiny_config(folder, keep_best="val_psnr")
    with pytest.raises(ConfigError, match="needs validation data, and this run has none"):
        fit(config, tmp_path / "run", strategy="default", progress=False)


def test_load_run_refuses_a_best_model_that_is_not_there(paired_dataset, tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    fit(tiny_config(paired_dataset, epochs=1), run_dir, strategy="default", progress=False)
    with pytest.raises(DataError, match="keeps no best model"):
        load_run(run_dir, which="best")
    record = {"epoch": 1, "metric": "val_psnr", "value": 1.0, "file": "best-epoch_0001.keras"}
    (run_dir / "best.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match=r"best-epoch_0001\.keras: named by best\.json but missing"):
        load_run(run_dir, which="best")


@pytest.mark.parametrize(
    ("text", "problem"),
    [('{"epoch": 3, "metric": "val_ps', "not a readable best-model record"),
     ('{"epoch": 3, "metric": "val_psnr"}', r"not a best-model record \(missing file, value\)"),
     ("5", "not a readable best-model record")],
)  # fmt: skip
def test_a_damaged_best_record_is_named_in_one_line(tmp_path, text, problem):
    (tmp_path / "best.json").write_text(text)
    with pytest.raises(DataError, match=rf"best\.json: {problem}"):
        read_best(tmp_path)
