"""The package's shape: small modules, private library APIs only in `kerastrans._compat`."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import kerastrans

PACKAGE = Path(kerastrans.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
#: Where private Keras/TF/TFDS APIs may be used.
COMPAT = PACKAGE / "_compat.py"
#: The libraries whose private APIs `_compat` wraps.
LIBRARIES = ("keras", "tensorflow", "tensorflow_datasets")
#: Internal modules of the libraries (their public API is ``keras.*``, ``tf.*``, ``tfds.*``).
INTERNAL_MODULES = (
    "keras.src",
    "tensorflow.python",
    "tensorflow.core",
    "tensorflow_datasets.core.",
)


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_stay_under_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400


def _defined_private_names() -> set[str]:
    """Private names kerastrans itself defines (functions, classes, attributes it assigns)."""
    names = set()
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {name for name in names if name.startswith("_")}


def test_private_library_attributes_and_modules_are_used_only_in_compat():
    ours = _defined_private_names()
    found = []
    for path in MODULES:
        if path == COMPAT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{_name(path)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                INTERNAL_MODULES
            ):
                found.append(f"{where} imports {node.module}")
            elif isinstance(node, ast.Import):
                found += [
                    f"{where} imports {alias.name}"
                    for alias in node.names
                    if alias.name.startswith(INTERNAL_MODULES)
                ]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in ours
            ):
                found.append(f"{where} uses .{node.attr}")
    assert found == []


def _library_classes():
    for info in pkgutil.walk_packages(kerastrans.__path__, "kerastrans."):
        if info.name in ("kerastrans._compat", "kerastrans.__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == info.name:
                yield cls


def test_no_class_overrides_a_private_library_method_outside_compat():
    found = []
    for cls in _library_classes():
        foreign = [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in LIBRARIES]
        for name in vars(cls):
            if name.startswith("_") and not name.startswith("__"):
                owners = [base for base in foreign if name in vars(base)]
                found += [f"{cls.__module__}.{cls.__name__}.{name} ({owners[0]})"] if owners else []
    assert found == []
