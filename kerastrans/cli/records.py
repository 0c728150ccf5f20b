"""``kerastrans records``: Build a TFDS-format dataset from DICOM/PNG/NPY files."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans records``."""
    add_pending_parser(subparsers, "records", "Build a TFDS-format dataset from DICOM/PNG/NPY files.", "Foundation and data")
