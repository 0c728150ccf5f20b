"""Entry point of the ``kerastrans`` console script."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kerastrans import __version__
from kerastrans.errors import DataError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommands, in the order ``kerastrans --help`` lists them.
COMMANDS = ("records", "simulate", "fit", "evaluate", "export", "convert", "benchmark")

#: Exit status for bad command-line arguments (as argparse uses).
EXIT_USAGE = 2
#: Exit status for input data or files that cannot be used.
EXIT_DATA = 1


class OneLineArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line: ``kerastrans fit: error: ...``."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand registered."""
    parser = OneLineArgumentParser(
        prog="kerastrans",
        description="Medical image-to-image translation: denoising, super-resolution, "
        "modality conversion and reconstruction with pix2pix, CycleGAN and AUTOMAP.",
    )
    parser.add_argument("--version", action="version", version=f"kerastrans {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    for name in COMMANDS:
        importlib.import_module(f"kerastrans.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    # The command line (not the library) quiets TensorFlow's C++ start-up log lines;
    # a value the user set is kept.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (DataError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        print(f"kerastrans {args.command}: error: {error}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print(f"kerastrans {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
