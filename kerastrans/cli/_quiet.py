"""A quiet start for every ``kerastrans`` command: no TensorFlow or absl start-up noise.

TensorFlow prints, on every start, lines that say nothing about the user's
work: the oneDNN notice and absl's "before InitializeLog" warning (written
while TensorFlow loads, before ``TF_CPP_MIN_LOG_LEVEL`` is read), ``failed
call to cuInit`` on a machine without a GPU driver, and TensorFlow Datasets'
``FeatureConnector.dtype`` deprecation warnings. The command line (never the
library) hides exactly these:

- ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (TensorFlow's C++ log lines off;
  errors still reach the user as Python exceptions); a value the user set is
  kept, and 0 keeps every line below too.
- TensorFlow is imported with the process' standard error captured; the
  known start-up lines are dropped and any other line is written back.
- A filter on the ``absl`` logger drops the known deprecation warnings.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

__all__ = ["drop_noise", "quiet_start"]

#: Lines TensorFlow writes while it is imported that carry no information for users.
_IMPORT_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|\] oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
)
#: absl warnings of libraries about their own deprecated fields, not about user input.
_DEPRECATIONS = ("`FeatureConnector.dtype` is deprecated",)


class _DropDeprecations(logging.Filter):
    """Drops the absl log records of `_DEPRECATIONS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _DEPRECATIONS)


def quiet_start(*, import_tensorflow: bool = True) -> None:
    """Set the log level, import TensorFlow with its noise filtered, filter known warnings.

    Call it once the command line is parsed (``--help`` needs no TensorFlow).
    Does nothing that a user asked otherwise: with ``TF_CPP_MIN_LOG_LEVEL=0``
    TensorFlow's output is left as it is.

    Args:
        import_tensorflow: Import TensorFlow now (filtered); false for a
            command that does not use it in this process.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropDeprecations) for f in absl_logger.filters):
        absl_logger.addFilter(_DropDeprecations())
    level = os.environ["TF_CPP_MIN_LOG_LEVEL"].strip()
    if import_tensorflow and "tensorflow" not in sys.modules and level not in ("", "0"):
        _import_tensorflow_filtered()


def _import_tensorflow_filtered() -> None:
    """Import TensorFlow with file descriptor 2 captured; write back what is not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.write(drop_noise(capture.read().decode(errors="replace")))
            sys.stderr.flush()


def drop_noise(text: str) -> str:
    """``text`` without the lines of TensorFlow's known start-up noise.

    >>> drop_noise("I0000 port.cc:153] oneDNN custom operations are on. ...\\nreal problem\\n")
    'real problem\\n'
    """
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not _IMPORT_NOISE.search(line))
