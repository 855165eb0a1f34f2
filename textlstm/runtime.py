"""TensorFlow start-up, seeding and version reporting, in one place.

The environment (Keras backend, TensorFlow log level) is set in `textlstm/__init__.py`,
which runs before any module here imports TensorFlow.
"""

from __future__ import annotations

import logging
import platform
import random
from types import ModuleType

from textlstm import __version__

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
