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
# INFO lines (I + MMDD: oneDNN, "Could not find cuda drivers", the CPU-feature guard and
# its second line) and, on a machine without a GPU, a failed cuInit.
_START_UP_NOISE = (
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I\d{4} |To enable the following instructions:|E\d{4} .*\] failed call to cuInit)"
)
# Run in a child process that outlives this one: if TensorFlow aborts while it loads (a
# CPU without the instructions it was built for), its last lines still reach stderr.
_FILTER = f"""
import re, sys
noise = re.compile({_START_UP_NOISE!r})
lines = sys.stdin.buffer.read().splitlines(keepends=True)
sys.stderr.buffer.write(b"".join(line for line in lines if not noise.match(line)))
"""


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and let it find its devices with the lines its C++ side prints
    meanwhile, which ignore ``TF_CPP_MIN_LOG_LEVEL``, filtered: INFO notices and a failed
    ``cuInit`` are dropped, every other line reaches stderr.

    For the CLI, whose stderr carries textlstm's own messages (an error is one line).
    Does nothing when TensorFlow is already imported or ``TF_CPP_MIN_LOG_LEVEL`` is 0.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no stderr descriptor to filter
        tensorflow()
        return
    try:
        with os.fdopen(read_end, "rb") as reader:
            child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER], stdin=reader, stderr=saved)
    except OSError:  # no interpreter to run the filter with (an embedded Python)
        os.close(write_end)
        os.close(saved)
        tensorflow()
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        tensorflow().config.list_physical_devices()
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the filter sees its end
        os.close(saved)
        child.wait()


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
