"""Filling the dataset-dependent fields of a config, and the default windows."""

import numpy as np
import pytest

from kerastrans import precision
from kerastrans.config import Config, DataConfig, ModelConfig, Window
from kerastrans.data import write_dataset
from kerastrans.errors import DataError
from kerastrans.training import default_windows, resolve_config
from kerastrans.training.resolve import CT_WINDOW


def test_resolve_fills_shapes_padding_steps_seeds_and_validation(paired_dataset):
    config = Config(data=DataConfig(dataset=str(paired_dataset), batch_size=3, pad_multiple=3))
    resolved = resolve_config(config)
    assert resolved.model.input_shape == (24, 24, 1)  # 16 padded to lcm(3, 8) = 24
    assert resolved.model.output_shape == (24, 24, 1)
    assert resolved.data.pad_multiple == 24
    assert resolved.training.steps_per_epoch == 2  # 8 examples // 3
    assert resolved.data.validation == str(paired_dataset)
    assert 0 <= resolved.data.seed < 2**31 and resolved.model.seed == resolved.data.seed
    again = resolve_config(config, previous=resolved)
    assert again == resolved  # the drawn seed is kept when resuming


def test_crop_and_neighbours_set_the_input_shape(paired_dataset):
    config = Config(data=DataConfig(dataset=str(paired_dataset), crop=(12, 12), seed=1))
    assert resolve_config(config).model.input_shape == (16, 16, 1)  # 12 padded to 8s
    assert resolve_config(config).training.steps_per_epoch == 8


def test_pix2pix_refuses_an_unpaired_dataset(unpaired_dataset):
    with pytest.raises(DataError, match="pix2pix needs a paired dataset"):
        resolve_config(Config(data=DataConfig(dataset=str(unpaired_dataset))))
    cyclegan = resolve_config(
        Config(data=DataConfig(dataset=str(unpaired_dataset)), model=ModelConfig(kind="cyclegan"))
    )
    assert cyclegan.training.steps_per_epoch == 6  # max(4, 6) pairs per epoch


def test_missing_dataset_and_split_are_named(paired_dataset):
    with pytest.raises(ValueError, match=r"data.dataset must name the training dataset"):
        resolve_config(Config())
    with pytest.raises(DataError, match="no split 'tune'"):
        resolve_config(Config(data=DataConfig(dataset=str(paired_dataset), train_split="tune")))


def test_default_windows_follow_hints_units_and_statistics(tmp_path, paired_dataset):
    assert default_windows(paired_dataset) == (CT_WINDOW, CT_WINDOW)  # values from -1300 HU
    sinograms = {
        "train": [
            {
                "input": np.full((4, 6, 1), value, np.float32),
                "target": np.full((8, 8, 1), -1000.0 + value, np.float32),
                "id": str(value),
            }
            for value in (0.0, 5.0)
        ]
    }
    write_dataset(tmp_path / "sino", sinograms, progress=False)
    assert default_windows(tmp_path / "sino") == (Window(0.0, 5.0), CT_WINDOW)
    hint = {"window": {"input": {"base": -1, "range": 9}}}
    write_dataset(tmp_path / "hint", sinograms, metadata=hint, progress=False)
    assert default_windows(tmp_path / "hint")[0] == Window(-1.0, 9.0)


def ct_pair(input_low: float, target_low: float, modality: str | None = None) -> dict:
    """A 4 x 4 pair whose input starts at ``input_low`` and target at ``target_low`` HU."""
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4, 1)
    example = {
        "input": input_low + (1800.0 - input_low) * ramp,
        "target": target_low + (1800.0 - target_low) * ramp,
        "id": f"{input_low}_{target_low}",
    }
    if modality is not None:
        example["modality"] = {"input": modality, "target": modality}
    return example


def test_a_ct_target_without_air_shares_the_ct_window(tmp_path):
    write_dataset(tmp_path / "npy", {"train": [ct_pair(-1000.0, -896.0)]}, progress=False)
    assert default_windows(tmp_path / "npy") == (CT_WINDOW, CT_WINDOW)  # values only
    write_dataset(tmp_path / "dicom", {"train": [ct_pair(-500, -400, "CT")]}, progress=False)
    assert default_windows(tmp_path / "dicom") == (CT_WINDOW, CT_WINDOW)  # recorded modality
    assert Window(-1024, 4095) == CT_WINDOW and CT_WINDOW.high == 3071
    mr = {"train": [ct_pair(-1000.0, -1000.0, "MR")]}
    write_dataset(tmp_path / "mr", mr, metadata={"window": {"base": 0, "range": 9}}, progress=False)
    assert default_windows(tmp_path / "mr") == (Window(0, 9), Window(0, 9))  # not HU: the hint


def test_ct_hint_is_a_display_window_not_the_training_window(tmp_path):
    hint = {"units": "HU", "window": {"base": -160, "range": 400}}
    write_dataset(tmp_path / "ds", {"train": [ct_pair(0.0, 0.0)]}, metadata=hint, progress=False)
    assert default_windows(tmp_path / "ds") == (CT_WINDOW, CT_WINDOW)


def test_a_window_that_clips_a_ct_output_is_refused(tmp_path):
    write_dataset(tmp_path / "ds", {"train": [ct_pair(-1000, -1000, "CT")]}, progress=False)
    narrow = Window(-1000, 2000)
    config = Config(data=DataConfig(dataset=str(tmp_path / "ds"), target_window=narrow))
    message = (
        f"data.target_window -1000..1000 HU cannot give the CT values of the target domain of "
        f"{tmp_path / 'ds'}: a model output in HU needs a window covering at least -1024..3071 "
        "HU (values outside it are clipped); give --target-window -1024 4095 or a wider one, "
        "or leave it out"
    )
    with pytest.raises(ValueError) as error:
        resolve_config(config)
    assert str(error.value) == message
    inputs_only = Config(data=DataConfig(dataset=str(tmp_path / "ds"), input_window=narrow))
    assert resolve_config(inputs_only).data.input_window == narrow  # an input may be windowed
    cyclegan = Config(data=inputs_only.data, model=ModelConfig(kind="cyclegan"))
    with pytest.raises(ValueError, match=r"^data.input_window -1000..1000 HU cannot give"):
        resolve_config(cyclegan)


@pytest.mark.parametrize(("native", "chosen"), [(True, "mixed_bfloat16"), (False, "float32")])
def test_a_run_records_what_auto_chose_and_keeps_it_on_resume(
    monkeypatch, paired_dataset, native, chosen
):
    assert ModelConfig().precision == "auto"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: native)
    config = Config(data=DataConfig(dataset=str(paired_dataset), seed=1))
    resolved = resolve_config(config)
    assert resolved.model.precision == chosen
    # Resumed on a machine of the other kind, the run goes on in its own precision.
    monkeypatch.setattr(precision, "native_bfloat16", lambda: not native)
    assert resolve_config(config, previous=resolved).model.precision == chosen
    assert resolve_config(config).model.precision != chosen  # a new run chooses anew
