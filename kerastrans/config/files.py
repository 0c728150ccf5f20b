"""Configs in files (YAML/JSON, written atomically), command-line overrides, differences."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kerastrans.atomic import atomic_write_text
from kerastrans.config._convert import T, from_dict, to_dict
from kerastrans.config.training import Config

# ----------------------------------------------------------------------------------------------
# Files and overrides.


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read the plain dict of a YAML (``.yaml``/``.yml``) or JSON (``.json``) config file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not valid YAML/JSON or not a mapping; the message
            starts with the path.
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
    if not isinstance(data or {}, Mapping):
        raise ValueError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return dict(data or {})


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
    data = read_config_file(path)
    try:
        return from_dict(cls, data)
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
    ``null``, ``[128, 128]``, ``true``), then validated like a loaded file. A
    key inside a section left unset (`None`, e.g. ``data.input_window.base``)
    starts that section from its defaults.

    Raises:
        ValueError: For a malformed override, an unknown key or a bad value.
    """
    import yaml

    data = to_dict(config)
    items = overrides.items() if isinstance(overrides, Mapping) else map(_split_override, overrides)
    for key, value in items:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else value
            if isinstance(value, str) and _EXPONENT.fullmatch(value):
                value = float(value)  # YAML 1.1 reads "2e-4" (no dot) as a string
        node, section = data, type(config)
        *parents, leaf = key.split(".")
        for i, part in enumerate(parents):
            child = node.get(part) if isinstance(node, dict) else None
            section = _section_type(section, part)
            if child is None and part in node and section is not None:
                child = node[part] = to_dict(section())
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


def _section_type(cls: Any, name: str) -> type | None:
    """The config dataclass of field ``name`` of the dataclass ``cls`` (`None`: not a section)."""
    if not dataclasses.is_dataclass(cls):
        return None
    hint = typing.get_type_hints(cls).get(name)
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    sections = [option for option in options if dataclasses.is_dataclass(option)]
    return sections[0] if len(sections) == 1 else None


#: Numbers in exponent notation that YAML 1.1 leaves as strings ("1e5", "2e-4").
_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _split_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override must look like 'section.key=value', got {text!r}")
    return key.strip(), value.strip()


def config_differences(old: Any, new: Any, *, ignore: Iterable[str] = ()) -> list[str]:
    """Describe where two configs differ: ``["model.generator.depth: 4 -> 5", ...]``.

    Args:
        old: A config dataclass (or its `to_dict`).
        new: Another of the same type.
        ignore: Dotted keys (or sections) left out of the comparison.

    Returns:
        One line per differing leaf, in field order; empty if they agree.
    """
    skip = set(ignore)
    lines: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if path in skip:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in [*a, *(k for k in b if k not in a)]:
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        elif a != b:
            lines.append(f"{path}: {json.dumps(a)} -> {json.dumps(b)}")

    plain = [c if isinstance(c, dict) else to_dict(c) for c in (old, new)]
    walk(*plain, "")
    return lines
