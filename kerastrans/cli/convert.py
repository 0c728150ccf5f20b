"""``kerastrans convert``: translate a folder of images with a trained model.

MODEL is a run directory of 'fit' or a SavedModel of 'export'. Every image
under INPUT (recursively; DICOM series kept together) is translated in
physical units and written under OUTPUT_DIR with the same relative path:
DICOM in gives a derived DICOM series out (new series and instance UIDs,
rescale that keeps negative HU; a multi-frame file gives NAME_0000.dcm,
NAME_0001.dcm, ..., one slice per frame). Unreadable files are reported one
line each and skipped; the exit status is then 1. OUTPUT_DIR/kerastrans-
convert.json says "complete": false until the end; rerunning the same command
after an interruption resumes it (files already written are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kerastrans.cli._types import positive_int

__all__ = ["add_model_options", "add_parser", "announce_version"]

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
    add_model_options(parser, "slices")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Convert, print each failure and the summary; 1 if any file failed."""
    from tqdm.auto import tqdm

    from kerastrans.convert import convert
    from kerastrans.errors import DataError

    def report(line: str) -> None:
        tqdm.write(f"kerastrans convert: {line}", file=sys.stderr)  # above the progress bar

    announce_version(args)
    try:
        summary = convert(
            args.model,
            args.input,
            args.output_dir,
            batch_size=args.batch_size,
            output_format=args.format,
            direction=args.direction,
            version=args.version,
            overwrite=args.overwrite,
            progress=args.progress,
            on_error=report,
        )
    except DataError:
        raise
    except ValueError as error:
        args.parser.error(str(error))
    print(summary.format())
    return 1 if summary.errors else 0


def add_model_options(parser: argparse.ArgumentParser, items: str) -> None:
    """Add the model options of convert and evaluate (batch size, direction, version, progress)."""
    parser.add_argument(
        "--batch-size", type=positive_int, default=8, help=f"{items} per model call (default 8)"
    )
    parser.add_argument(
        "--direction",
        choices=("AtoB", "BtoA"),
        default="AtoB",
        help="AtoB (default), or BtoA: a CycleGAN run, or a SavedModel exported with "
        "--direction BtoA (a SavedModel holds one direction; the other is refused)",
    )
    parser.add_argument(
        "--version",
        type=positive_int,
        metavar="N",
        help="version folder N of a model folder of 'export' (default: the highest, printed)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )


def announce_version(args: argparse.Namespace) -> None:
    """Print which version of a model folder of several versions is used by default."""
    from kerastrans.export import model_versions

    versions = model_versions(args.model)
    if args.version is None and len(versions) > 1:
        print(
            f"model: {versions[max(versions)]}, the highest of versions "
            f"{', '.join(map(str, versions))} (--version N picks another)"
        )
