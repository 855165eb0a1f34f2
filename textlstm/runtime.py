"""TensorFlow start-up, seeding and version reporting, in one place.

The environment (Keras backend, TensorFlow log level) is set in `textlstm/__init__.py`,
which runs before any module here imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import subprocess
import sys
from types import ModuleType

from textlstm import __version__

log = logging.getLogger(__name__)


def tensorflow() -> ModuleType:
    """Import TensorFlow with textlstm's environment settings and return the module."""
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    return tf


# What TensorFlow's C++ side prints to stderr while it loads and looks for devices, before
# its logging honours TF_CPP_MIN_LOG_LEVEL: absl's notice that it is not initialised yet,
# and INFO lines (I + MMDD: oneDNN, "Could not find cuda drivers", the CPU-feature guard
# and its second line).
_START_UP_NOISE = (
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called|I\d{4} "
    rb"|To enable the following instructions:)"
)
# After "Could not find cuda drivers" (no GPU driver at all), the failed cuInit that follows
# says nothing more; with a driver, it is the one line that says why the GPU is not used.
_NO_DRIVER = rb"\] Could not find cuda drivers"
_CUINIT = rb"^E\d{4} .*\] failed call to cuInit"
# Run in a child process that outlives this one: if TensorFlow aborts while it loads (a
# CPU without the instructions it was built for), its last lines still reach stderr. Lines
# are passed on as they come (a hang shows what came before it); Ctrl-C is for the parent,
# and the filter ends when the pipe does.
_FILTER = f"""
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise, no_driver, cuinit = re.compile({_START_UP_NOISE!r}), re.compile({_NO_DRIVER!r}), re.compile({_CUINIT!r})
seen_no_driver = False
out = sys.stderr.buffer
for line in sys.stdin.buffer:
    seen_no_driver = seen_no_driver or no_driver.search(line) is not None
    if not noise.match(line) and not (seen_no_driver and cuinit.match(line)):
        out.write(line)
        out.flush()
"""
# How long the parent waits for the filter to pass on its last lines after the import: a
# process TensorFlow started meanwhile could hold the pipe open, and must not hold the command.
_FILTER_WAIT_SECONDS = 10


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and let it find its devices with the lines its C++ side prints
    meanwhile, which ignore ``TF_CPP_MIN_LOG_LEVEL``, filtered: INFO notices (and, with no
    GPU driver installed, the failed ``cuInit``) are dropped, every other line reaches stderr.

    For the CLI, whose stderr carries textlstm's own messages (an error is one line). Does
    nothing when TensorFlow is already imported or ``TF_CPP_MIN_LOG_LEVEL`` is 0 (the import
    then comes later, unfiltered), and imports unfiltered when stderr is closed or no Python
    interpreter can run the filter (a frozen application).
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        return
    if sys.stderr is None or not sys.executable or getattr(sys, "frozen", False):
        tensorflow()
        return
    sys.stderr.flush()
    saved = read_end = write_end = -1
    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        with os.fdopen(read_end, "rb") as reader:
            read_end = -1  # closed by the with block
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _FILTER],
                stdin=reader,
                stdout=subprocess.DEVNULL,
                stderr=saved,
                # Out of the terminal's process group: Ctrl-C is for the command alone.
                start_new_session=True,
            )
    except Exception:  # no stderr descriptor, no pipe, no interpreter: import unfiltered
        for fd in (saved, read_end, write_end):
            if fd >= 0:
                os.close(fd)
        tensorflow()
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        # Listing devices runs no op: the runtime stays unconfigured, as multi-worker
        # training needs (collective ops are set up before the first op).
        tensorflow().config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the filter sees its end
        os.close(saved)
        try:
            child.wait(timeout=_FILTER_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pass


def favour_start_up() -> bool:
    """Before TensorFlow is imported by a process that answers a few texts and exits
    (`textlstm predict MODEL TEXT...`): turn TensorFlow's oneDNN graph rewrites off, unless
    ``TF_ENABLE_ONEDNN_OPTS`` is set already. Without oneDNN a one-text predict's first
    model call took 0.12-0.14 s instead of 0.21-0.26 s and loading about 0.05 s less, while
    later calls were as fast either way (docs/accuracy-and-speed.md). Returns whether it
    did; does nothing once TensorFlow is imported, since TensorFlow reads the setting when
    it starts."""
    if "tensorflow" in sys.modules or "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return False
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    log.debug("TF_ENABLE_ONEDNN_OPTS=0: a few texts, where oneDNN's first call costs more than it saves")
    return True


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow ops deterministic.

    Two runs with the same seed on the same machine then produce the same weights.
    """
    import keras
    import numpy as np

    tf = tensorflow()
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide a model's behaviour."""
    import keras
    import numpy as np

    tf = tensorflow()
    versions = {
        "textlstm": __version__,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    return versions
