"""Run directories of ``kerastrans fit``: load a trained model and its translator.

Layout (written by `kerastrans.training.fit`)::

    RUN_DIR/config.yaml        the full resolved Config (data + model + losses + training)
    RUN_DIR/model.keras        the latest complete model, saved atomically each epoch
    RUN_DIR/best.json          with training.keep_best: the best epoch and its file,
    RUN_DIR/best-epoch_NNNN.keras  the model of that epoch
    RUN_DIR/checkpoints/       resume state (weights + optimizer + epoch/step)
    RUN_DIR/logs/              TensorBoard scalars (train/, validation/)
    RUN_DIR/history.csv        losses and validation metrics per epoch
    RUN_DIR/grids/epoch_0001.png
    RUN_DIR/finished.json      written when training completed

`load_run` never runs code from the run directory: ``model.keras`` is
loaded with ``safe_mode=True`` (only registered kerastrans and Keras classes
are built), and a run that has no ``model.keras`` yet (stopped in its first
epoch) is rebuilt from ``config.yaml`` and its newest checkpoint's weights.
A run trained with ``training.keep_best`` gives its best epoch's model
instead of the latest (``which="latest"`` asks for the latest).

>>> run = load_run("runs/ldct")                              # doctest: +SKIP
>>> run.translator()(low_dose_hu).shape                      # doctest: +SKIP
TensorShape([1, 512, 512, 1])
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerastrans.config import Config, load_config
from kerastrans.errors import file_error

if TYPE_CHECKING:
    import keras

    from kerastrans.translate import Translator

__all__ = ["WHICH", "Run", "load_run", "model_source"]

#: What `load_run` may load from a run directory: see its ``which``.
WHICH = ("auto", "best", "latest")

#: The model class (in `kerastrans.models`) of each ``model.kind``.
_MODEL_CLASSES = {
    "pix2pix": "Pix2Pix",
    "cyclegan": "CycleGAN",
    "automap": "Automap",
    "lpd": "LearnedPrimalDual",
    "lgd": "LearnedGradientDescent",
    "fbp-unet": "FBPUNetModel",
}


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained (or training) run loaded from its directory.

    Attributes:
        path: The run directory.
        config: Its resolved `Config`.
        model: The trained model (`kerastrans.models.Pix2Pix`, `CycleGAN` or
            `Automap`), in the precision it was trained in, with its optimizers.
        finished: The content of ``finished.json``, or `None` while unfinished.
        inference_model: The model the translators use: ``model`` itself, or
            its float32 twin with the same weights if it was trained in 16 bits
            (default: ``model``).
        source: Which model was loaded, e.g. ``"model.keras (latest)"`` or
            ``"best-epoch_0010.keras (best val_psnr 34.41)"``.
    """

    path: Path
    config: Config
    model: keras.Model
    finished: dict[str, Any] | None = None
    inference_model: keras.Model | None = None
    source: str = "model.keras (latest)"

    def translator(self, direction: str = "AtoB") -> Translator:
        """The generator of ``direction`` between physical units, ready to use or export.

        Args:
            direction: ``"AtoB"`` (input domain -> target domain), or
                ``"BtoA"`` for a CycleGAN run.

        Returns:
            A `kerastrans.translate.Translator` with the run's windows, 2.5D
            neighbours and the network's size multiple.

        Raises:
            ValueError: For another direction, or ``"BtoA"`` of a model that
                has a single generator.
        """
        from kerastrans.translate import DIRECTIONS, Translator

        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        data, kind = self.config.data, self.config.model.kind
        model = self.inference_model or self.model
        windows = (data.input_window, data.target_window)
        if direction == "AtoB":
            generator = model.generator_g if kind == "cyclegan" else model.generator
            return Translator.from_generator(generator, *windows, neighbours=data.neighbours)
        if kind != "cyclegan":
            raise ValueError(
                f"direction 'BtoA' needs a CycleGAN run, got a {kind} run ({self.path})"
            )
        return Translator.from_generator(model.generator_f, *reversed(windows))


def load_run(run_dir: str | os.PathLike, which: str = "auto") -> Run:
    """Load the config and the trained model of a run directory.

    Args:
        run_dir: A directory written by ``kerastrans fit``.
        which: ``"auto"``: the best epoch's model if the run keeps one
            (``training.keep_best``) and has one yet, else the latest;
            ``"best"`` (refused if there is none) or ``"latest"``.

    Returns:
        The `Run`.

    Raises:
        DataError: If ``run_dir`` is not a run directory (a Keras file is
            named as such), holds no model yet, or its ``model.keras`` is
            truncated, corrupt or not a kerastrans model.
        ValueError: If ``which`` is not one of `WHICH`.
    """
    import kerastrans.models  # noqa: F401  (registers the model classes for deserialisation)
    from kerastrans.training import build_model, read_finished

    path = Path(run_dir)
    config = _read_config(path)
    chosen, source = _choose(path, config, which)
    if isinstance(chosen, Path):
        model = _load_model(chosen, config)
    else:  # stopped in its first epoch: the newest checkpoint's weights
        model = build_model(config)
        chosen.restore(model)
    return Run(path, config, model, read_finished(path), _in_float32(model, config), source)


def model_source(run_dir: str | os.PathLike, which: str = "auto") -> str:
    """Which model `load_run` takes from ``run_dir`` for ``which``, without loading it.

    For the command line to say what it evaluates, converts or exports, e.g.
    ``"best-epoch_0044.keras (best val_psnr 28.4)"``.

    Raises:
        DataError: As `load_run` does.
    """
    path = Path(run_dir)
    return _choose(path, _read_config(path), which)[1]


def _read_config(path: Path) -> Config:
    """The config of run directory ``path``; a one-line `DataError` if it is not one."""
    if path.is_file() and zipfile.is_zipfile(path):
        raise file_error(
            path,
            "is a Keras file but not a kerastrans model or run: give the run directory of "
            "kerastrans fit (with config.yaml) or a SavedModel of kerastrans export",
        )
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise file_error(path, "not a run directory of kerastrans fit (no config.yaml)")
    try:
        return load_config(config_path)
    except (TypeError, ValueError) as error:
        raise file_error(config_path, f"not a readable run config: {error}") from None


def _choose(path: Path, config: Config, which: str) -> tuple[Any, str]:
    """The model file (or, before the first epoch ends, checkpoint) of ``which``, described."""
    from kerastrans.training.callbacks import read_best
    from kerastrans.training.checkpoints import latest_checkpoint

    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    keeps_best = which == "best" or (which == "auto" and config.training.keep_best)
    best = read_best(path) if keeps_best else None
    if which == "best" and best is None:
        raise file_error(path, "keeps no best model (train with training.keep_best)")
    if best is not None:
        best_path = path / best["file"]
        if not best_path.is_file():
            raise file_error(best_path, "named by best.json but missing")
        return best_path, f"{best['file']} (best {best['metric']} {best['value']:.4g})"
    if (path / "model.keras").is_file():
        return path / "model.keras", "model.keras (latest)"
    checkpoint = latest_checkpoint(path / "checkpoints")
    if checkpoint is None:
        raise file_error(path, "holds no trained model yet (no model.keras, no checkpoint)")
    where = checkpoint.path.relative_to(path)
    return checkpoint, f"{where} (epoch {checkpoint.epoch}, step {checkpoint.step}, latest)"


def _in_float32(model: keras.Model, config: Config) -> keras.Model:
    """``model``, or its float32 twin with the same weights if it was trained in 16 bits.

    Mixed precision is for the speed of training; a trained model translates
    in float32, so that convert, evaluate and export give full precision on
    any machine (bfloat16 keeps 8 significant bits) and agree with each other.
    """
    from kerastrans.precision import resolve_precision
    from kerastrans.training import build_model

    if resolve_precision(config.model.precision) == "float32":
        return model
    twin = build_model(
        dataclasses.replace(config, model=dataclasses.replace(config.model, precision="float32"))
    )
    twin.set_weights(model.get_weights())
    return twin


def _load_model(model_path: Path, config: Config) -> keras.Model:
    """``model.keras`` of a run, checked to be the kerastrans model its config names."""
    import keras

    import kerastrans.models

    if not zipfile.is_zipfile(model_path):
        raise file_error(model_path, "truncated or corrupt (not a complete .keras zip archive)")
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except zipfile.BadZipFile as error:
        raise file_error(model_path, f"truncated or corrupt ({error})") from None
    except (TypeError, ValueError, OSError) as error:
        raise file_error(model_path, f"cannot load the model: {error}") from None
    expected = _MODEL_CLASSES[config.model.kind]
    if type(model) is not getattr(kerastrans.models, expected):
        raise file_error(
            model_path,
            f"is a Keras file but not a kerastrans model: a {type(model).__name__}, while "
            f"config.yaml names a {expected}",
        )
    return model
