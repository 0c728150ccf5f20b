"""Placeholder for subcommands whose implementation has not landed yet.

They are listed by ``kerastrans --help`` so the command surface is stable, but
running one says plainly that it is not available and exits non-zero: nothing
pretends to work.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_pending_parser"]

#: Exit status of a subcommand that is not available yet.
EXIT_NOT_AVAILABLE = 3


def add_pending_parser(subparsers, name: str, help_text: str, issue: str) -> None:
    """Register ``name`` as a subcommand that reports it is not implemented yet."""
    parser = subparsers.add_parser(
        name,
        help=f"{help_text} [not available yet]",
        description=f"{help_text} Not available yet: it lands with the '{issue}' work.",
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> int:
        print(f"kerastrans {name}: not available yet (coming with '{issue}')", file=sys.stderr)
        return EXIT_NOT_AVAILABLE

    parser.set_defaults(func=run)
