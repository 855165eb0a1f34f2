"""Classification metrics computed from predicted probabilities (NumPy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

_EPSILON = 1e-7


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
        "per_label": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": confusion.tolist(),
    }
