"""``kerastrans convert``: Translate a folder of images (DICOM in, DICOM out) with a trained model."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans convert``."""
    add_pending_parser(subparsers, "convert", "Translate a folder of images (DICOM in, DICOM out) with a trained model.", "The user's workflow")
