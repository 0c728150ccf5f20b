"""``kerastrans evaluate``: Compute PSNR, SSIM, RMSE and MAE of a model (and a baseline) on a dataset."""

from __future__ import annotations

from kerastrans.cli._pending import add_pending_parser

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans evaluate``."""
    add_pending_parser(subparsers, "evaluate", "Compute PSNR, SSIM, RMSE and MAE of a model (and a baseline) on a dataset.", "The user's workflow")
