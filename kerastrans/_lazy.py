"""Package namespaces that import their submodules on first use.

`kerastrans.data` and `kerastrans.tomo` offer the names of submodules that
import TensorFlow Datasets or ODL. Importing each on first use keeps, say,
``kerastrans.data.window`` (and so exported models and the command line's
``--help``) free of those libraries.

>>> getattr_, dir_ = lazy_attributes("json", {"JSONEncoder": "encoder"}, ["JSONEncoder"])
>>> getattr_("JSONEncoder").__module__
'json.encoder'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, submodules: Mapping[str, str], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazy names.

    Args:
        package: The package's ``__name__``.
        submodules: Each public name and the submodule (relative) that defines it.
        names: The package's ``__all__``.

    Returns:
        ``(__getattr__, __dir__)`` to assign in the package's ``__init__``.
    """

    def get_attribute(name: str) -> Any:
        if name not in submodules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{submodules[name]}"), name)

    def list_names() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return get_attribute, list_names
