"""Argparse ``type=`` functions shared by the subcommands: numbers with a lower bound.

A bad value becomes argparse's one-line usage error (exit status 2), e.g.
``kerastrans fit: error: argument --epochs: must be > 0, got '0'``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = [
    "at_least_one",
    "count",
    "non_negative_float",
    "number",
    "positive_float",
    "positive_int",
]


def number(kind: type, low: float, *, strict: bool) -> Callable[[str], Any]:
    """Return an argparse type: a ``kind`` number above ``low`` (``strict``) or at least ``low``.

    >>> positive = number(int, 0, strict=True)
    >>> positive("3")
    3
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value

    # Integers above ``low`` read better as "at least low + 1".
    bound = f">= {low + 1}" if strict and kind is int else f"{'>' if strict else '>='} {low}"
    parse.__name__ = f"{kind.__name__} {bound}"
    return parse


#: An integer >= 0.
count = number(int, 0, strict=False)
#: An integer >= 1.
positive_int = number(int, 0, strict=True)
#: A number >= 0.
non_negative_float = number(float, 0, strict=False)
#: A number > 0.
positive_float = number(float, 0, strict=True)
#: A number >= 1.
at_least_one = number(float, 1, strict=False)
