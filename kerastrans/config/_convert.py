"""Conversion between the config dataclass tree and plain values (dicts, lists, scalars).

Generic over the dataclass fields and their type hints, so a section only declares
its fields; unknown keys are errors so a misspelt option is never silently ignored.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

T = TypeVar("T")

# The class `from_dict` is building and its dotted section name, so that the class's
# `_coerce_fields` can name a bad field by its full key ("data.input_window.base").
# A class is compared too: a default factory run inside that constructor must not
# inherit the section's name.
_SECTION: contextvars.ContextVar[tuple[type, str] | None] = contextvars.ContextVar(
    "kerastrans_config_section", default=None
)


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
    token = _SECTION.set((cls, path))
    try:
        return cls(**data)
    finally:
        _SECTION.reset(token)


def _coerce_fields(config: Any) -> None:
    """Convert the fields of a config dataclass to their declared types, in place.

    Called first in every ``__post_init__``: nested dicts become dataclasses,
    lists become tuples, ints become floats where a float is declared, and a
    value of the wrong type raises `TypeError` naming the field (by its dotted key
    when the section is being built by `from_dict`).
    """
    section = _SECTION.get()
    prefix = f"{section[1]}." if section and section[1] and type(config) is section[0] else ""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = _from_plain(hints[field.name], getattr(config, field.name), prefix + field.name)
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
    """Check a scalar against ``int``/``float``/``str``/``bool`` (ints are accepted as floats).

    Floats must be finite: no option of the package means anything at ``inf``
    or ``nan``, and ``inf`` slips through every ``> 0`` check.
    """
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is float and is_number:
        if not math.isfinite(value):
            raise ValueError(f"{path} must be a finite number, got {value!r}")
        return float(value)
    if hint is int and is_number and float(value).is_integer():
        return int(value)
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint in (int, float, str, bool):
        raise TypeError(f"{path} must be {hint.__name__}, got {value!r}")
    return value
