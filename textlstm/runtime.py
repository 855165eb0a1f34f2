"""TensorFlow start-up, seeding and version reporting, in one place.

Every module that needs TensorFlow imports it through `tensorflow()` here so that the
environment (backend, log level) is set before the first import.
"""

from __future__ import annotations

import logging
import os
import platform
import random
from types import ModuleType

from textlstm import __version__

# Keras 3 picks its backend at import time; textlstm builds TensorFlow graphs (tf.data,
# SavedModel export) and so needs the TensorFlow backend whatever the user's keras.json says.
os.environ["KERAS_BACKEND"] = "tensorflow"
# C++ info logs (oneDNN, missing CUDA) are noise on stderr for a CLI; warnings stay visible.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger(__name__)


def tensorflow() -> ModuleType:
    """Import TensorFlow with textlstm's environment settings and return the module."""
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    return tf


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
