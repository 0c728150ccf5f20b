"""Entry point of the ``kerastrans`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kerastrans import __version__
from kerastrans.cli._quiet import quiet_start
from kerastrans.errors import DataError

__all__ = ["COMMANDS", "build_parser", "main", "parse_arguments"]

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
        "modality conversion and reconstruction with pix2pix, CycleGAN, AUTOMAP and "
        "physics-based unrolled networks.",
    )
    parser.add_argument("--version", action="version", version=f"kerastrans {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    for name in COMMANDS:
        importlib.import_module(f"kerastrans.cli.{name}").add_parser(subparsers)
    return parser


def parse_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse ``argv`` like ``parser.parse_args``, with ``KEY=VALUE`` overrides anywhere.

    Argparse fills a positional list from one run of arguments only, so the
    overrides of a command that takes them (``overrides``) may stand between,
    before or after options, e.g. ``fit a.b=1 --data D c.d=2 --set e.f=3``.
    """
    args, extras = parser.parse_known_args(argv)
    if extras and isinstance(getattr(args, "overrides", None), list):
        overrides = [arg for arg in extras if "=" in arg and not arg.startswith("-")]
        args.overrides.extend(overrides)
        extras = [arg for arg in extras if arg not in overrides]
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    # The command line (not the library) starts TensorFlow without its start-up noise;
    # benchmark runs its script in a child process (which inherits the log level).
    quiet_start(import_tensorflow=args.command != "benchmark")
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
