"""``kerastrans benchmark``: run one of the repository's benchmark scripts.

The scripts live in ``benchmarks/`` of a source checkout (they are not part of
the installed package): each prints a markdown table, saves a PNG next to its
numbers and writes ``benchmarks/results/<name>.json``. This command finds the
folder (``--dir``, else ``./benchmarks``, else the one beside an editable
install) and runs ``benchmarks/<name>.py`` with the remaining arguments.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from kerastrans.errors import file_error

__all__ = ["add_parser", "find_benchmarks"]

#: The folder beside the package in a source checkout (editable install).
_CHECKOUT_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def add_parser(subparsers) -> None:
    """Register ``kerastrans benchmark``."""
    parser = subparsers.add_parser(
        "benchmark",
        help="Run a benchmark script and write benchmarks/results/<name>.json.",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("name", nargs="?", help="script name without .py (omit to list them)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    parser.add_argument("--dir", type=Path, help="benchmarks folder (default: found as above)")
    parser.set_defaults(func=run)


def find_benchmarks(folder: Path | None = None) -> Path:
    """Return the benchmarks folder: ``folder``, ``./benchmarks`` or the checkout's.

    Raises:
        DataError: If none of them exists.
    """
    candidates = [folder] if folder is not None else [Path("benchmarks"), _CHECKOUT_BENCHMARKS]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise file_error(candidates[0], "no benchmarks folder (run from a kerastrans source checkout)")


def _scripts(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.py") if not path.stem.startswith("_"))


def run(args: argparse.Namespace) -> int:
    folder = find_benchmarks(args.dir)
    names = _scripts(folder)
    if args.name is None:
        print("benchmarks:", ", ".join(names))
        return 0
    if args.name not in names:
        raise file_error(
            folder / f"{args.name}.py", f"no such benchmark (have: {', '.join(names)})"
        )
    command = [sys.executable, str(folder / f"{args.name}.py"), *args.args]
    return subprocess.run(command, cwd=folder.parent, check=False).returncode
