"""``kerastrans benchmark``: Run a benchmark script and write benchmarks/results/<name>.json."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans benchmark``."""
    add_pending_parser(
        subparsers,
        "benchmark",
        "Run a benchmark script and write benchmarks/results/<name>.json.",
        "Benchmarks",
    )
