"""``kerastrans convert``: translate a folder of images with a trained model.

MODEL is a run directory of 'fit' or a SavedModel of 'export'. Every image
under INPUT (recursively; DICOM series kept together) is translated in
physical units and written under OUTPUT_DIR with the same relative path:
DICOM in gives a derived DICOM series out (new series and instance UIDs,
rescale that keeps negative HU). Unreadable files are reported one line each
and skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kerastrans.cli._types import positive_int

__all__ = ["add_model_options", "add_parser"]

#: Output formats (`kerastrans.convert.FORMATS`, listed here so --help needs no TensorFlow).
FORMATS = ("same", "dcm", "png16", "npy")


def add_parser(subparsers) -> None:
    """Register ``kerastrans convert``."""
    parser = subparsers.add_parser(
        "convert",
        help="Translate a folder of images (DICOM in, DICOM out) with a trained model.",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("model", metavar="MODEL", type=Path, help="run directory or SavedModel")
    parser.add_argument("input", metavar="INPUT", type=Path, help="image folder or file")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="output folder")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="same",
        help="output format: same (DICOM stays DICOM, NPY/TIFF exact, PNG/JPEG as 16-bit "
        "PNG), dcm, png16 (value = stored + intercept, printed), npy (float32); default same",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty OUTPUT_DIR"
    )
    parser.add_argument(
        "--send",
        type=_destination,
        metavar="AE_TITLE@HOST:PORT",
        help="then store every DICOM file of OUTPUT_DIR on this DICOM node (PACS) by C-STORE",
    )
    add_model_options(parser, "slices")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Convert, print each failure and the summary; 1 if any file failed."""
    from tqdm.auto import tqdm

    from kerastrans.convert import convert
    from kerastrans.errors import DataError

    def report(line: str) -> None:
        tqdm.write(f"kerastrans convert: {line}", file=sys.stderr)  # above the progress bar

    try:
        summary = convert(
            args.model,
            args.input,
            args.output_dir,
            batch_size=args.batch_size,
            output_format=args.format,
            direction=args.direction,
            overwrite=args.overwrite,
            progress=args.progress,
            on_error=report,
        )
    except DataError:
        raise
    except ValueError as error:
        args.parser.error(str(error))
    print(summary.format())
    failed = bool(summary.errors)
    if args.send is not None:  # after the local series is complete
        failed = _send(args, report) or failed
    return 1 if failed else 0


def _send(args: argparse.Namespace, report) -> bool:
    """Store the DICOM files of the output folder on ``args.send``; True if any failed."""
    from kerastrans.io.pacs import send_files
    from kerastrans.io.series import dicom_files

    sent = send_files(
        dicom_files(args.output_dir), args.send, progress=args.progress, on_error=report
    )
    print(sent.format())
    return bool(sent.errors)


def _destination(text: str):
    """Argparse type of ``--send``: ``AE_TITLE@HOST:PORT``."""
    from kerastrans.io.pacs import parse_destination

    try:
        return parse_destination(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_options(parser: argparse.ArgumentParser, items: str) -> None:
    """Add ``--batch-size``, ``--direction`` and ``--no-progress`` (convert, evaluate)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=8, help=f"{items} per model call (default 8)"
    )
    parser.add_argument(
        "--direction", choices=("AtoB", "BtoA"), default="AtoB", help="for CycleGAN runs"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )
