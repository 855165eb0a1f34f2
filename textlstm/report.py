"""The evaluation report folder (`textlstm evaluate --report DIR`) and its pictures.

A report folder holds, with these fixed names:

===================================  =======================================================
``metrics.json``                     the JSON that ``evaluate`` prints
``report.md``                        model, data, headline metrics, per-label table,
                                     confusion matrix, calibration, most confident mistakes
``confusion_matrix.png``             counts, rows true label (single-label only)
``confusion_matrix_normalized.png``  rows divided by their total: recall on the diagonal
``reliability.png``                  accuracy against confidence per bin, with the ECE
``roc.png``, ``precision_recall.png``  binary tasks: the curves, with AUC and AP
``per_label.png``                    multi-label: precision, recall and F1 per label
===================================  =======================================================

A multi-label model has no confusion matrix: its labels are not exclusive, so an example
has no single predicted class to set against a single true one.

matplotlib is imported only when a picture is drawn, and figures are rendered with the
Agg canvas directly (no pyplot, no process-wide backend switch), so nothing needs a
display and a notebook that calls `evaluate` keeps its own backend.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from textlstm import __version__, artifacts
from textlstm.errors import InputError, OutputExistsError, describe
from textlstm.metrics import (
    CALIBRATION_BINS,
    DEFAULT_THRESHOLD,
    calibration_bins,
    precision_recall_curve,
    roc_curve,
    top_label_confidence,
)

log = logging.getLogger(__name__)

REPORT_FILE = "report.md"
CONFUSION_FILE = "confusion_matrix.png"
CONFUSION_NORMALIZED_FILE = "confusion_matrix_normalized.png"
RELIABILITY_FILE = "reliability.png"
ROC_FILE = "roc.png"
PRECISION_RECALL_FILE = "precision_recall.png"
PER_LABEL_FILE = "per_label.png"

# The report lists this many of the most confident mistakes.
MISTAKES_LIMIT = 10
# Mistake texts are cut near this many characters, so a table row stays one screen line.
TEXT_LIMIT = 200
# Cells are annotated with their numbers up to this many labels; beyond, they get unreadable.
_ANNOTATE_UP_TO = 25
# Characters that could start Markdown or HTML markup inside a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$])")


@dataclass(frozen=True)
class Mistake:
    """One wrong prediction for the report: the text, the true and the predicted label
    names (one each for a single-label model, sets for a multi-label one) and the
    confidence of the wrong decision."""

    text: str
    true: tuple[str, ...]
    predicted: tuple[str, ...]
    confidence: float


def check_report_dir(path: str | Path) -> Path:
    """Return ``path`` as a Path if a report can be written there (absent, or an empty
    folder; a missing parent is created later); otherwise raise OutputExistsError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"report path {path} is a file; expected a new or empty folder")
    artifacts.check_creatable(path, "--report")
    if path.is_dir() and any(path.iterdir()):
        raise OutputExistsError(
            f"report folder {path} is not empty; expected a new or empty folder (choose another --report)"
        )
    return path


def write_report(
    report_dir: str | Path,
    metrics: dict[str, Any],
    labels: np.ndarray,
    probabilities: np.ndarray,
    mistakes: Sequence[Mistake],
    *,
    mistake_count: int,
    model_dir: str,
    manifest: Mapping[str, Any] | None = None,
) -> Path:
    """Write the report folder for one evaluation and return its path.

    ``metrics`` is what `textlstm.evaluation.evaluate` returns; ``labels`` (indices, or
    multi-hot rows) and ``probabilities`` are the arrays it was computed from;
    ``mistakes`` the most confident wrong predictions (the first `MISTAKES_LIMIT` are listed) out of
    ``mistake_count``. ``manifest`` (the model directory's) adds how the model was
    trained. The folder appears complete or not at all.
    """
    report_dir = check_report_dir(report_dir)
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    names = list(metrics["label_names"])
    multi_label = bool(metrics.get("multi_label"))
    try:
        with artifacts.atomic_directory(report_dir) as tmp:
            artifacts.write_json(tmp / artifacts.METRICS_FILE, metrics)
            pictures: dict[str, str] = {}
            confidence, correct = top_label_confidence(labels, probabilities)
            _plot_reliability(confidence, correct, metrics["expected_calibration_error"], multi_label, tmp)
            pictures["reliability"] = RELIABILITY_FILE
            if multi_label:
                _plot_per_label(names, metrics["per_label"], tmp / PER_LABEL_FILE, metrics.get("thresholds"))
                pictures["per_label"] = PER_LABEL_FILE
            else:
                matrix = np.asarray(metrics["confusion_matrix"])
                _plot_confusion(matrix, names, tmp / CONFUSION_FILE, normalized=False)
                _plot_confusion(matrix, names, tmp / CONFUSION_NORMALIZED_FILE, normalized=True)
                pictures["confusion"] = CONFUSION_FILE
                pictures["confusion_normalized"] = CONFUSION_NORMALIZED_FILE
                if len(names) == 2:
                    pictures.update(_plot_binary_curves(labels == 1, probabilities[:, 1], names[1], metrics, tmp))
            overall = (float(np.mean(confidence)), float(np.mean(correct)))
            markdown = _markdown(
                metrics, mistakes[:MISTAKES_LIMIT], mistake_count, model_dir, manifest or {}, pictures, overall
            )
            (tmp / REPORT_FILE).write_text(markdown, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report folder {report_dir}: {exc.strerror or exc}") from exc
    return report_dir


def plot_learning_curves(
    history: dict[str, list[float]],
    path: Path,
    best_epoch: int | None = None,
    panel_epochs: Mapping[str, int] | None = None,
) -> dict[str, int | None]:
    """Draw one panel per metric of a Keras ``history`` (``loss``, ``accuracy``, ...),
    training against validation (the ``val_`` keys) per epoch, into a PNG at ``path``.

    A dotted line marks ``best_epoch`` (the epoch whose weights were kept), or without it
    the epoch of the lowest ``val_loss``; ``panel_epochs`` marks another epoch in the
    panels it names (an ensemble path's loss, kept from an epoch of its own). Returns the
    epoch marked in each panel (None: no mark).
    """
    if not isinstance(history, Mapping) or not history:
        raise InputError(
            f"cannot plot learning curves; {describe('a dict of metric names to per-epoch values', history)}"
        )
    for key, values in history.items():
        if (
            not isinstance(values, (list, tuple))
            or not values
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        ):
            raise InputError(
                f"cannot plot learning curves: history[{key!r}] is not a list of numbers; "
                f"{describe('a non-empty list of per-epoch numbers', values)}"
            )
    panels = list(dict.fromkeys(key.removeprefix("val_") for key in history))
    panels.sort(key=lambda name: name != "loss")  # the loss first, the rest as Keras logged them
    best, best_label = best_epoch, f"kept weights (epoch {best_epoch})"
    if panel_epochs:
        # The other panels plot each epoch's own pair, which the kept pair need not be.
        best_label = f"later of the paths' kept epochs ({best_epoch})"
    val_loss = np.asarray(history.get("val_loss", []), dtype=np.float64)
    if best is None and np.isfinite(val_loss).any():
        best = int(np.nanargmin(np.where(np.isfinite(val_loss), val_loss, np.nan))) + 1
        best_label = f"lowest val_loss (epoch {best})"
    columns = min(len(panels), 2)
    rows = math.ceil(len(panels) / columns)
    fig = _figure(5.0 * columns, 3.6 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    from matplotlib.ticker import MaxNLocator

    marked: dict[str, int | None] = {}
    for ax, name in zip(axes, panels):
        # Fixed colours, so validation looks the same in every panel.
        for key, label, color in ((name, "training", "C0"), (f"val_{name}", "validation", "C1")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=label, color=color)
        epoch, label = best, best_label
        if panel_epochs and name in panel_epochs:
            epoch = panel_epochs[name]
            label = f"kept weights of this path (epoch {epoch})"
        if epoch is not None:
            ax.axvline(epoch, linestyle=":", color="gray", label=label)
        marked[name] = epoch
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("Learning curves")
    try:
        _save(fig, Path(path))
    except OSError as exc:
        raise InputError(f"cannot write the learning curves to {path}: {exc.strerror or exc}") from exc
    return marked


# --- pictures -------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)


def _plot_confusion(matrix: np.ndarray, names: list[str], path: Path, normalized: bool) -> None:
    n = len(names)
    values = matrix.astype(np.float64)
    if normalized:
        totals = values.sum(axis=1, keepdims=True)
        # A true label absent from the split has no recall: left blank, not 0.
        values = np.divide(values, totals, out=np.full_like(values, np.nan), where=totals > 0)
    top = 1.0 if normalized else max(float(values.max()), 1.0)
    side = min(max(4.5, 0.55 * n + 2.5), 30.0)
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=top)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true label" if normalized else "examples")
    long_names = n > 6 or max(len(name) for name in names) > 8
    ax.set_xticks(range(n), labels=names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    if normalized:
        ax.set_title("Confusion matrix, rows normalised\n(diagonal: recall of each label)")
    else:
        ax.set_title(f"Confusion matrix ({int(matrix.sum()):,} examples)")
    if n <= _ANNOTATE_UP_TO:
        size = 10 if n <= 10 else 7
        for (i, j), value in np.ndenumerate(values):
            if np.isnan(value):
                continue
            text = f"{value:.2f}" if normalized else f"{int(value):,}"
            color = "white" if value > 0.55 * top else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=size)
    _save(fig, path)


def _plot_reliability(confidence: np.ndarray, correct: np.ndarray, ece: float, multi_label: bool, folder: Path) -> None:
    edges, counts, mean_confidence, accuracy = calibration_bins(confidence, correct)
    width = 1.0 / CALIBRATION_BINS
    filled = counts > 0
    fig = _figure(6.0, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.bar(
        edges[:-1][filled],
        accuracy[filled],
        width=width,
        align="edge",
        color="tab:blue",
        edgecolor="black",
        label="accuracy in the bin",
    )
    top.plot(mean_confidence[filled], accuracy[filled], "o", color="tab:orange", label="at the bin's mean confidence")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy" if not multi_label else "share of right decisions")
    top.set_title(f"Reliability diagram: ECE {ece:.4f} ({CALIBRATION_BINS} bins)")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(edges[:-1], counts, width=width, align="edge", color="gray", edgecolor="black")
    # Log scale: most decisions sit in the last bins, and the sparse bins must stay visible.
    from matplotlib.ticker import FuncFormatter, NullFormatter

    bottom.set_yscale("log")
    bottom.set_ylim(0.7, max(float(counts.max()), 1.0) * 1.5)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_ylabel("label slots" if multi_label else "examples")
    what = "each (example, label) decision, max(p, 1 - p)" if multi_label else "top label"
    bottom.set_xlabel(f"confidence ({what})")
    _save(fig, folder / RELIABILITY_FILE)


def _plot_binary_curves(
    positive: np.ndarray, scores: np.ndarray, positive_name: str, metrics: dict[str, Any], folder: Path
) -> dict[str, str]:
    written = {}
    roc = roc_curve(positive, scores)
    if roc is not None:
        fpr, tpr, _ = roc
        fig = _figure(5.5, 5.5)
        ax = fig.add_subplot()
        ax.plot(fpr, tpr, color="tab:blue", label=f"model (AUC {metrics['roc_auc']:.4f})")
        ax.plot([0, 1], [0, 1], "--", color="gray", label="chance (AUC 0.5)")
        _curve_axes(ax, "false positive rate", "true positive rate")
        ax.set_title(f"ROC curve (positive class {positive_name!r})\nAUC {metrics['roc_auc']:.4f}")
        ax.legend(loc="lower right")
        _save(fig, folder / ROC_FILE)
        written["roc"] = ROC_FILE
    pr = precision_recall_curve(positive, scores)
    if pr is not None:
        precision, recall, _ = pr
        rate = float(np.mean(positive))
        fig = _figure(5.5, 5.5)
        ax = fig.add_subplot()
        # "pre" steps draw the area average precision sums: precision p_k over (r_k-1, r_k].
        ax.step(
            recall, precision, where="pre", color="tab:blue", label=f"model (AP {metrics['average_precision']:.4f})"
        )
        ax.axhline(rate, linestyle="--", color="gray", label=f"chance (positive share {rate:.3f})")
        _curve_axes(ax, "recall", "precision")
        ax.set_title(
            f"Precision-recall curve (positive class {positive_name!r})\n"
            f"average precision {metrics['average_precision']:.4f}"
        )
        ax.legend(loc="lower left")
        _save(fig, folder / PRECISION_RECALL_FILE)
        written["precision_recall"] = PRECISION_RECALL_FILE
    return written


def _curve_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _plot_per_label(
    names: list[str], per_label: dict[str, dict[str, Any]], path: Path, thresholds: dict[str, float] | None = None
) -> None:
    n = len(names)
    fig = _figure(7.0, min(max(3.0, 0.6 * n + 1.5), 40.0))
    ax = fig.add_subplot()
    rows = np.arange(n)
    height = 0.26
    for k, key in enumerate(("precision", "recall", "f1")):
        values = [per_label[name][key] for name in names]
        ax.barh(rows + (k - 1) * height, values, height=height, label=key)
    ax.set_yticks(rows, labels=[f"{name} (n={per_label[name]['support']:,})" for name in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    values = set((thresholds or {}).values()) or {DEFAULT_THRESHOLD}
    rule = f">= {next(iter(values)):g}" if len(values) == 1 else ">= each label's threshold"
    ax.set_xlabel(f"score (labels predicted at probability {rule})")
    ax.set_title("Per-label precision, recall and F1")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


# --- report.md ------------------------------------------------------------------------


def markdown_text(text: str, limit: int | None = None) -> str:
    """``text`` made safe for one Markdown table cell: whitespace runs (newlines too)
    become one space, other control characters go, Markdown/HTML punctuation is
    backslash-escaped; with ``limit``, cut near that many characters (at a word
    boundary when one is close) and ended with an ellipsis."""
    text = "".join(ch for ch in " ".join(text.split()) if ch.isprintable())
    if limit is not None and len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space >= limit * 0.8 else cut).rstrip() + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """A Markdown table; ``align`` has one of l/r per column."""
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _markdown(
    metrics: dict[str, Any],
    mistakes: Sequence[Mistake],
    mistake_count: int,
    model_dir: str,
    manifest: Mapping[str, Any],
    pictures: dict[str, str],
    overall: tuple[float, float],
) -> str:
    names = list(metrics["label_names"])
    multi_label = bool(metrics.get("multi_label"))
    lines = ["# Evaluation report", ""]
    lines += _overview(metrics, model_dir, manifest, multi_label)
    lines += ["", "## Headline metrics", ""]
    lines += _table(["metric", "value"], _headline_rows(metrics, names, multi_label), "lr")
    lines += ["", "## Per label", ""]
    if multi_label:
        thresholds = metrics["thresholds"]
        if len(set(thresholds.values())) == 1:
            rule = f"at least {next(iter(thresholds.values()))}"
        else:
            rule = "at least its threshold: " + ", ".join(
                f"{markdown_text(name)} {value:g}" for name, value in thresholds.items()
            )
        lines += [f"A label is predicted when its probability is {rule}.", ""]
    per_label = metrics["per_label"]
    rows = [
        [
            markdown_text(name),
            f"{per_label[name]['precision']:.4f}",
            f"{per_label[name]['recall']:.4f}",
            f"{per_label[name]['f1']:.4f}",
            f"{per_label[name]['support']:,}",
        ]
        for name in names
    ]
    lines += _table(["label", "precision", "recall", "F1", "support"], rows, "lrrrr")
    if "per_label" in pictures:
        lines += ["", f"![Per-label precision, recall and F1]({pictures['per_label']})"]
    lines += ["", "## Confusion matrix", ""]
    if multi_label:
        lines += [
            "Not drawn for a multi-label model: its labels are not exclusive, so an example has no single "
            "predicted label to set against a single true one. The per-label table above says where it goes wrong.",
        ]
    else:
        lines += ["Rows: true label; columns: predicted label.", ""]
        header = ["true \\\\ predicted", *(markdown_text(name) for name in names)]
        matrix = metrics["confusion_matrix"]
        rows = [[f"**{markdown_text(name)}**", *(f"{count:,}" for count in matrix[i])] for i, name in enumerate(names)]
        lines += _table(header, rows, "l" + "r" * len(names))
        lines += [
            "",
            f"![Confusion matrix, counts]({pictures['confusion']}) "
            f"![Confusion matrix, rows normalised]({pictures['confusion_normalized']})",
        ]
    lines += ["", "## Calibration", ""]
    lines += _calibration(metrics, multi_label, *overall)
    lines += ["", f"![Reliability diagram]({pictures['reliability']})"]
    if "roc" in pictures or "precision_recall" in pictures:
        lines += ["", f"## ROC and precision-recall (positive class: {markdown_text(names[1])})", ""]
        lines += [" ".join(f"![{title}]({pictures[key]})" for key, title in _CURVES if key in pictures)]
    elif not multi_label and len(names) == 2:
        lines += ["", "## ROC and precision-recall", "", "Not drawn: the split holds only one of the two labels."]
    lines += ["", "## Most confident mistakes", ""]
    lines += _mistakes(mistakes, mistake_count, metrics["examples"], multi_label)
    return "\n".join(lines) + "\n"


_CURVES = (("roc", "ROC curve"), ("precision_recall", "Precision-recall curve"))


def _overview(metrics: dict[str, Any], model_dir: str, manifest: Mapping[str, Any], multi_label: bool) -> list[str]:
    trained = []
    data = manifest.get("data") if isinstance(manifest.get("data"), Mapping) else {}
    if data.get("source"):
        trained.append(f"trained on `{data['source']}` ({data.get('split', '?')} split)")
    if manifest.get("created"):
        trained.append(f"on {manifest['created']}")
    if manifest.get("best_epoch"):
        trained.append(f"best epoch {manifest['best_epoch']} of {manifest.get('epochs_run', '?')}")
    kept = manifest.get("member_best_epochs")
    if isinstance(kept, Mapping) and kept:
        trained.append("paths kept from epochs " + ", ".join(f"{markdown_text(str(k))} {v}" for k, v in kept.items()))
    kind = "multi-label (one sigmoid per label)" if multi_label else "single-label (softmax)"
    names = ", ".join(markdown_text(name) for name in metrics["label_names"])
    return [
        f"- **Model:** `{model_dir}`" + (f", {', '.join(trained)}" if trained else ""),
        f"- **Data:** `{metrics.get('data', '?')}`, split `{metrics.get('split', '?')}`, "
        f"{metrics['examples']:,} examples",
        f"- **Labels:** {len(metrics['label_names'])}, {kind}: {names}",
        f"- **Written by:** textlstm {__version__} `evaluate`"
        + (f" in {metrics['seconds']} s" if "seconds" in metrics else ""),
    ]


def _headline_rows(metrics: dict[str, Any], names: list[str], multi_label: bool) -> list[list[str]]:
    if multi_label:
        keys = [
            ("micro_f1", "micro F1"),
            ("macro_f1", "macro F1"),
            ("subset_accuracy", "subset accuracy (every label of an example right)"),
            ("hamming_loss", "Hamming loss (share of wrong label decisions)"),
            ("loss", "loss (binary cross-entropy)"),
        ]
    else:
        keys = [
            ("accuracy", "accuracy"),
            ("macro_f1", "macro F1"),
            ("weighted_f1", "weighted F1"),
            ("loss", "loss (cross-entropy)"),
        ]
    keys.append(("expected_calibration_error", f"expected calibration error ({CALIBRATION_BINS} bins)"))
    if "roc_auc" in metrics:
        positive = markdown_text(names[1])
        keys += [
            ("roc_auc", f"ROC AUC (positive class: {positive})"),
            ("average_precision", f"average precision (positive class: {positive})"),
        ]
    rows = [[title, _number(metrics.get(key))] for key, title in keys]
    return [["examples", f"{metrics['examples']:,}"], *rows]


def _calibration(metrics: dict[str, Any], multi_label: bool, mean_confidence: float, share_right: float) -> list[str]:
    ece = metrics["expected_calibration_error"]
    if multi_label:
        what = "the confidence of every (example, label) yes/no decision, max(p, 1 - p), deciding at 0.5"
        right = "of the decisions are right"
    else:
        what = "the top label's probability"
        right = "of the predictions are right"
    gap = mean_confidence - share_right
    verdict = "over-confident" if gap > 0 else "under-confident" if gap < 0 else "calibrated"
    return [
        f"Expected calibration error **{ece:.4f}** ({CALIBRATION_BINS} equal-width bins of {what}): on average, "
        f"weighted by how many decisions fall in each bin, the confidence the model states is {100 * ece:.1f} "
        "percentage points away from how often it is right (0 is perfect calibration).",
        "",
        f"Overall the mean confidence is {mean_confidence:.4f} and {share_right:.4f} {right}: "
        f"{verdict} on average. In the diagram, bars below the diagonal are over-confident bins, bars above it "
        "under-confident ones.",
    ]


def _mistakes(mistakes: Sequence[Mistake], mistake_count: int, examples: int, multi_label: bool) -> list[str]:
    if not mistakes:
        return ["None: every prediction was right."]
    unit = "examples with a wrong label set" if multi_label else "wrong predictions"
    lines = [
        f"The {len(mistakes)} most confident of {mistake_count:,} {unit} ({examples:,} examples), "
        f"texts cut at about {TEXT_LIMIT} characters."
    ]
    if multi_label:
        lines += [
            "Confidence is that of the surest wrong decision: p for a label wrongly given, 1 - p for one "
            "wrongly left out."
        ]
    lines.append("")

    def names(values: tuple[str, ...]) -> str:
        return ", ".join(markdown_text(value) for value in values) if values else "(none)"

    rows = [
        [str(i), markdown_text(m.text, TEXT_LIMIT), names(m.true), names(m.predicted), f"{m.confidence:.4f}"]
        for i, m in enumerate(mistakes, 1)
    ]
    return lines + _table(["#", "text", "true", "predicted", "confidence"], rows, "rlllr")
