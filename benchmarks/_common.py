"""Helpers every benchmark script uses: results JSON, markdown table, figures, timing.

Each script in ``benchmarks/`` prints a markdown table, saves its figure(s) as
PNG next to its JSON, and writes ``benchmarks/results/<name>.json`` in one
shape (see ``DESIGN.md``)::

    {"name": ..., "command": ..., "date": "YYYY-MM-DD",
     "machine": "2-core x86_64 CPU, no GPU", "rows": [{"method": ..., ...}]}

A row kept from an earlier run by a ``--methods`` re-run carries that run's
``date``, ``machine`` and ``command`` (`merge_rows`).

Scripts import this module as ``from _common import ...`` (Python puts the
script's folder on ``sys.path``). Every file is written atomically.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kerastrans.atomic import atomic_path, atomic_write_text
from kerastrans.hardware import CPUINFO, read_cpuinfo

__all__ = [
    "PROVENANCE",
    "RESULTS",
    "machine",
    "markdown_table",
    "median_seconds",
    "merge_rows",
    "print_table",
    "save_figure",
    "write_results",
]

#: Folder of the committed results (JSON and PNG).
RESULTS = Path(__file__).resolve().parent / "results"


def machine(cpuinfo: Path = CPUINFO) -> str:
    """Describe this machine as the results JSON does.

    For example ``"2-core x86_64 CPU (AMD EPYC, AVX512-BF16), no GPU"``: the
    CPU's model name and whether it computes bfloat16 natively (AVX512-BF16 or
    AMX) come from ``cpuinfo`` where it exists, because the project's machine
    is not always the same CPU and step times differ several-fold between them.
    GPUs are looked up only if TensorFlow is already imported (no import here).
    """
    cores = os.cpu_count() or 1
    gpus = []
    if "tensorflow" in sys.modules:
        gpus = sys.modules["tensorflow"].config.list_physical_devices("GPU")
    gpu = f"{len(gpus)} GPU" if gpus else "no GPU"
    return f"{cores}-core {platform.machine()} CPU{_cpu_model(cpuinfo)}, {gpu}"


def _cpu_model(cpuinfo: Path) -> str:
    """`` (model name, bfloat16 support)`` from a ``/proc/cpuinfo`` file, or ``""``."""
    info = read_cpuinfo(cpuinfo)
    if info.model is None and not info.flags:
        return ""
    bf16 = "+".join(info.bfloat16_features) or "no native bfloat16"
    return f" ({info.model or 'unknown model'}, {bf16})"


def write_results(
    name: str, command: str, rows: Sequence[Mapping[str, Any]], *, folder: Path = RESULTS
) -> Path:
    """Write ``<folder>/<name>.json`` atomically; return its path.

    Args:
        name: Benchmark name (the script's name without ``.py``).
        command: The command that produced the numbers, e.g.
            ``"python benchmarks/pipeline.py --quick"``.
        rows: One dict per row, each with a ``"method"`` and plain numbers.
        folder: Where to write (default `RESULTS`).

    Raises:
        ValueError: If a row has no ``"method"``.
    """
    for row in rows:
        if "method" not in row:
            raise ValueError(f"every row needs a 'method', got {dict(row)}")
    result = {
        "name": name,
        "command": command,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rows": [dict(row) for row in rows],
    }
    path = Path(folder) / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


#: Fields of the results JSON that say which run made its rows. A merged row that came
#: from an earlier run carries its own copy (`merge_rows`); a row without them was made by
#: the run the JSON's own fields name.
PROVENANCE = ("date", "machine", "command")


def merge_rows(
    rows: Sequence[Mapping[str, Any]], path: Path, order: Sequence[str]
) -> tuple[list[dict], list[str]]:
    """Rows of this run, plus the previous JSON's rows of methods this run did not run.

    For scripts that re-run some of their methods (``--methods``): the rows
    of ``path`` whose method this run did not produce are kept, and each
    keeps the `PROVENANCE` of the run that made it (copied from the previous
    JSON's top level when the row has none of its own), so that a JSON
    whose top level names the last run's CPU still says on which CPU, on
    which day and by which command every kept row was measured.

    Args:
        rows: This run's rows.
        path: The previous results JSON (absent: nothing is kept).
        order: Methods in the order of the merged rows; others go last.

    Returns:
        ``(merged rows, methods kept from the previous JSON)``.
    """
    rows = [dict(row) for row in rows]
    if not path.is_file():
        return rows, []
    ran = {row["method"] for row in rows}
    previous = json.loads(path.read_text(encoding="utf-8"))
    made_by = {field: previous[field] for field in PROVENANCE if field in previous}
    kept = [made_by | row for row in previous["rows"] if row["method"] not in ran]
    rank = {method: index for index, method in enumerate(order)}
    merged = sorted([*rows, *kept], key=lambda row: rank.get(row["method"], len(rank)))
    return merged, [row["method"] for row in kept]


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Format rows as a markdown table; columns default to every key, in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(column, "")) for column in columns] for row in rows]
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
        *("| " + " | ".join(row) + " |" for row in cells),
    ]
    return "\n".join(lines)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Print `markdown_table` of ``rows``."""
    print(markdown_table(rows, columns))


def save_figure(figure: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically, close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(figure)
    return path


def median_seconds(function: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``function()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
