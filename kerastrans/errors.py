"""Exceptions raised for bad input, shared by every layer of the package.

Every message is one line that names the offending file (or argument) first
and then the problem, e.g. ``scan/0001.dcm: truncated pixel data (expected
524288 bytes, got 1024)``. The CLI prints the message as it is.
"""

from __future__ import annotations

import os

__all__ = ["DataError", "file_error"]


class DataError(ValueError):
    """Input data that cannot be used: unreadable, corrupt, wrong shape, unpairable.

    A subclass of `ValueError`, so callers that do not know kerastrans can still
    catch it the usual way.
    """


def file_error(path: str | os.PathLike, problem: str) -> DataError:
    """Build a `DataError` whose one-line message is ``"<path>: <problem>"``.

    Args:
        path: The file or folder at fault.
        problem: What is wrong with it; newlines are folded into spaces.

    Returns:
        The exception, ready to ``raise``.

    >>> str(file_error("a.dcm", "no pixel data"))
    'a.dcm: no pixel data'
    """
    one_line = " ".join(str(problem).split())
    return DataError(f"{os.fspath(path)}: {one_line}")
