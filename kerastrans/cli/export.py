"""``kerastrans export``: Export a trained run as a SavedModel for TF Serving."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans export``."""
    add_pending_parser(subparsers, "export", "Export a trained run as a SavedModel for TF Serving.", "The user's workflow")
