"""`predict`: classify raw texts with a model directory or an exported SavedModel."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from textlstm import artifacts
from textlstm.errors import InputError, ModelDirError, describe
from textlstm.metrics import DEFAULT_THRESHOLD
from textlstm.runtime import tensorflow

tf = tensorflow()


class Predictor:
    """Texts in, probabilities out, from either kind of model on disk."""

    def __init__(
        self, labels: list[str], probabilities_fn: Any, kind: str, path: Path, multi_label: bool = False
    ) -> None:
        self.labels = labels
        self._fn = probabilities_fn
        self.kind = kind
        self.path = path
        # Multi-label models predict every label whose probability reaches the threshold.
        self.multi_label = multi_label
        self.threshold = DEFAULT_THRESHOLD

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, shape [len(texts), len(labels)]."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.asarray(self._fn(tf.constant(texts, dtype=tf.string)))

    def records(self, texts: list[str], probabilities: np.ndarray) -> list[dict[str, Any]]:
        """One result dict per text: text, label, score, probabilities by label name, and
        for a multi-label model ``labels``, every label at or above the threshold."""
        best = probabilities.argmax(axis=1)
        records = []
        for text, p, b in zip(texts, probabilities, best, strict=False):
            record: dict[str, Any] = {"text": text, "label": self.labels[int(b)], "score": float(p[b])}
            if self.multi_label:
                record["labels"] = [name for name, v in zip(self.labels, p, strict=False) if v >= self.threshold]
            record["probabilities"] = {name: float(v) for name, v in zip(self.labels, p, strict=False)}
            records.append(record)
        return records


def load_predictor(model: str | Path) -> Predictor:
    """Open a run directory or an export (a version folder, or its parent: highest version)."""
    path = Path(model)
    if not path.exists():
        raise ModelDirError(f"model not found; {describe('a run directory or an exported SavedModel', str(path))}")
    if artifacts.is_run_dir(path) or (path / artifacts.MODEL_FILE).exists():
        info = artifacts.read_run_info(path)
        text_model = artifacts.load_text_model(path)
        fn = tf.function(
            lambda text: text_model(text, training=False),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        return Predictor(info.labels, lambda t: fn(t).numpy(), "run", path, bool(info.config.data.multi_label))
    saved = artifacts.find_saved_model(path)
    if saved is None:
        raise ModelDirError(
            f"{path} is neither a run directory (missing {artifacts.MANIFEST_FILE}) nor an export "
            f"(missing {artifacts.SAVED_MODEL_FILE}); expected the output of textlstm train or export"
        )
    labels_path = saved / artifacts.EXPORT_ASSETS_DIR / artifacts.LABELS_FILE
    if not labels_path.is_file():
        raise ModelDirError(
            f"export {saved} is missing {labels_path.relative_to(saved)}; expected an export written by textlstm"
        )
    labels = artifacts.read_json(labels_path)
    metadata_path = saved / artifacts.EXPORT_ASSETS_DIR / artifacts.EXPORT_METADATA_FILE
    metadata = artifacts.read_json(metadata_path) if metadata_path.is_file() else {}
    multi_label = bool(metadata.get("config", {}).get("data", {}).get("multi_label"))
    try:
        serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    except Exception as exc:  # TensorFlow raises several types for a broken SavedModel
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDirError(f"cannot load the SavedModel {saved}: {first}") from exc
    return Predictor(labels, lambda t: serve(text=t)["probabilities"].numpy(), "export", saved, multi_label)


def iter_predictions(predictor: Predictor, texts: Iterable[str], batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Yield result dicts in input order, computing one batch at a time (for pipes)."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from predictor.records(batch, predictor.probabilities(batch))
            batch = []
    if batch:
        yield from predictor.records(batch, predictor.probabilities(batch))


def predict_iter(model: str | Path | Predictor, texts: Iterable[str], batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Classify a stream of texts batch by batch, yielding one result dict per text in
    input order; raise InputError when the stream holds no text at all.
    """
    texts = iter(texts)
    first = next(texts, None)
    if first is None:
        raise InputError("no texts to predict; expected at least one text (arguments, or lines on stdin with -)")
    predictor = model if isinstance(model, Predictor) else load_predictor(model)

    def checked() -> Iterator[str]:
        for text in itertools.chain([first], texts):
            if not isinstance(text, str):
                raise InputError(f"texts must be strings; {describe('str', type(text).__name__)}")
            yield text

    yield from iter_predictions(predictor, checked(), batch_size)


def predict(model: str | Path | Predictor, texts: Iterable[str], batch_size: int = 64) -> list[dict[str, Any]]:
    """Classify texts; return one dict per text with ``text``, ``label``, ``score`` and
    ``probabilities`` (label name -> probability), in input order.
    """
    return list(predict_iter(model, texts, batch_size))
