"""Training: ``kerastrans fit`` as a library.

- `fit`: train a config into a run directory, resume it exactly after an
  interruption (`kerastrans.training.fit`);
- `build_model`: a compiled model from a config alone (`...build`);
- `make_schedule`, `LinearDecay`: learning-rate schedules (`...schedules`);
- `make_strategy`, `STRATEGIES`: distribution strategies (`...strategy`);
- `resolve_config`, `default_windows`: dataset-dependent settings (`...resolve`).
"""

from kerastrans.training.build import build_model
from kerastrans.training.fit import ConfigError, FitResult, fit, read_finished
from kerastrans.training.resolve import default_windows, resolve_config
from kerastrans.training.schedules import LinearDecay, make_schedule
from kerastrans.training.strategy import STRATEGIES, make_strategy

__all__ = [
    "STRATEGIES",
    "ConfigError",
    "FitResult",
    "LinearDecay",
    "build_model",
    "default_windows",
    "fit",
    "make_schedule",
    "make_strategy",
    "read_finished",
    "resolve_config",
]
