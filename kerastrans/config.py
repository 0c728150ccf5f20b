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
Window(base=-160.0, range=2000.0)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from kerastrans.atomic import atomic_write_text

__all__ = [
    "AugmentConfig",
    "Config",
    "DataConfig",
    "Window",
    "from_dict",
    "load_config",
    "save_config",
    "to_dict",
    "with_overrides",
]

T = TypeVar("T")


def _check(condition: bool, message: str) -> None:
    """Raise `ValueError(message)` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


# ----------------------------------------------------------------------------------------------
# Conversion between the dataclass tree and plain values.


def to_dict(config: Any) -> dict[str, Any]:
    """Return a config dataclass as nested plain dicts/lists (JSON/YAML ready)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_dict needs a config dataclass instance, got {config!r}")
    return {
        field.name: _to_plain(getattr(config, field.name)) for field in dataclasses.fields(config)
    }


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_to_plain(item) for item in value]
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Build the config dataclass ``cls`` from nested plain values.

    Missing keys take their defaults; unknown keys are an error, so that a
    misspelt option is not silently ignored.

    Args:
        cls: The dataclass to build (e.g. `Config`, `DataConfig`).
        data: A mapping as produced by `to_dict` or read from YAML/JSON.
        path: Dotted name of the section, used in error messages.

    Returns:
        The validated dataclass.

    Raises:
        ValueError: For an unknown key or a value that breaks a rule.
        TypeError: For a value of the wrong type.
    """
    where = path or cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{where} must be a mapping, got {data!r}")
    names = {field.name for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r} (expected one of {', '.join(sorted(names))})"
        )
    return cls(**data)


def _coerce_fields(config: Any) -> None:
    """Convert the fields of a config dataclass to their declared types, in place.

    Called first in every ``__post_init__``: nested dicts become dataclasses,
    lists become tuples, ints become floats where a float is declared, and a
    value of the wrong type raises `TypeError` naming the field.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = _from_plain(hints[field.name], getattr(config, field.name), field.name)
        object.__setattr__(config, field.name, value)


def _from_plain(hint: Any, value: Any, path: str) -> Any:
    """Convert one plain value to the type ``hint`` (dataclass, tuple, optional, literal...)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, path=path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _from_plain(inner, value, path)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{path} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{path} must be a list, got {value!r}")
        item_hints = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(item_hints) != len(value):
            raise ValueError(f"{path} must have {len(item_hints)} items, got {list(value)}")
        return tuple(
            _from_plain(item_hint, item, f"{path}[{i}]")
            for i, (item_hint, item) in enumerate(zip(item_hints, value, strict=True))
        )
    return _scalar(hint, value, path)


def _scalar(hint: Any, value: Any, path: str) -> Any:
    """Check a scalar against ``int``/``float``/``str``/``bool`` (ints are accepted as floats)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is float and is_number:
        return float(value)
    if hint is int and is_number and float(value).is_integer():
        return int(value)
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint in (int, float, str, bool):
        raise TypeError(f"{path} must be {hint.__name__}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Window:
    """A display/training window in physical units: ``[base, base + range] -> [-1, 1]``.

    Values below ``base`` map to -1 and values above ``base + range`` to +1
    (clipped); the map is affine in between, so it has an exact inverse there.

    Args:
        base: Lower end of the window in physical units (HU for CT).
        range: Width of the window in the same units; must be > 0.

    >>> Window(base=-1000, range=2000).high
    1000.0
    >>> Window.from_center_width(40, 400)
    Window(base=-160.0, range=400.0)
    """

    base: float = -1000.0
    range: float = 2000.0

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(math.isfinite(self.base), f"window base must be finite, got {self.base}")
        _check(
            math.isfinite(self.range) and self.range > 0,
            f"window range must be > 0 (width of [base, base + range]), got {self.range}",
        )

    @property
    def low(self) -> float:
        """The value mapped to -1 (``base``)."""
        return self.base

    @property
    def high(self) -> float:
        """The value mapped to +1 (``base + range``)."""
        return self.base + self.range

    @classmethod
    def from_center_width(cls, center: float, width: float) -> Window:
        """Build a window from the DICOM convention (WindowCenter, WindowWidth)."""
        return cls(base=float(center) - float(width) / 2, range=float(width))


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation applied in training, identically to both images of a pair.

    Geometric transforms share their random parameters between input and
    target; noise is added to the input only. All defaults are "off".

    Args:
        flip_left_right: Mirror columns with probability 1/2.
        flip_up_down: Mirror rows with probability 1/2.
        rotation: Largest rotation in degrees; the angle is uniform in
            ``[-rotation, rotation]``.
        scale: Largest relative zoom; the factor is uniform in
            ``[1 - scale, 1 + scale]``. Must be in ``[0, 1)``.
        translation: Largest shift as a fraction of the image size (per axis),
            uniform in ``[-translation, translation]``. Must be in ``[0, 1)``.
        noise_std: Standard deviation of Gaussian noise added to the input, in
            the input's physical units (HU for CT); converted through the input
            window.
        interpolation: ``"bilinear"`` or ``"nearest"`` (use nearest for label
            targets); the same for input and target.
        fill_mode: How rotation/scaling/translation fill pixels from outside
            the image: ``"constant"`` (the window's low end, -1), ``"nearest"``,
            ``"reflect"`` or ``"wrap"``.
    """

    flip_left_right: bool = False
    flip_up_down: bool = False
    rotation: float = 0.0
    scale: float = 0.0
    translation: float = 0.0
    noise_std: float = 0.0
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    fill_mode: Literal["constant", "nearest", "reflect", "wrap"] = "constant"

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(
            0 <= self.rotation <= 180,
            f"augment rotation must be in [0, 180] degrees, got {self.rotation}",
        )
        _check(0 <= self.scale < 1, f"augment scale must be in [0, 1), got {self.scale}")
        _check(
            0 <= self.translation < 1,
            f"augment translation must be in [0, 1), got {self.translation}",
        )
        _check(self.noise_std >= 0, f"augment noise_std must be >= 0, got {self.noise_std}")

    @property
    def affine(self) -> bool:
        """Whether rotation, scaling or translation is enabled."""
        return bool(self.rotation or self.scale or self.translation)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is enabled."""
        return self.affine or self.flip_left_right or self.flip_up_down or self.noise_std > 0


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the tf.data pipeline reads and how it prepares batches.

    Args:
        dataset: Folder of the TFDS-format dataset (built by
            `kerastrans.data.records.write_dataset` or ``kerastrans records``);
            `None` when the dataset is given separately.
        train_split: Split read for training (``"train"``; for an unpaired
            dataset the domains are ``<split>A`` and ``<split>B``).
        eval_split: Split read for evaluation.
        input_window: Window of the input domain (domain A), physical units.
        target_window: Window of the target domain (domain B), physical units.
        augment: Random augmentation in training.
        batch_size: Global batch size (split across replicas).
        crop: ``(height, width)`` of the random training patch, in input
            pixels; `None` trains on whole images. Images smaller than the patch
            are padded first. Not applied in evaluation.
        pad_multiple: Pad every image (bottom and right, with the window's low
            end) so that height and width are multiples of this, for networks
            that halve the size several times; 1 = no padding. The original size
            is kept so that outputs can be cropped back.
        neighbours: 2.5D: number of neighbouring slices of the same series
            stacked on each side of the input slice as extra channels (0 = 2D).
        seed: Seed of shuffling and augmentation; with a seed the pipeline is
            deterministic. `None` = fresh randomness every run.
        shuffle_buffer: Number of examples in the shuffle buffer.
    """

    dataset: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    input_window: Window = Window()
    target_window: Window = Window()
    augment: AugmentConfig = AugmentConfig()
    batch_size: int = 1
    crop: tuple[int, int] | None = None
    pad_multiple: int = 1
    neighbours: int = 0
    seed: int | None = None
    shuffle_buffer: int = 256

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        if self.crop is not None:
            _check(
                len(self.crop) == 2 and all(size >= 1 for size in self.crop),
                f"crop must be (height, width) with sizes >= 1, got {self.crop}",
            )
        _check(self.pad_multiple >= 1, f"pad_multiple must be >= 1, got {self.pad_multiple}")
        _check(self.neighbours >= 0, f"neighbours must be >= 0, got {self.neighbours}")
        _check(self.shuffle_buffer >= 1, f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.seed is not None:
            _check(0 <= self.seed < 2**31, f"seed must be in [0, 2**31), got {self.seed}")


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration of a run. Later work adds model, losses and training."""

    data: DataConfig = DataConfig()

    def __post_init__(self) -> None:
        _coerce_fields(self)


# ----------------------------------------------------------------------------------------------
# Files and overrides.


def load_config(path: str | os.PathLike, cls: type[T] = Config) -> T:
    """Read a config from a YAML (``.yaml``/``.yml``) or JSON (``.json``) file.

    Args:
        path: The file.
        cls: The dataclass the file describes (default: the whole `Config`).

    Returns:
        The validated config.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not valid YAML/JSON or breaks a rule; the
            message starts with the path.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ValueError as error:  # json.JSONDecodeError and yaml.YAMLError are ValueErrors
        raise ValueError(f"{path}: not valid {path.suffix or 'YAML'}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith("yaml"):
            raise ValueError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
        raise
    try:
        return from_dict(cls, data or {})
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Write a config atomically as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
    path = Path(path)
    data = to_dict(config)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(path, text)


def with_overrides(config: T, overrides: Iterable[str] | Mapping[str, Any]) -> T:
    """Return ``config`` with dotted-key overrides applied, e.g. ``"data.batch_size=8"``.

    Values given as strings are parsed as YAML scalars/lists (``8``, ``0.5``,
    ``null``, ``[128, 128]``, ``true``), then validated like a loaded file.

    Raises:
        ValueError: For a malformed override, an unknown key or a bad value.
    """
    import yaml

    data = to_dict(config)
    items = overrides.items() if isinstance(overrides, Mapping) else map(_split_override, overrides)
    for key, value in items:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else value
        node = data
        *parents, leaf = key.split(".")
        for i, part in enumerate(parents):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                raise ValueError(
                    f"override {key!r}: {'.'.join(parents[: i + 1])!r} is not a config section"
                )
            node = child
        if leaf not in node:
            raise ValueError(
                f"override {key!r}: unknown key {leaf!r} (expected one of "
                f"{', '.join(sorted(node))})"
            )
        node[leaf] = value
    return from_dict(type(config), data)


def _split_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override must look like 'section.key=value', got {text!r}")
    return key.strip(), value.strip()
