"""Keep TensorFlow's native start-up chatter off the CLI's stderr.

TensorFlow's C++ side prints a handful of lines when it loads and first runs an op: absl
INFO lines written before ``absl::InitializeLog()`` (oneDNN notices, "Could not find cuda
drivers", the CPU-feature guard) and, on a machine without a GPU, a failed ``cuInit``.
They bypass Python's logging and, in this TensorFlow build, ``TF_CPP_MIN_LOG_LEVEL`` as
well, so a CLI error would otherwise reach the terminal as its one line after six others.

`native_log_filter` routes file descriptor 2 through a pipe for the duration of a command;
a thread forwards everything to the real stderr except those lines. Text that cannot be the
start of such a line is forwarded at once, so progress bars (``\\r`` without a newline) stay
live. Pure Python, no TensorFlow import.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import Iterator

# An absl line: severity letter, MMDD, time, thread id, file:line] message.
# (Before InitializeLog the time is printed as 00:00:<seconds since the epoch>.)
_ABSL = re.compile(rb"[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")
_DROPPED_PREFIXES = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    # The CPU-feature guard's second line.
    b"To enable the following instructions:",
)
# Errors that only say there is no GPU, that a CPU lacks an optional instruction set, or
# that tf.data's graph carries an attribute this runtime ignores.
_DROPPED_ERRORS = (
    b"failed call to cuInit",
    b"oneDNN supports DT_BOOL only on platforms with AVX-512",
    b"NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition",
)
# The longest prefix a dropped line can begin with before it can be recognised.
_HOLD = max(len(p) for p in _DROPPED_PREFIXES)
# Whether fd 2 is already filtered (a nested command group must not filter it twice).
_active = False


def is_native_noise(line: bytes) -> bool:
    """Whether ``line`` (without its newline) is start-up chatter to drop: an absl INFO
    line, the pre-InitializeLog warning, the CPU-feature guard's instructions line, or a
    "no GPU" error. Warnings and other errors are kept."""
    if line.startswith(_DROPPED_PREFIXES):
        return True
    match = _ABSL.match(line)
    if match is None:
        return False
    return line.startswith(b"I") or (line.startswith(b"E") and any(e in line for e in _DROPPED_ERRORS))


def _may_become_noise(partial: bytes) -> bool:
    """Whether an incomplete line could still turn out to be noise (then it is held)."""
    if any(p.startswith(partial) or partial.startswith(p) for p in _DROPPED_PREFIXES):
        return True
    return re.match(rb"[IE](\d{0,4}|\d{4} .*)$", partial, re.DOTALL) is not None and b"\r" not in partial


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd``, dropping it if the real stderr is gone: the thread must
    keep draining the pipe, or every writer to stderr would block once it is full."""
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def _forward(read_fd: int, write_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = [line + b"\n" for line in lines if not is_native_noise(line)]
        if pending and not _may_become_noise(pending[:_HOLD]):
            out.append(pending)
            pending = b""
        if out:
            _write_all(write_fd, b"".join(out))
    if pending and not is_native_noise(pending):
        _write_all(write_fd, pending)


@contextlib.contextmanager
def native_log_filter() -> Iterator[None]:
    """Filter fd 2 as described above while the block runs. Does nothing when stderr is
    not a real file descriptor (an in-process test runner) or when the user asked for
    TensorFlow's INFO lines (``TF_CPP_MIN_LOG_LEVEL=0``)."""
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = -1
    global _active
    if _active or stderr_fd != 2 or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    _active = True
    sys.stderr.flush()
    real = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, real), name="textlstm-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        # Closing the pipe's last write end (fd 2) lets the thread drain it and stop.
        os.dup2(real, 2)
        _active = False
        # A child process still holding the pipe would keep the thread reading: then both
        # ends are left to the process's exit rather than closed under the thread.
        thread.join(timeout=5)
        if not thread.is_alive():
            os.close(read_fd)
            os.close(real)
