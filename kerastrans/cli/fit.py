"""``kerastrans fit``: Train a pix2pix, CycleGAN or AUTOMAP model on a dataset."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans fit``."""
    add_pending_parser(subparsers, "fit", "Train a pix2pix, CycleGAN or AUTOMAP model on a dataset.", "The user's workflow")
