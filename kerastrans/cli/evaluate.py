"""``kerastrans evaluate``: PSNR, SSIM, RMSE and MAE of a model (and a baseline) on a dataset.

MODEL is a run directory of 'fit' or a SavedModel of 'export'; DATASET a
paired dataset of 'records' or 'simulate'. Metrics are computed in physical
units, per image and as means, for the model and a baseline: the input as it
is (same shape as the target) or FBP of sinograms (geometry from the dataset
metadata). Prints a markdown table; --out also writes metrics.csv (per image
and mean), report.md and samples.png. --direction BtoA (CycleGAN) translates
the dataset's targets and scores them against its inputs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from kerastrans.cli._types import positive_int
from kerastrans.cli.convert import add_model_options, announce_model, tiled_model

__all__ = ["add_parser"]

#: `kerastrans.evaluate.BASELINES`, listed here so that --help needs no TensorFlow.
BASELINES = ("auto", "input", "fbp", "none")


def add_parser(subparsers) -> None:
    """Register ``kerastrans evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help="Compute PSNR, SSIM, RMSE and MAE of a model (and a baseline) on a dataset.",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("model", metavar="MODEL", type=Path, help="run directory or SavedModel")
    parser.add_argument("dataset", metavar="DATASET", type=Path, help="paired dataset folder")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        default="auto",
        help="baseline: input as is, fbp of sinograms, none; auto picks input for equal "
        "shapes, else fbp when the dataset has a geometry (default auto)",
    )
    parser.add_argument(
        "--data-range",
        type=_data_range,
        metavar="RANGE",
        help="PSNR/SSIM data range: a number, or 'window' (the model's output window "
        "width); default max - min of each ground truth, as dival",
    )
    parser.add_argument("--out", type=Path, metavar="REPORT_DIR", help="write the report here")
    parser.add_argument("--max-images", type=positive_int, help="evaluate the first N images")
    parser.add_argument(
        "--fbp-frequency-scaling",
        type=float,
        metavar="F",
        help="FBP cut-off in (0, 1] (default: tuned on the validation split)",
    )
    add_model_options(parser, "images")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and write the report."""
    from kerastrans.atomic import writable_directory
    from kerastrans.evaluate import evaluate
    from kerastrans.loading import load_translator

    scaling = args.fbp_frequency_scaling
    if scaling is not None and not 0 < scaling <= 1:
        args.parser.error(f"--fbp-frequency-scaling must be in (0, 1], got {scaling}")
    if args.out is not None:  # fail now, not after computing everything
        writable_directory(args.out)
    announce_model(args.model, args.which, args.version)
    translator = tiled_model(
        args,
        load_translator(args.model, args.direction, version=args.version, which=args.which),
    )
    if args.data_range == "window" and getattr(translator, "output_window", None) is None:
        args.parser.error("--data-range window needs a model with a recorded output window")
    report = evaluate(
        translator,
        args.dataset,
        args.split,
        baseline=args.baseline,
        data_range=args.data_range,
        batch_size=args.batch_size,
        max_images=args.max_images,
        fbp_frequency_scaling=scaling,
        direction=args.direction,
        progress=args.progress,
    )
    print(report.to_markdown())
    if args.out is not None:
        for path in report.save(args.out).values():
            print(f"wrote {path}")
    return 0


def _data_range(text: str) -> float | str:
    """Argparse type of ``--data-range``: ``window`` or a positive number."""
    if text == "window":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'window', got {text!r}")
    return value
