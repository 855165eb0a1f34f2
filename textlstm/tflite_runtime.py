"""Run a TFLite export: the plain-Python tokenizer, then the TFLite interpreter."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from textlstm import artifacts
from textlstm.errors import ModelDirError
from textlstm.tokenizer import Tokenizer

INPUT_NAME = "token_ids"
OUTPUT_NAME = "probabilities"


def _interpreter_class() -> Any:
    """LiteRT's interpreter when installed (`pip install ai-edge-litert`), else the one
    TensorFlow still ships (deprecated there, hence the silenced warning)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        from textlstm.runtime import tensorflow

        return tensorflow().lite.Interpreter


class TFLiteModel:
    """A TFLite export folder: texts in, probabilities out, one text per invocation."""

    def __init__(self, path: str | Path, num_threads: int | None = None) -> None:
        """Open the export in ``path`` (a folder written by `export --format tflite`);
        raise ModelDirError naming any missing or unreadable piece."""
        path = Path(path)
        missing = [name for name in artifacts.TFLITE_FILES if not (path / name).is_file()]
        if missing:
            raise ModelDirError(
                f"TFLite export {path} is incomplete: missing {', '.join(missing)}; "
                f"expected all of {', '.join(artifacts.TFLITE_FILES)}"
            )
        self.path = path
        self.labels: list[str] = artifacts.read_labels(path / artifacts.LABELS_FILE)
        self.metadata: dict[str, Any] = artifacts.read_json(path / artifacts.EXPORT_METADATA_FILE)
        # A multi-label model's threshold per label (None for single-label); TFLite's only
        # output is probabilities, so the caller applies them.
        self.thresholds: list[float] | None = artifacts.export_thresholds(
            self.metadata, self.labels, str(path / artifacts.EXPORT_METADATA_FILE)
        )
        config = artifacts.read_json(path / artifacts.TOKENIZER_CONFIG_FILE)
        try:
            self.tokenizer = Tokenizer.from_files(path / artifacts.VOCAB_FILE, path / artifacts.TOKENIZER_CONFIG_FILE)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(
                f"{path / artifacts.TOKENIZER_CONFIG_FILE} is invalid ({exc}); received {config!r}"
            ) from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self._interpreter = _interpreter_class()(
                    model_path=str(path / artifacts.TFLITE_MODEL_FILE), num_threads=num_threads
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelDirError(f"cannot load {path / artifacts.TFLITE_MODEL_FILE}: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or int(outputs[0]["shape"][-1]) != len(self.labels):
            raise ModelDirError(
                f"{path / artifacts.TFLITE_MODEL_FILE} does not match {artifacts.LABELS_FILE}; expected one "
                f"{INPUT_NAME} input and {len(self.labels)} probabilities"
            )
        self._input = inputs[0]["index"]
        self._input_dtype = inputs[0]["dtype"]
        self._output = outputs[0]["index"]
        self._length = -1

    @property
    def multi_label(self) -> bool:
        """True when the model has independent sigmoid outputs."""
        return bool(self.metadata.get("config", {}).get("data", {}).get("multi_label"))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Probabilities, shape [len(texts), len(labels)]."""
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for i, text in enumerate(texts):
            ids = self.tokenizer.ids(text) or [0]  # an empty text is one padding step, as in the SavedModel
            if len(ids) != self._length:
                # Reallocating is needed only when the length changes; callers sort by length.
                self._interpreter.resize_tensor_input(self._input, [1, len(ids)])
                self._interpreter.allocate_tensors()
                self._length = len(ids)
            self._interpreter.set_tensor(self._input, np.asarray([ids], dtype=self._input_dtype))
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output)[0]
        return out
