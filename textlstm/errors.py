"""The textlstm exception hierarchy: every user-facing failure is one of these.

Messages follow "what went wrong; expected X; received Y" so that a single line tells the
user what to change. The CLI turns any `TextlstmError` into that line and exit code 2.
"""

from __future__ import annotations

import errno
from typing import Any

# errno values of a disk that is full or read-only: the CLI names the path in one line.
UNWRITABLE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)


class TextlstmError(Exception):
    """Base class of every error textlstm raises on bad input or a broken artifact."""


class ConfigError(TextlstmError):
    """A configuration file, key or value is invalid."""


class DataError(TextlstmError):
    """A data source is missing, malformed or does not hold what was asked for."""


class ModelDirError(TextlstmError):
    """A model (run) directory or export is missing a piece or cannot be used."""


class OutputExistsError(TextlstmError):
    """An output location already holds something that would be overwritten."""


class InputError(TextlstmError):
    """Input given to a command (texts, options) is empty or invalid."""


def describe(expected: str, received: Any) -> str:
    """Return the standard "expected ...; received ..." tail of an error message."""
    return f"expected {expected}; received {received!r}"


class ExportError(TextlstmError):
    """An export could not be written or did not come out as specified."""


class ServeError(TextlstmError):
    """`serve` cannot start: no loadable export, the port is taken, ..."""


class DistributedError(TextlstmError):
    """The workers of a distributed run lost each other or disagree about the run."""


class TrainingError(TextlstmError):
    """Training itself failed: the loss stopped being a finite number (it diverged)."""
