"""Classification metrics computed from predicted probabilities (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

_EPSILON = 1e-7


def _per_label(
    names: list[str], precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, support: np.ndarray
) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """Accuracy, cross-entropy loss, per-label precision/recall/F1/support, macro and
    weighted F1, and the confusion matrix (rows: true label, columns: predicted label).

    A label never predicted has precision 0 (not NaN), so macro averages stay defined.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n = len(label_names)
    if labels.size == 0:
        raise ValueError("no examples to score")
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(n), where=predicted_count > 0)
    recall = np.divide(true_positive, support, out=np.zeros(n), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n), where=denominator > 0)
    picked = probabilities[np.arange(labels.size), labels]
    loss = float(-np.mean(np.log(np.clip(picked, _EPSILON, 1.0))))
    # Like scikit-learn: average over labels that occur in the truth or the predictions.
    present = (support > 0) | (predicted_count > 0)
    return {
        "examples": int(labels.size),
        "accuracy": float(true_positive.sum() / labels.size),
        "loss": loss,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "label_names": list(label_names),
        "per_label": _per_label(label_names, precision, recall, f1, support),
        "confusion_matrix": confusion.tolist(),
    }


# Multi-label predictions are the labels whose probability reaches this threshold.
DEFAULT_THRESHOLD = 0.5


def multilabel_metrics(
    targets: np.ndarray, probabilities: np.ndarray, label_names: list[str], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Metrics for multi-hot targets that stay honest on sparse labels: micro and macro F1,
    per-label precision/recall/F1/support, subset accuracy (every label of an example
    right), Hamming loss (share of wrong label decisions) and binary cross-entropy.

    Binary accuracy over all label slots is left out on purpose: with few positives,
    predicting nothing scores close to 1. Like scikit-learn with ``zero_division=0``,
    macro F1 averages over every label, and a label never predicted has precision 0.
    """
    targets = np.asarray(targets, dtype=np.float64) > 0.5
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if targets.shape[0] == 0:
        raise ValueError("no examples to score")
    predicted = probabilities >= threshold
    tp = (predicted & targets).sum(axis=0).astype(np.float64)
    predicted_count = predicted.sum(axis=0).astype(np.float64)
    support = targets.sum(axis=0).astype(np.float64)
    n = len(label_names)
    precision = np.divide(tp, predicted_count, out=np.zeros(n), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n), where=denominator > 0)
    micro_denominator = predicted_count.sum() + support.sum()
    clipped = np.clip(probabilities, _EPSILON, 1.0 - _EPSILON)
    loss = -np.mean(targets * np.log(clipped) + (~targets) * np.log(1.0 - clipped))
    return {
        "examples": int(targets.shape[0]),
        "multi_label": True,
        "threshold": float(threshold),
        "loss": float(loss),
        "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
        "macro_f1": float(f1.mean()),
        "subset_accuracy": float((predicted == targets).all(axis=1).mean()),
        "hamming_loss": float((predicted != targets).mean()),
        "label_names": list(label_names),
        "per_label": _per_label(label_names, precision, recall, f1, support),
    }


def headline(metrics: dict[str, Any]) -> tuple[str, float]:
    """The one number to log for a report: accuracy, or micro F1 for multi-label."""
    name = "micro_f1" if metrics.get("multi_label") else "accuracy"
    return name, float(metrics[name])
