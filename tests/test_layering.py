"""The package's layers: no import circle, no import that goes up, every import counted.

Each module of ``kerastrans`` belongs to one layer of `LAYERS` and imports only
modules of its own layer or of the layers before it. Every import counts: at
the top of a module, inside a function, ``from x import y``, relative imports,
and ``importlib.import_module`` with a literal name (or a literal prefix). A
function-level import hides a circle from Python but not from a reader, so it
is no licence to import upward.

The order follows /work/shared/DESIGN.md ("each imports only the ones above
it"), with these modules placed where their imports and their users put them:

- **base**: ``kerastrans`` (the version), `errors`, `atomic` (atomic writes),
  `hardware` (what the machine has), `precision` (the mixed-precision
  policy, which asks `hardware`) and `_compat` (the private Keras/TF/TFDS
  APIs we use, each in one place): they depend on nothing else in the package,
  and every layer writes files, raises `DataError` or builds networks in a
  precision.
- **metrics**: NumPy measures in physical units (PSNR, SSIM, RMSE), no Keras;
  below ``tomo`` because the FBP baseline (``tomo.baseline``) scores with them.
  The Keras losses keep their own layer after ``nets``.
- **data**: above ``tomo`` (a simulated dataset stores its geometry, and
  ``data.geometry`` rebuilds it) and ``io`` (sources are read through it).
- **simulation**: the datasets of ``kerastrans simulate`` (phantoms and real CT
  through ODL/ASTRA into TFDS records): above ``data`` and ``tomo``, used by
  the CLI and the demo only.
- **inference**: `translate` (a generator between physical units), `tiling`
  and `stacking` (large images and 2.5D stacks around a translator): they use
  ``data``'s windowing and padding but no model class; training's image grids
  use `translate`, so they sit below ``training``.
- **runs** (load a run directory) needs ``training`` to rebuild a model;
  **export** writes a run or a translator as a SavedModel, so it sits above
  ``runs``; **loading** (a run directory *or* a SavedModel) sits above both.
- **apply**: `convert` (with `conversion`, its reading/translating/writing
  job), `evaluate` (with the ``evaluation`` package: examples, baselines,
  report) and `manifest` (convert's resume record) use a loaded model.
- **app**: `demo` and ``cli`` call everything and nothing calls them.

Package ``__init__`` modules count as modules of their layer. Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those implicit imports
are not edges here (a package and its submodules share a layer), so
``kerastrans.data.window`` does not appear to import ``data.records`` through
``data/__init__``: `test_translate_export_and_loading_import_neither_tfds_nor_odl` checks
what really gets imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kerastrans"

#: Layers from the bottom (imported by all) to the top (imports all). A module
#: belongs to the layer of its longest listed prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "kerastrans",
            "kerastrans.errors",
            "kerastrans.atomic",
            "kerastrans.hardware",
            "kerastrans.precision",
            "kerastrans.optimizers",
            "kerastrans._compat",
            "kerastrans._lazy",
        ),
    ),
    ("config", ("kerastrans.config",)),
    ("io", ("kerastrans.io",)),
    ("metrics", ("kerastrans.metrics",)),
    ("tomo", ("kerastrans.tomo",)),
    ("data", ("kerastrans.data",)),
    ("simulation", ("kerastrans.simulation",)),
    ("nets", ("kerastrans.nets",)),
    ("losses", ("kerastrans.losses",)),
    ("models", ("kerastrans.models",)),
    ("inference", ("kerastrans.translate", "kerastrans.tiling", "kerastrans.stacking")),
    ("training", ("kerastrans.training",)),
    ("runs", ("kerastrans.runs",)),
    ("export", ("kerastrans.export",)),
    ("loading", ("kerastrans.loading",)),
    (
        "apply",
        (
            "kerastrans.convert",
            "kerastrans.conversion",
            "kerastrans.evaluate",
            "kerastrans.evaluation",
            "kerastrans.manifest",
        ),
    ),
    ("app", ("kerastrans.demo", "kerastrans.cli")),
)


class Import(NamedTuple):
    """One import statement's target within the package."""

    source: str
    target: str
    where: str  # file:line, the file relative to the package's parent folder

    def __str__(self) -> str:
        return self.where


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph(package: Path) -> list[Import]:
    """Every import of a module of ``package`` by a module of ``package``."""
    modules = module_files(package)
    edges: dict[Import, None] = {}  # one edge per target and line, in order
    for source, path in modules.items():
        for name, line in _imported_names(source, path, package.name):
            target = _owner(name, modules)
            if target is not None and target != source:
                where = f"{path.relative_to(package.parent).as_posix()}:{line}"
                edges[Import(source, target, where)] = None
    return list(edges)


def _imported_names(module: str, path: Path, root: str) -> Iterator[tuple[str, int]]:
    """Dotted names ``module`` imports (``from a import b`` gives ``a.b``), anywhere in it."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: None if is_package else -1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
        elif _is_import_module(node):
            name = _literal_prefix(node.args[0], module) if node.args else None
            if name and name.split(".")[0] == root:
                yield name, node.lineno


def _is_import_module(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
    )


def _literal_prefix(node: ast.expr, module: str) -> str | None:
    """The literal start of a module name: ``f"kerastrans.cli.{x}"`` gives ``kerastrans.cli``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    text = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            text += part.value
        elif isinstance(part.value, ast.Name) and part.value.id == "__name__":
            text += module
        else:
            break
    return text.rstrip(".") or None


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module a dotted import name loads (``a.b.func`` -> ``a.b``), or `None` outside."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def layer_of(module: str, layers: Sequence[tuple[str, Sequence[str]]] = LAYERS) -> int | None:
    """Index in ``layers`` of the longest prefix that names ``module``, or `None`."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def upward_imports(
    edges: Sequence[Import], layers: Sequence[tuple[str, Sequence[str]]] = LAYERS
) -> list[str]:
    """One line per import of a module from a higher layer."""
    lines = []
    for edge in edges:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is not None and target is not None and target > source:
            lines.append(
                f"{edge}: {edge.source} (layer {layers[source][0]}) imports "
                f"{edge.target} (layer {layers[target][0]})"
            )
    return lines


def import_cycles(edges: Sequence[Import]) -> list[str]:
    """One line per import circle (strongly connected component), with a path round it."""
    graph: dict[str, list[Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
    return [_describe_cycle(component, graph) for component in _components(graph)]


def _components(graph: Mapping[str, list[Import]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for edge in children:
                child = edge.target
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _describe_cycle(component: set[str], graph: Mapping[str, list[Import]]) -> str:
    """The modules of ``component`` and a shortest circle through the first of them."""
    start = min(component)
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    for node in queue:
        for edge in graph.get(node, ()):
            if edge.target == start:
                steps = [*paths[node], edge]
                circle = start + "".join(f" -> {step.target} ({step})" for step in steps)
                return f"{len(component)} modules {sorted(component)}, e.g. {circle}"
            if edge.target in component and edge.target not in paths:
                paths[edge.target] = [*paths[node], edge]
                queue.append(edge.target)
    raise AssertionError(f"no circle through {start} in {sorted(component)}")


# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return import_graph(PACKAGE)


def test_every_module_has_a_layer():
    missing = [name for name in module_files(PACKAGE) if layer_of(name) is None]
    assert not missing, f"modules in no layer of LAYERS (give each a place): {missing}"


def test_no_import_circle(edges):
    cycles = import_cycles(edges)
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_no_upward_import(edges):
    upward = upward_imports(edges)
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_checks_see_function_level_relative_and_dynamic_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text("def f():\n    from ..high import g\n")
    (package / "low" / "b.py").write_text("from . import a\n")
    (package / "high.py").write_text(
        "import importlib\nfrom pkg.low.b import x\n"
        "def g():\n    importlib.import_module(f'pkg.low.{name}')\n"
    )
    edges = import_graph(package)
    layers = (("low", ("pkg", "pkg.low")), ("high", ("pkg.high",)))

    assert {(edge.source, edge.target, edge.where) for edge in edges} == {
        ("pkg.low.a", "pkg.high", "pkg/low/a.py:2"),
        ("pkg.low.b", "pkg.low.a", "pkg/low/b.py:1"),
        ("pkg.high", "pkg.low.b", "pkg/high.py:2"),
        ("pkg.high", "pkg.low", "pkg/high.py:4"),
    }
    assert upward_imports(edges, layers) == [
        "pkg/low/a.py:2: pkg.low.a (layer low) imports pkg.high (layer high)"
    ]
    assert import_cycles(edges) == [
        "3 modules ['pkg.high', 'pkg.low.a', 'pkg.low.b'], e.g. pkg.high -> pkg.low.b "
        "(pkg/high.py:2) -> pkg.low.a (pkg/low/b.py:1) -> pkg.high (pkg/low/a.py:2)"
    ]


def test_translate_export_and_loading_import_neither_tfds_nor_odl():
    # One fresh process (TensorFlow starts once); each module is imported in
    # turn, lightest first, and the heavy libraries loaded so far are listed.
    modules = ["kerastrans.translate", "kerastrans.export", "kerastrans.loading"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    heavy = ('tensorflow_datasets', 'odl', 'astra')\n"
        "    print(name, sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [f"{name} []" for name in modules]
