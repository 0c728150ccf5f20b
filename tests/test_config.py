"""The config tree: validation in __post_init__, dict/YAML/JSON round trips, overrides."""

import json
import re

import pytest

from kerastrans.config import (
    AugmentConfig,
    Config,
    DataConfig,
    Window,
    from_dict,
    load_config,
    save_config,
    to_dict,
    with_overrides,
)

CUSTOM = Config(
    data=DataConfig(
        dataset="data/ct",
        input_window=Window(-160, 400),
        target_window=Window.from_center_width(40, 80),
        augment=AugmentConfig(
            flip_left_right=True,
            rotation=15,
            scale=0.1,
            noise_std=20,
            interpolation="nearest",
            fill_mode="reflect",
        ),
        batch_size=8,
        crop=(128, 96),
        pad_multiple=16,
        neighbours=2,
        seed=123,
        shuffle_buffer=64,
    )
)


@pytest.mark.parametrize("width", [0, -5.0])
def test_window_rejects_range_that_is_not_positive(width):
    with pytest.raises(ValueError, match=rf"window range must be > 0 .*got {float(width)}"):
        Window(base=0, range=width)


def test_window_rejects_non_numbers_and_infinity():
    with pytest.raises(TypeError, match="base must be float, got 'a'"):
        Window(base="a", range=10)
    with pytest.raises(ValueError, match="base must be a finite number, got inf"):
        Window(base=float("inf"), range=10)


def test_window_ends_and_dicom_center_width():
    window = Window.from_center_width(40, 400)
    assert (window.base, window.range) == (-160.0, 400.0)
    assert (window.low, window.high) == (-160.0, 240.0)
    assert isinstance(Window(-1000, 2000).range, float)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 1.0}, r"augment scale must be in \[0, 1\), got 1.0"),
        ({"rotation": -1}, r"augment rotation must be in \[0, 180\] degrees, got -1.0"),
        ({"translation": 1.5}, r"augment translation must be in \[0, 1\), got 1.5"),
        ({"noise_std": -0.1}, "augment noise_std must be >= 0, got -0.1"),
        ({"interpolation": "cubic"}, r"interpolation must be one of \['bilinear', 'nearest'\]"),
    ],
)
def test_augment_config_rejects_out_of_range_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
        ({"batch_size": True}, TypeError, "batch_size must be int, got True"),
        ({"crop": (0, 64)}, ValueError, r"crop must be \(height, width\) with sizes >= 1"),
        ({"crop": (64, 64, 1)}, ValueError, r"crop must have 2 items, got \[64, 64, 1\]"),
        ({"neighbours": -1}, ValueError, "neighbours must be >= 0, got -1"),
        ({"pad_multiple": 0}, ValueError, "pad_multiple must be >= 1, got 0"),
        ({"seed": -3}, ValueError, r"seed must be in \[0, 2\*\*31\), got -3"),
    ],
)
def test_data_config_rejects_bad_values_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataConfig(**kwargs)


def test_dict_round_trip_restores_nested_dataclasses_and_tuples():
    data = to_dict(CUSTOM)
    assert data["data"]["crop"] == [128, 96]
    assert data["data"]["input_window"] == {"base": -160.0, "range": 400.0}
    json.dumps(data)  # plain values only
    restored = from_dict(Config, data)
    assert restored == CUSTOM
    assert isinstance(restored.data.augment, AugmentConfig)
    assert restored.data.crop == (128, 96)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_round_trip(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    save_config(CUSTOM, path)
    assert load_config(path) == CUSTOM
    assert load_config(path, Config).data.target_window == Window(0, 80)


def test_missing_keys_take_defaults():
    config = from_dict(Config, {"data": {"batch_size": 2}})
    assert config.data.batch_size == 2
    assert config.data.input_window is None  # chosen from the dataset by resolve_config


def test_window_conversions_are_views_of_one_window():
    window = Window.from_bounds(-160, 240)
    assert window == Window(-160, 400) == Window.from_center_width(40, 400)
    assert (window.center, window.width) == (40.0, 400.0)
    assert Window.from_value({"base": -160, "range": 400}) == window
    assert Window.from_value(window) is window
    with pytest.raises(ValueError, match=r"window needs low < high, got \(40, -160\)"):
        Window.from_bounds(40, -160)
    with pytest.raises(TypeError, match=r"window_b must be a Window or .*, got \(-160, 240\)"):
        Window.from_value((-160, 240), "window_b")


def test_an_override_inside_an_unset_window_starts_from_the_window_defaults():
    config = with_overrides(Config(), ["data.input_window.base=-160"])
    assert config.data.input_window == Window(-160, 4095)
    assert config.data.target_window is None
    with pytest.raises(ValueError, match=r"data.target_window is None \(chosen from the data"):
        config.data.windows()


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ValueError, match=r"augment: unknown key 'rotatoin' .*rotation"):
        from_dict(Config, {"data": {"augment": {"rotatoin": 5}}})
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  batchsize: 4\n")
    with pytest.raises(ValueError, match=r"bad.yaml: data: unknown key 'batchsize'"):
        load_config(path)


def test_wrong_type_in_file_names_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": {"input_window": {"base": "low", "range": 10}}}))
    message = r"bad.json: data.input_window.base must be float, got 'low'"
    with pytest.raises(TypeError, match=message):
        load_config(path)


def test_overrides_parse_yaml_values_and_validate():
    config = with_overrides(
        CUSTOM, ["data.crop=[64, 64]", "data.seed=null", "data.augment.rotation=5"]
    )
    assert config.data.crop == (64, 64)
    assert config.data.seed is None
    assert config.data.augment.rotation == 5.0
    assert with_overrides(Config(), {"data.batch_size": 4}).data.batch_size == 4
    with pytest.raises(ValueError, match=r"override 'data.batchsize': unknown key 'batchsize'"):
        with_overrides(Config(), ["data.batchsize=4"])
    with pytest.raises(ValueError, match=r"override must look like 'section.key=value'"):
        with_overrides(Config(), ["data.batch_size"])
    with pytest.raises(ValueError, match="window range must be > 0"):
        with_overrides(Config(), ["data.input_window.range=0"])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("model.fc_learning_rate_scale=.inf", "model.fc_learning_rate_scale"),
        ("training.g_learning_rate=.nan", "training.g_learning_rate"),
        ("data.input_window.range=-.inf", "data.input_window.range"),
    ],
)
def test_non_finite_float_options_are_refused(override, field):
    # inf passed every "> 0" check before: it would have trained with an infinite rate.
    # The message names the full key, not just "range" (there are three windows).
    with pytest.raises(ValueError, match=rf"^{re.escape(field)} must be a finite number, got"):
        with_overrides(Config(), [override])


@pytest.mark.parametrize("value", ["0", "-1"])
def test_clip_norm_must_be_positive(value):
    with pytest.raises(ValueError, match=rf"^training.clip_norm must be > 0, got {value}"):
        with_overrides(Config(), [f"training.clip_norm={value}"])
    assert with_overrides(Config(), ["training.clip_norm=1"]).training.clip_norm == 1.0
