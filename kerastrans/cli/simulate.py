"""``kerastrans simulate``: simulate sinograms and degraded images as datasets."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans simulate``."""
    add_pending_parser(subparsers, "simulate", 
        "Simulate datasets (ellipses sinograms, low-dose CT, sparse view, super-resolution).",
        "Tomography")
