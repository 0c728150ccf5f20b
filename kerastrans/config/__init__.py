"""The configuration tree: typed, frozen dataclasses that check themselves.

A run is described by one `Config`. Each section is a frozen dataclass whose
``__post_init__`` rejects bad values with a message naming the field, the rule
and the value received, so a wrong YAML file fails when it is loaded, not an
hour into training. The tree converts to and from plain dicts (`to_dict`,
`from_dict`), YAML/JSON files (`load_config`, `save_config`) and dotted
command-line overrides (`with_overrides`). Conversion is generic over the
dataclass fields and their type hints, so later sections (model, losses,
training) only declare their fields.

>>> config = Config(data=DataConfig(batch_size=4, crop=(128, 128)))
>>> from_dict(Config, to_dict(config)) == config
True
>>> with_overrides(config, ["data.input_window.base=-160"]).data.input_window
Window(base=-160.0, range=4095.0)
"""

from kerastrans.config._convert import from_dict, to_dict
from kerastrans.config.data import AugmentConfig, DataConfig, Window
from kerastrans.config.files import (
    config_differences,
    load_config,
    read_config_file,
    save_config,
    with_overrides,
)
from kerastrans.config.losses import LOSS_ARGUMENTS, WEIGHTS, LossesConfig
from kerastrans.config.model import (
    MODEL_ARGUMENTS,
    MODEL_KINDS,
    MODEL_PRESETS,
    RECONSTRUCTION_KINDS,
    DiscriminatorConfig,
    GeneratorConfig,
    ModelConfig,
)
from kerastrans.config.training import (
    TRAINING_ARGUMENTS,
    Config,
    ScheduleConfig,
    TrainingConfig,
)

__all__ = [
    "LOSS_ARGUMENTS",
    "MODEL_ARGUMENTS",
    "MODEL_KINDS",
    "MODEL_PRESETS",
    "RECONSTRUCTION_KINDS",
    "TRAINING_ARGUMENTS",
    "WEIGHTS",
    "AugmentConfig",
    "Config",
    "DataConfig",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "LossesConfig",
    "ModelConfig",
    "ScheduleConfig",
    "TrainingConfig",
    "Window",
    "config_differences",
    "from_dict",
    "load_config",
    "read_config_file",
    "save_config",
    "to_dict",
    "with_overrides",
]
