"""textlstm: train, evaluate, serve and export LSTM text classifiers built with Keras.

The public API is four functions, `train`, `evaluate`, `predict` and `export`, plus the
configuration tree in `textlstm.config`. They are imported lazily so that
``import textlstm`` (and ``textlstm --help``) does not pay for importing TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"

# Set before any submodule imports Keras: Keras 3 picks its backend at import time, and
# textlstm builds TensorFlow graphs (tf.data, SavedModel export) whatever keras.json says.
os.environ["KERAS_BACKEND"] = "tensorflow"
# TensorFlow's C++ info logs are noise on a CLI's stderr; warnings and errors stay visible.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

_LAZY = {
    "train": "textlstm.training",
    "TrainResult": "textlstm.training",
    "evaluate": "textlstm.evaluation",
    "predict": "textlstm.prediction",
    "load_predictor": "textlstm.prediction",
    "export": "textlstm.exporting",
    "Config": "textlstm.config",
    "load_config": "textlstm.config",
    "ReadOptions": "textlstm.file_sources",
    "inspect_data": "textlstm.inspection",
}
# Submodules the README sends Python users to as attributes (textlstm.errors.DataError).
_SUBMODULES = ("errors", "report", "config")

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import public API members on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"textlstm.{name}")
    raise AttributeError(f"module 'textlstm' has no attribute {name!r}")
