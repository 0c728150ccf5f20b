"""``kerastrans export``: export a trained run as a SavedModel for TF Serving.

The SavedModel takes and returns physical units (HU for CT): windowing,
padding to the network's size multiple and cropping are inside the graph.
``--out MODEL_DIR`` writes the version folder ``MODEL_DIR/<version>/`` that
TF Serving expects; serve it with ``--model_base_path=/abs/path/MODEL_DIR``.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from kerastrans.cli._types import positive_int
from kerastrans.cli.convert import add_epoch_option, announce_run

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    """Register ``kerastrans export``."""
    parser = subparsers.add_parser(
        "export",
        help="Export a trained run as a SavedModel for TF Serving.",
        description=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run directory of 'fit'")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="MODEL_DIR",
        help="model folder; the SavedModel goes to MODEL_DIR/<version>/",
    )
    parser.add_argument(
        "--direction",
        choices=("AtoB", "BtoA"),
        default="AtoB",
        help="translation direction, recorded in the SavedModel, which then holds only it "
        "(BtoA: CycleGAN runs only; default AtoB)",
    )
    parser.add_argument(
        "--version", type=positive_int, default=1, help="version folder number (default 1)"
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="fix the image size of the signature (default: any size the network takes)",
    )
    add_epoch_option(parser)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing version folder"
    )
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Export the run and print how to serve it."""
    from kerastrans.errors import DataError
    from kerastrans.export import export_run, read_export_info

    announce_run(args.run_dir, args.which)  # export takes run directories only
    try:
        folder = export_run(
            args.run_dir,
            args.out,
            direction=args.direction,
            version=args.version,
            image_size=args.image_size,
            overwrite=args.overwrite,
            which=args.which,
        )
    except DataError:
        raise
    except ValueError as error:  # the run cannot be exported as asked (direction, size)
        args.parser.error(str(error))
    info = read_export_info(folder)
    shape = " x ".join("any" if n is None else str(n) for n in info["input_shape"])
    print(f"kerastrans export: wrote {folder}")
    print(
        f"signature '{info['signature']}': {info['input']} float32 N x {shape} -> "
        f"{info['output']} float32, physical units in and out"
    )
    print(
        "serve: tensorflow_model_server --rest_api_port=8501 --model_name=kerastrans "
        f"--model_base_path={shlex.quote(str(Path(args.out).resolve()))}"
    )
    return 0
