"""`evaluate`: score a trained model directory on a split of a data source."""

from __future__ import annotations

import heapq
import logging
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from textlstm import artifacts
from textlstm.errors import DataError, InputError
from textlstm.file_sources import ReadOptions
from textlstm.metrics import DEFAULT_THRESHOLD, classification_metrics, headline, multilabel_metrics
from textlstm.model import split_text_model
from textlstm.pipeline import batched, id_dataset, source_errors, text_dataset
from textlstm.preflight import check_batch_size
from textlstm.report import MISTAKES_LIMIT, Mistake, check_report_dir, write_report
from textlstm.runtime import tensorflow
from textlstm.source_spec import data_spec, open_source, reading_options, source_kind
from textlstm.vectorizer import make_vectorizer

tf = tensorflow()
log = logging.getLogger(__name__)


class ConfidentMistakes:
    """Keeps the ``limit`` wrong predictions made with the highest confidence, batch by
    batch, in a heap: memory holds ``limit`` texts, never the corpus.

    Single-label: a mistake is an arg-max label that is not the true one, its confidence
    that label's probability. Multi-label: an example whose predicted label set (at the
    model's ``thresholds``, else `DEFAULT_THRESHOLD`) is not the true set, its confidence
    that of its surest wrong yes/no decision (``p``, or ``1 - p`` for a label wrongly left
    out).
    """

    def __init__(
        self,
        label_names: list[str],
        multi_label: bool = False,
        limit: int = MISTAKES_LIMIT,
        thresholds: Sequence[float] | None = None,
    ) -> None:
        self.label_names = list(label_names)
        self.multi_label = multi_label
        # The same per-label thresholds the metrics use, so the list agrees with them.
        self.thresholds = np.asarray(
            thresholds if thresholds is not None else [DEFAULT_THRESHOLD] * len(self.label_names), np.float64
        )
        self.limit = limit
        self.count = 0  # every mistake seen, not only the kept ones
        self._seen = 0
        self._heap: list[tuple[float, int, Mistake]] = []

    def add(self, probabilities: np.ndarray, labels: np.ndarray, texts: Sequence[bytes | str]) -> None:
        """Take one batch: probabilities ``[n, labels]``, true labels (indices, or multi-hot
        rows) and the ``n`` texts (UTF-8 bytes as tf.data gives them, or str)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        labels = np.asarray(labels)
        if self.multi_label:
            targets = labels > 0.5
            predicted = probabilities >= self.thresholds[None, :]
            wrong_slots = predicted != targets
            slot_confidence = np.where(predicted, probabilities, 1.0 - probabilities)
            confidence = np.where(wrong_slots, slot_confidence, -np.inf).max(axis=1)
            wrong = wrong_slots.any(axis=1)
        else:
            predicted = probabilities.argmax(axis=1)
            confidence = probabilities.max(axis=1)
            wrong = predicted != labels
        order = self._seen + np.arange(len(probabilities))
        self._seen += len(probabilities)
        self.count += int(wrong.sum())
        candidates = np.flatnonzero(wrong)
        if len(self._heap) >= self.limit:
            candidates = candidates[confidence[candidates] > self._heap[0][0]]
        # Only the batch's best few can enter the heap; only their texts are decoded.
        candidates = candidates[np.argsort(-confidence[candidates], kind="stable")[: self.limit]]
        for i in candidates:
            # Ties keep the earlier example: the heap pops the lowest (confidence, -order).
            entry = (
                float(confidence[i]),
                -int(order[i]),
                self._mistake(texts[i], labels[i], predicted[i], confidence[i]),
            )
            if len(self._heap) < self.limit:
                heapq.heappush(self._heap, entry)
            else:
                heapq.heappushpop(self._heap, entry)

    def worst(self) -> list[Mistake]:
        """The kept mistakes, most confident first."""
        return [entry[2] for entry in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]

    def _mistake(self, text: bytes | str, label: Any, predicted: Any, confidence: float) -> Mistake:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if self.multi_label:
            true_names = [n for n, on in zip(self.label_names, np.asarray(label) > 0.5) if on]
            predicted_names = [n for n, on in zip(self.label_names, predicted) if on]
            return Mistake(text, tuple(true_names), tuple(predicted_names), float(confidence))
        return Mistake(text, (self.label_names[int(label)],), (self.label_names[int(predicted)],), float(confidence))


# One traced inference function per classifier: training scores validation after every
# epoch, and a new tf.function each time would be traced again each time.
_COMPILED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _compiled(model: Any) -> Any:
    """The inference function of a classifier or trainer, traced once per model (each
    epoch's validation reuses it)."""
    if model not in _COMPILED:
        # A weak reference: the cached function must not keep its key alive.
        ref = weakref.ref(model)
        _COMPILED[model] = tf.function(
            lambda ids: ref()(ids, training=False),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
        )
    return _COMPILED[model]


def predict_batches(
    classifier: Any, batches: Any, mistakes: ConfidentMistakes | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run an ids -> probabilities classifier over ``(ids, label)`` batches and return all
    ``(labels, probabilities)``. With ``mistakes`` the batches are ``(ids, (label, text))``
    and each one is also handed to ``mistakes``; the texts are not kept."""
    predict = _compiled(classifier)
    probabilities, labels = [], []
    for ids, y in batches:
        if mistakes is not None:
            y, texts = y
        batch_probabilities, batch_labels = predict(ids).numpy(), y.numpy()
        probabilities.append(batch_probabilities)
        labels.append(batch_labels)
        if mistakes is not None:
            mistakes.add(batch_probabilities, batch_labels, texts.numpy())
    if not labels:
        raise DataError("no examples to evaluate; expected a split with at least one example")
    return np.concatenate(labels), np.concatenate(probabilities)


def predict_members(trainer: Any, batches: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run a model with several probability outputs (`textlstm.model.training_model` of an
    ensemble: the mix, then each member) over ``(ids, label)`` batches; return the labels
    and each member's probabilities (the outputs after the first)."""
    predict = _compiled(trainer)
    labels: list[np.ndarray] = []
    members: list[list[np.ndarray]] = []
    for ids, y in batches:
        outputs = predict(tf.cast(ids, tf.int32))
        labels.append(y.numpy())
        members.append([np.asarray(output) for output in outputs[1:]])
    if not labels:
        raise DataError("no examples to evaluate; expected a split with at least one example")
    return np.concatenate(labels), [np.concatenate(parts) for parts in zip(*members, strict=True)]


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
    return score_probabilities(labels, probabilities, label_names, multi_label, thresholds)


def score_probabilities(
    labels: np.ndarray,
    probabilities: np.ndarray,
    label_names: list[str],
    multi_label: bool = False,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """`score_dataset`'s figures for predictions already made: ``labels`` (label indices,
    or multi-hot with ``multi_label``) and the model's ``probabilities``."""
    if multi_label:
        return multilabel_metrics(
            labels, probabilities, label_names, DEFAULT_THRESHOLD if thresholds is None else thresholds
        )
    return classification_metrics(labels, probabilities, label_names)


def _reading_as_trained(manifest: dict[str, Any], data: str) -> ReadOptions | None:
    """The reading options the run read its training data with (columns, format,
    encoding, label map ...), when ``data`` is the same kind of source (class folders,
    or files of the same format); otherwise None, the defaults."""
    record = manifest.get("data")
    trained = record.get("read_options") if isinstance(record, dict) else None
    source = record.get("source") if isinstance(record, dict) else None
    if not isinstance(trained, dict) or not isinstance(source, str):
        return None
    try:
        options = ReadOptions.from_dict(trained)
    except TypeError:  # a manifest from another version of textlstm
        return None
    if not options.given_flags():
        return None
    kind = source_kind(data, options)
    if kind is None or kind != source_kind(source, options):
        return None
    log.info("reading %s as the model's training data was read: %s", data, options.as_flags())
    return options


def evaluate(
    model_dir: str | Path,
    data: str,
    split: str | None = None,
    batch_size: int = 256,
    output: str | Path | None = None,
    read_options: ReadOptions | None = None,
    report_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a model directory on ``split`` of ``data`` (default: the config's eval split).

    With ``output`` the report is also written there as JSON. With ``report_dir`` a report
    folder (``metrics.json``, ``report.md`` and PNG pictures, see `textlstm.report`) is
    written there; an existing non-empty folder is refused before anything is read.
    ``read_options`` tells how to read a file source (columns, format, label rules); None
    reads ``data`` as the run read its training data when both are the same kind of source
    (files of one format, or class folders), and with the defaults otherwise.

    Returns a JSON-ready dict with ``accuracy``, ``loss``, ``macro_f1``, ``weighted_f1``,
    ``expected_calibration_error``, ``per_label`` precision/recall/f1/support,
    ``confusion_matrix`` (rows true, columns predicted), ``label_names``, ``examples``
    (and ``roc_auc``, ``average_precision`` for two labels), plus ``split``, ``data`` and
    ``seconds``. A multi-label model reports ``micro_f1``, ``macro_f1``,
    ``subset_accuracy``, ``hamming_loss``, ``loss``, ``expected_calibration_error`` and
    ``per_label`` instead (see `multilabel_metrics`).
    """
    started = time.time()
    if output is not None:
        output = artifacts.path_argument(output, "output", "a JSON file to write")
        artifacts.check_new_file(output, "--output")
    if report_dir is not None:
        report_dir = check_report_dir(report_dir)
    data = data_spec(data)
    read_options = reading_options(read_options)
    check_batch_size(batch_size)
    info = artifacts.read_run_info(model_dir)
    if read_options is None:
        read_options = _reading_as_trained(info.manifest, data)
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
        data_record = info.manifest.get("data")
        trained = data_record.get("read_options") if isinstance(data_record, dict) else None
        trained_map = trained.get("label_map") if isinstance(trained, dict) else None
        given_map = (read_options or ReadOptions()).label_map
        hint = ""
        if isinstance(trained_map, dict) and set(unknown) & set(trained_map) and trained_map != given_map:
            # The usual cause: the run renamed its labels and this evaluation does not.
            hint = f" (the model was trained with --label-map {','.join(f'{k}={v}' for k, v in trained_map.items())})"
        raise DataError(
            f"{data} has labels the model does not know: {unknown}; expected labels among {info.labels}{hint}"
        )
    skipped = source.skipped(split) if hasattr(source, "skipped") else None
    if skipped:
        log.info("%d rows of %s have an empty text and were skipped (--strict makes them an error)", skipped, data)
    model = artifacts.load_text_model(info.path)
    vectorizer_layer, classifier = split_text_model(model)
    vectorizer = make_vectorizer(info.config.vectorizer, vocabulary=vectorizer_layer.get_vocabulary(), ragged=True)
    max_length = info.config.vectorizer.max_length
    with source_errors():
        multi_label = bool(info.config.data.multi_label)
        texts = text_dataset(source, split, info.labels, multi_label=multi_label, end_on_error=True)
        mistakes = None
        if report_dir is not None:
            # The text rides along with the label through vectorizing and bucketing, so
            # the mistakes list sees each batch's texts without a second pass.
            texts = texts.map(lambda text, label: (text, (label, text)))
            mistakes = ConfidentMistakes(info.labels, multi_label, thresholds=info.thresholds)
        batches = batched(
            id_dataset(texts, vectorizer, max_length, info.config.vectorizer.keep),
            batch_size,
            info.config.lstm_steps(),
        )
        labels, probabilities = predict_batches(classifier, batches, mistakes)
    metrics = score_probabilities(labels, probabilities, info.labels, multi_label, info.thresholds)
    metrics.update({"data": data, "split": split, "seconds": round(time.time() - started, 1)})
    if skipped is not None:
        metrics["skipped_empty_rows"] = skipped
    log.info("%s %s: %s %.4f on %d examples", data, split, *headline(metrics), metrics["examples"])
    if output is not None:
        try:
            artifacts.write_new_json(Path(output), metrics, "--output")
        except OSError as exc:
            raise InputError(
                f"cannot write the report to {output}: {exc.strerror}; expected a writable file path"
            ) from exc
    if report_dir is not None and mistakes is not None:
        write_report(
            report_dir,
            metrics,
            labels,
            probabilities,
            mistakes.worst(),
            mistake_count=mistakes.count,
            model_dir=str(model_dir),
            manifest=info.manifest,
        )
        log.info("report written to %s", report_dir)
    return metrics
