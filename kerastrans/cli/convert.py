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

from kerastrans.cli._types import non_negative_float, positive_int
from kerastrans.runs import WHICH, model_source

__all__ = [
    "add_epoch_option",
    "add_model_options",
    "add_parser",
    "announce_model",
    "announce_run",
    "tiled_model",
]

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

    announce_model(args.model, args.which, args.version)
    try:
        model = tiled_model(args, args.model)  # a path, or the tiled translator loaded from it
        paths_only = {"version": args.version, "which": args.which} if model is args.model else {}
        summary = convert(
            model,
            args.input,
            args.output_dir,
            batch_size=args.batch_size,
            output_format=args.format,
            direction=args.direction,
            overwrite=args.overwrite,
            progress=args.progress,
            on_error=report,
            **paths_only,
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
    """Add the model options of convert and evaluate: batch, direction, version, progress, tiles."""
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
    add_epoch_option(parser)
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar"
    )
    parser.add_argument(
        "--tile",
        type=positive_int,
        metavar="N",
        help="translate in N x N tiles blended without seams, --batch-size tiles per call "
        "(default: whole images; images over 2048 x 2048 pixels in 1024 x 1024 tiles)",
    )
    parser.add_argument(
        "--overlap",
        type=_fraction,
        metavar="F",
        help="overlap of neighbouring tiles as a fraction of --tile, in [0, 1) (default 0.25)",
    )


def add_epoch_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--epoch``: which model of a run directory (`kerastrans.runs.load_run`'s ``which``)."""
    parser.add_argument(
        "--epoch",
        dest="which",
        choices=WHICH,
        default="auto",
        help="model of a run directory: best (its best validation epoch, training.keep_best), "
        "latest (its last epoch), or auto: best if the run keeps one, else latest (default)",
    )


def tiled_model(args: argparse.Namespace, model):
    """``model`` (a translator or a path) in ``--tile`` tiles, or as it is without ``--tile``."""
    if args.tile is None:
        if args.overlap is not None:
            args.parser.error("--overlap needs --tile")
        return model
    from kerastrans.loading import load_translator
    from kerastrans.tiling import DEFAULT_OVERLAP, TiledTranslator

    if not callable(model):
        model = load_translator(model, args.direction, version=args.version, which=args.which)
    overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    try:
        return TiledTranslator(model, args.tile, overlap, args.batch_size)
    except ValueError as error:
        args.parser.error(str(error))


def _fraction(text: str) -> float:
    """Argparse type of ``--overlap``: a number in [0, 1)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def announce_run(run_dir: Path, which: str = "auto") -> None:
    """Print which model of a run directory ``which`` takes (a `DataError` if it is no run)."""
    print(f"model: {run_dir / model_source(run_dir, which)}")


def announce_model(model: Path, which: str = "auto", version: int | None = None) -> None:
    """Print which model is used: the epoch of a run directory, or the version of a model folder.

    A model folder prints only when it has several versions and ``--version``
    did not pick one.
    """
    from kerastrans.export import model_versions

    if (model / "config.yaml").is_file():
        announce_run(model, which)
        return
    versions = model_versions(model)
    if version is None and len(versions) > 1:
        print(
            f"model: {versions[max(versions)]}, the highest of versions "
            f"{', '.join(map(str, versions))} (--version N picks another)"
        )
