"""Classification metrics computed from predicted probabilities (NumPy only)."""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

_EPSILON = 1e-7
# Equal-width confidence bins of the expected calibration error (Guo et al., 2017, use 15).
CALIBRATION_BINS = 15


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
    weighted F1, the confusion matrix (rows: true label, columns: predicted label) and the
    expected calibration error of the top-label confidence; with two labels also
    ``roc_auc`` and ``average_precision`` with the second label as the positive class
    (``None`` where undefined: ROC AUC when the labels hold only one class, average
    precision when they hold no positive).

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
    loss = cross_entropy(labels, probabilities)
    # Like scikit-learn: average over labels that occur in the truth or the predictions.
    present = (support > 0) | (predicted_count > 0)
    confidence, correct = top_label_confidence(labels, probabilities)
    metrics: dict[str, Any] = {
        "examples": int(labels.size),
        "accuracy": float(true_positive.sum() / labels.size),
        "loss": loss,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "expected_calibration_error": expected_calibration_error(confidence, correct),
        "label_names": list(label_names),
        "per_label": _per_label(label_names, precision, recall, f1, support),
        "confusion_matrix": confusion.tolist(),
    }
    if n == 2:
        positive = labels == 1
        metrics["roc_auc"] = roc_auc(positive, probabilities[:, 1])
        metrics["average_precision"] = average_precision(positive, probabilities[:, 1])
    return metrics


# Multi-label predictions are the labels whose probability reaches this threshold, unless
# the model was trained with training.tune_thresholds.
DEFAULT_THRESHOLD = 0.5
# Tuned thresholds stay inside this range. Beyond it a threshold mostly fits the few
# validation examples at one extreme of a label's probabilities, not a decision rule that
# carries over to new texts, and it would list the label for nearly every text or none.
THRESHOLD_RANGE = (0.05, 0.95)


def multilabel_metrics(
    targets: np.ndarray,
    probabilities: np.ndarray,
    label_names: list[str],
    thresholds: float | Sequence[float] | np.ndarray = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Metrics for multi-hot targets that stay honest on sparse labels: micro and macro F1,
    per-label precision/recall/F1/support, subset accuracy (every label of an example
    right), Hamming loss (share of wrong label decisions), binary cross-entropy, and the
    expected calibration error over every (example, label) slot (see `top_label_confidence`).

    A label is predicted when its probability reaches its threshold: ``thresholds`` is one
    value for every label or one per label (in ``label_names`` order); the report lists
    them by label under ``thresholds``.

    Binary accuracy over all label slots is left out on purpose: with few positives,
    predicting nothing scores close to 1. Like scikit-learn with ``zero_division=0``,
    macro F1 averages over every label, and a label never predicted has precision 0.
    """
    targets = np.asarray(targets, dtype=np.float64) > 0.5
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if targets.shape[0] == 0:
        raise ValueError("no examples to score")
    n = len(label_names)
    cut = np.asarray(thresholds, dtype=np.float64)
    if cut.ndim > 1 or cut.size not in (1, n):
        raise ValueError(f"thresholds must be one value or one per label ({n}); received shape {cut.shape}")
    cut = np.broadcast_to(cut.reshape(-1), (n,))
    # Compared in float64 everywhere (predict, export), so that a float32 probability and a
    # threshold such as 0.3 give the same decision in every runtime.
    predicted = probabilities >= cut
    tp = (predicted & targets).sum(axis=0).astype(np.float64)
    predicted_count = predicted.sum(axis=0).astype(np.float64)
    support = targets.sum(axis=0).astype(np.float64)
    precision = np.divide(tp, predicted_count, out=np.zeros(n), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n), where=denominator > 0)
    micro_denominator = predicted_count.sum() + support.sum()
    loss = cross_entropy(targets, probabilities, multi_label=True)
    return {
        "examples": int(targets.shape[0]),
        "multi_label": True,
        "thresholds": {name: float(t) for name, t in zip(label_names, cut, strict=True)},
        "loss": float(loss),
        "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
        "macro_f1": float(f1.mean()),
        "subset_accuracy": float((predicted == targets).all(axis=1).mean()),
        "hamming_loss": float((predicted != targets).mean()),
        "expected_calibration_error": expected_calibration_error(*top_label_confidence(targets, probabilities)),
        "label_names": list(label_names),
        "per_label": _per_label(label_names, precision, recall, f1, support),
    }


def top_label_confidence(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confidence of each decision and whether it was right, for calibration.

    Single-label (``labels`` 1-D class indices): the highest probability and whether
    its label is the true one. Multi-label (``labels`` 2-D multi-hot): every
    (example, label) slot is a yes/no decision taken at 0.5, whose confidence is
    ``max(p, 1 - p)``; both arrays are flattened over the slots.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.ndim == 2:
        targets = (labels > 0.5).ravel()
        p = probabilities.ravel()
        return np.maximum(p, 1.0 - p), (p >= 0.5) == targets
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == labels


def calibration_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split [0, 1] into ``bins`` equal-width bins, ``(lo, hi]`` (the first also holds 0),
    and return ``(edges, counts, mean_confidence, accuracy)`` per bin (NaN in empty bins)."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    # k / bins, not linspace: the edges must be the same floats an independent count uses.
    edges = np.arange(bins + 1) / bins
    index = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    return edges, counts, mean_confidence, accuracy


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the count-weighted mean gap between accuracy and mean
    confidence over equal-width confidence bins (0 for a perfectly calibrated model)."""
    _, counts, mean_confidence, accuracy = calibration_bins(confidence, correct, bins)
    filled = counts > 0
    if not filled.any():
        raise ValueError("no predictions to calibrate")
    gaps = np.abs(accuracy[filled] - mean_confidence[filled])
    return float((counts[filled] * gaps).sum() / counts.sum())


def _ranked_counts(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when predicting positive at or above each distinct score,
    from the highest score down; tied scores form one threshold (as in scikit-learn)."""
    positive = np.asarray(positive, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(positive)[last_of_tie].astype(np.float64)
    false_positives = (last_of_tie + 1) - true_positives
    return true_positives, false_positives, scores[last_of_tie]


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(false_positive_rate, true_positive_rate, thresholds)`` from (0, 0) to (1, 1), or
    None when ``positive`` holds only one class (the curve is then undefined)."""
    tp, fp, thresholds = _ranked_counts(positive, scores)
    if tp[-1] == 0 or fp[-1] == 0:
        return None
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]], np.r_[np.inf, thresholds]


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half), or None with only one class present."""
    curve = roc_curve(positive, scores)
    if curve is None:
        return None
    fpr, tpr, _ = curve
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def precision_recall_curve(
    positive: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(precision, recall, thresholds)`` from the highest threshold down, starting at
    precision 1, recall 0; None when there is no positive example."""
    tp, fp, thresholds = _ranked_counts(positive, scores)
    if tp[-1] == 0:
        return None
    return np.r_[1.0, tp / (tp + fp)], np.r_[0.0, tp / tp[-1]], np.r_[np.inf, thresholds]


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision: precision at each threshold weighted by the recall it adds
    (scikit-learn's definition, no interpolation); None when there is no positive example."""
    curve = precision_recall_curve(positive, scores)
    if curve is None:
        return None
    precision, recall, _ = curve
    return float(np.sum(np.diff(recall) * precision[1:]))


def tune_thresholds(targets: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """For each label, the threshold that maximises that label's F1 on ``targets``
    (multi-hot, [examples, labels]) given ``probabilities`` of the same shape.

    Candidates are 0.5, the ends of `THRESHOLD_RANGE` and the midpoints between
    consecutive distinct probabilities of the label (every set of predicted positives a
    threshold can give, without a threshold sitting on a validation example's own
    probability), rounded to 4 decimals and clipped to `THRESHOLD_RANGE`. F1 is computed
    at each candidate as it will be used (probability >= threshold). Ties go to the
    candidate nearest 0.5 (then the lower one), so a threshold moves away from 0.5 only
    when that raises F1. A label without a positive example keeps 0.5: no threshold has a
    defined F1 there. Returns float64 thresholds, one per label.
    """
    targets = np.asarray(targets, dtype=np.float64) > 0.5
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if targets.ndim != 2 or targets.shape != probabilities.shape:
        raise ValueError(
            f"targets and probabilities must be [examples, labels] arrays of one shape; "
            f"received {targets.shape} and {probabilities.shape}"
        )
    low, high = THRESHOLD_RANGE
    thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD)
    for j in range(targets.shape[1]):
        positives = np.sort(probabilities[targets[:, j], j])
        if positives.size == 0:
            continue
        everything = np.sort(probabilities[:, j])
        distinct = np.unique(everything)
        midpoints = (distinct[:-1] + distinct[1:]) / 2
        candidates = np.unique(
            np.clip(np.round(np.concatenate([midpoints, [low, DEFAULT_THRESHOLD, high]]), 4), low, high)
        )
        # Examples (and positive examples) with probability >= each candidate.
        predicted = everything.size - np.searchsorted(everything, candidates, side="left")
        hits = positives.size - np.searchsorted(positives, candidates, side="left")
        f1 = 2.0 * hits / (predicted + positives.size)
        best = np.flatnonzero(f1 == f1.max())
        thresholds[j] = candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]]
    return thresholds


def tuned_multilabel_metrics(
    targets: np.ndarray, probabilities: np.ndarray, label_names: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Tune per-label thresholds on these examples (`tune_thresholds`) and score with them.

    Returns the thresholds and the `multilabel_metrics` report at those thresholds, which
    also holds the figures at `DEFAULT_THRESHOLD` under ``at_default_threshold`` (micro and
    macro F1, subset accuracy, Hamming loss, per-label scores), so the gain is visible.
    """
    thresholds = tune_thresholds(targets, probabilities)
    metrics = multilabel_metrics(targets, probabilities, label_names, thresholds)
    default = multilabel_metrics(targets, probabilities, label_names)
    keep = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_label")
    metrics["at_default_threshold"] = {key: default[key] for key in keep}
    return thresholds, metrics


# The LSTM's shares tried when the ensemble's mix of two members is tuned
# (model.ngram_mix=tuned); with more members, every point of the simplex on this step.
MIX_GRID = tuple(i / 20 for i in range(21))
_MIX_STEPS = 20

# A mix: the first member's share of two (the second's is 1 - w), or one weight per member
# of three or more.
Mix = float | tuple[float, ...]


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool = False) -> float:
    """Mean cross-entropy of ``probabilities``: of each true label (``labels`` label
    indices), or with ``multi_label`` the binary cross-entropy of every label slot
    (``labels`` multi-hot), as `classification_metrics` and `multilabel_metrics` count it."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if multi_label:
        targets = np.asarray(labels, dtype=np.float64) > 0.5
        clipped = np.clip(probabilities, _EPSILON, 1.0 - _EPSILON)
        return float(-np.mean(targets * np.log(clipped) + (~targets) * np.log(1.0 - clipped)))
    labels = np.asarray(labels, dtype=np.int64)
    picked = probabilities[np.arange(labels.size), labels]
    return float(-np.mean(np.log(np.clip(picked, _EPSILON, 1.0))))


def mean_mix(members: int) -> Mix:
    """The untuned mix of ``members`` members, where `textlstm.layers.MemberMix` starts:
    0.5 for two, else 1 / members each."""
    return 0.5 if members == 2 else tuple([1.0 / members] * members)


def mix_grid(members: int) -> list[Mix]:
    """The mixes tuning tries: `MIX_GRID` for two members, else every weight vector on
    the simplex in steps of 1 / 20."""
    if members == 2:
        return list(MIX_GRID)
    points = [p for p in itertools.product(range(_MIX_STEPS + 1), repeat=members - 1) if sum(p) <= _MIX_STEPS]
    return [tuple(i / _MIX_STEPS for i in (*p, _MIX_STEPS - sum(p))) for p in points]


def mixed(weight: Mix, *members: np.ndarray) -> np.ndarray:
    """``weight * first + (1 - weight) * second`` in float32 for two members, or
    ``w[0] * first + w[1] * second + ...`` for more: the operations of
    `textlstm.layers.MemberMix`, so that it equals the model's own output."""
    if isinstance(weight, (int, float)):
        first, second = members
        w = np.float32(weight)
        return w * np.asarray(first, np.float32) + (np.float32(1.0) - w) * np.asarray(second, np.float32)
    weights = np.asarray(weight, np.float32)
    if weights.shape != (len(members),):
        raise ValueError(f"a mix of {len(members)} members needs as many weights; received {list(weight)}")
    total = weights[0] * np.asarray(members[0], np.float32)
    for w, member in zip(weights[1:], members[1:], strict=True):
        total = total + w * np.asarray(member, np.float32)
    return total


def best_mix(
    labels: np.ndarray, members: Sequence[np.ndarray], multi_label: bool = False
) -> tuple[Mix, dict[Mix, float]]:
    """The mix of `mix_grid` whose weighted mean of the members' probabilities has the
    lowest `cross_entropy` on ``labels`` (of losses equal to 9 decimals, the one nearest
    the plain mean), and the loss at every mix of the grid."""
    arrays = [np.asarray(member, np.float64) for member in members]
    grid = mix_grid(len(arrays))
    # [grid, members]: each mix's weight of each member.
    weights = np.array([(mix, 1 - mix) if isinstance(mix, float) else mix for mix in grid], np.float64)
    # The probability each member gives what happened: of the true label, or per label
    # slot p where the label is on and 1 - p where it is off. The mixes' weights sum to 1,
    # so a mix's is the same weighted mean of them, all mixes come from one matrix product,
    # and each slot needs one logarithm, not two. Training tunes 7 candidate mixes after
    # every epoch; three members' 231 mixes on random multi-label data of 20,000 x 50:
    # 2.0-2.6 s scored one mix at a time, 1.4-1.8 s this way (equal to 1e-14).
    if multi_label:
        targets = np.asarray(labels, np.float64) > 0.5
        hits = np.stack([np.where(targets, a, 1.0 - a).reshape(-1) for a in arrays], axis=1)
        low, high = _EPSILON, 1.0 - _EPSILON
    else:
        rows = np.arange(len(labels))
        hits = np.stack([a[rows, np.asarray(labels, np.int64)] for a in arrays], axis=1)
        low, high = _EPSILON, 1.0
    # [examples (x labels), members]; in row chunks, so that [chunk, mixes] stays small.
    chunk = max(1, (32 << 20) // (8 * len(grid)))
    totals = np.zeros(len(grid))
    for start in range(0, len(hits), chunk):
        totals += np.log(np.clip(hits[start : start + chunk] @ weights.T, low, high)).sum(axis=0)
    values = -totals / max(1, len(hits))
    losses: dict[Mix, float] = {mix: float(value) for mix, value in zip(grid, values, strict=True)}
    center = 1.0 / len(arrays)

    def distance(mix: Mix) -> float:
        parts = (mix, 1 - mix) if isinstance(mix, float) else mix
        return sum((w - center) ** 2 for w in parts)

    # Rounded, so that losses equal but for float rounding count as ties.
    best = min(losses, key=lambda mix: (round(losses[mix], 9), distance(mix)))
    return best, losses


def headline(metrics: dict[str, Any]) -> tuple[str, float]:
    """The one number to log for a report: accuracy, or micro F1 for multi-label."""
    name = "micro_f1" if metrics.get("multi_label") else "accuracy"
    return name, float(metrics[name])
