"""`evaluate`: score a trained model directory on a split of a data source."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from textlstm import artifacts
from textlstm.errors import DataError, InputError, describe
from textlstm.file_sources import ReadOptions
from textlstm.metrics import DEFAULT_THRESHOLD, classification_metrics, headline, multilabel_metrics
from textlstm.model import split_text_model
from textlstm.pipeline import batched, id_dataset, source_errors, text_dataset
from textlstm.runtime import tensorflow
from textlstm.source_spec import open_source
from textlstm.vectorizer import make_vectorizer

tf = tensorflow()
log = logging.getLogger(__name__)


def predict_batches(classifier: Any, batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run an ids -> probabilities classifier over ``(ids, label)`` batches; return the
    labels (or multi-hot targets) and the probabilities, in batch order."""
    predict = tf.function(lambda ids: classifier(ids, training=False), reduce_retracing=True)
    probabilities, labels = [], []
    for ids, y in batches:
        probabilities.append(predict(ids).numpy())
        labels.append(y.numpy())
    if not labels:
        raise DataError("no examples to evaluate; expected a split with at least one example")
    return np.concatenate(labels), np.concatenate(probabilities)


def score_dataset(
    classifier: Any,
    batches: Any,
    label_names: list[str],
    multi_label: bool = False,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Run an ids -> probabilities classifier over ``(ids, label)`` batches and score it
    (``label`` multi-hot and multi-label metrics with ``multi_label``, each label predicted
    at its entry of ``thresholds``, default 0.5)."""
    labels, probabilities = predict_batches(classifier, batches)
    if multi_label:
        return multilabel_metrics(
            labels, probabilities, label_names, DEFAULT_THRESHOLD if thresholds is None else thresholds
        )
    return classification_metrics(labels, probabilities, label_names)


def evaluate(
    model_dir: str | Path,
    data: str,
    split: str | None = None,
    batch_size: int = 256,
    output: str | Path | None = None,
    read_options: ReadOptions | None = None,
) -> dict[str, Any]:
    """Evaluate a model directory on ``split`` of ``data`` (default: the config's eval split).

    With ``output`` the report is also written there as JSON. ``read_options`` tells how
    to read a file source (columns, format, label rules).

    Returns a JSON-ready dict with ``accuracy``, ``loss``, ``macro_f1``, ``weighted_f1``,
    ``per_label`` precision/recall/f1/support, ``confusion_matrix`` (rows true, columns
    predicted), ``label_names``, ``examples``, plus ``split``, ``data`` and ``seconds``.
    A multi-label model reports ``micro_f1``, ``macro_f1``, ``subset_accuracy``,
    ``hamming_loss``, ``loss`` and ``per_label`` instead (see `multilabel_metrics`), each
    label predicted at the model's threshold for it (``thresholds``, from thresholds.json).
    """
    started = time.time()
    if output is not None and not Path(output).parent.is_dir():
        raise InputError(f"cannot write the report; {describe('a file in an existing directory', str(output))}")
    info = artifacts.read_run_info(model_dir)
    source = open_source(data, read_options)
    fixed = source.fixed_split
    if split and fixed and split != fixed:
        raise DataError(
            f"{data} fixes the split {fixed!r} but --split asks for {split!r}; expected one of them, not both"
        )
    split = split or fixed or info.config.data.eval_split
    source.check_split(split)
    unknown = sorted(set(source.label_names()) - set(info.labels))
    if unknown:
        raise DataError(f"{data} has labels the model does not know: {unknown}; expected labels among {info.labels}")
    model = artifacts.load_text_model(info.path)
    vectorizer_layer, classifier = split_text_model(model)
    vectorizer = make_vectorizer(info.config.vectorizer, vocabulary=vectorizer_layer.get_vocabulary(), ragged=True)
    max_length = info.config.vectorizer.max_length
    with source_errors():
        multi_label = bool(info.config.data.multi_label)
        texts = text_dataset(source, split, info.labels, multi_label=multi_label)
        batches = batched(
            id_dataset(texts, vectorizer, max_length, info.config.vectorizer.keep), batch_size, max_length
        )
        metrics = score_dataset(classifier, batches, info.labels, multi_label, info.thresholds)
    metrics.update({"data": data, "split": split, "seconds": round(time.time() - started, 1)})
    log.info("%s %s: %s %.4f on %d examples", data, split, *headline(metrics), metrics["examples"])
    if output is not None:
        try:
            artifacts.write_json(Path(output), metrics)
        except OSError as exc:
            raise InputError(f"cannot write the report to {output}: {exc.strerror}") from exc
    return metrics
