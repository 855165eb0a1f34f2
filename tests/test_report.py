"""The evaluation report: metrics against scikit-learn, calibration against a direct count,
the streaming mistakes list, and the report folder written through `evaluate --report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from textlstm.cli import main
from textlstm.errors import InputError
from textlstm.evaluation import ConfidentMistakes
from textlstm.metrics import classification_metrics, multilabel_metrics
from textlstm.report import Mistake, markdown_text, plot_learning_curves, write_report

sk = pytest.importorskip("sklearn.metrics")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SINGLE_LABEL_PICTURES = {
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "reliability.png",
    "roc.png",
    "precision_recall.png",
}


def _assert_png(path: Path) -> None:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000, path
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    colours = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colours) > 2, f"{path.name} is a blank picture"


def _random_case(seed: int, n_labels: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(n_labels), size=n)
    # Rounding makes tied scores, which ROC AUC and average precision must handle.
    return rng.integers(0, n_labels, n), np.round(probabilities, 2)


EDGE_CASES = {
    "perfect": (np.array([0, 1, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])),
    "one_true_class": (np.array([1, 1, 1]), np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])),
    "never_predicts_a_label": (
        np.array([0, 1, 2, 2]),
        np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.2, 0.7]]),
    ),
    "all_tied": (np.array([0, 1, 1, 0, 1]), np.full((5, 2), 0.5)),
    "single_example": (np.array([1]), np.array([[0.3, 0.7]])),
    "label_absent_everywhere": (np.array([0, 0, 2]), np.array([[0.7, 0.1, 0.2], [0.2, 0.1, 0.7], [0.1, 0.2, 0.7]])),
}
CASES = {
    **{f"random_binary_{s}": _random_case(s, 2, 200) for s in range(3)},
    **{f"random_5_labels_{s}": _random_case(s, 5, 300) for s in range(3)},
    **EDGE_CASES,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_single_label_metrics_match_sklearn(name: str) -> None:
    labels, probabilities = CASES[name]
    n_labels = probabilities.shape[1]
    names = [f"l{i}" for i in range(n_labels)]
    got = classification_metrics(labels, probabilities, names)
    predicted = probabilities.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(labels, predicted, average="macro", zero_division=0))
    assert got["weighted_f1"] == pytest.approx(sk.f1_score(labels, predicted, average="weighted", zero_division=0))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=range(n_labels), zero_division=0
    )
    for i, label in enumerate(names):
        assert got["per_label"][label] == {
            "precision": pytest.approx(precision[i]),
            "recall": pytest.approx(recall[i]),
            "f1": pytest.approx(f1[i]),
            "support": support[i],
        }
    assert got["confusion_matrix"] == sk.confusion_matrix(labels, predicted, labels=range(n_labels)).tolist()
    if n_labels != 2:
        assert "roc_auc" not in got and "average_precision" not in got
        return
    positive, scores = labels == 1, probabilities[:, 1]
    if positive.all() or not positive.any():
        assert got["roc_auc"] is None  # undefined with one class; JSON has no NaN
    else:
        assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(positive, scores))
    if positive.any():
        assert got["average_precision"] == pytest.approx(sk.average_precision_score(positive, scores))
    else:
        assert got["average_precision"] is None


MULTI_CASES = {
    "random": (
        np.random.default_rng(1).random((150, 4)) < 0.3,
        np.round(np.random.default_rng(2).random((150, 4)), 2),
    ),
    "label_never_true_nor_predicted": (
        np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]]),
        np.array([[0.9, 0.6, 0.1], [0.2, 0.7, 0.4], [0.4, 0.9, 0.2]]),
    ),
    "no_labels_at_all": (np.zeros((3, 2)), np.array([[0.1, 0.2], [0.6, 0.1], [0.3, 0.3]])),
}


@pytest.mark.parametrize("name", sorted(MULTI_CASES))
def test_report_multilabel_metrics_match_sklearn(name: str) -> None:
    targets, probabilities = MULTI_CASES[name]
    targets = targets.astype(int)
    names = [f"l{i}" for i in range(targets.shape[1])]
    got = multilabel_metrics(targets, probabilities, names)
    predicted = (probabilities >= 0.5).astype(int)
    assert got["micro_f1"] == pytest.approx(sk.f1_score(targets, predicted, average="micro", zero_division=0))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(targets, predicted, average="macro", zero_division=0))
    assert got["hamming_loss"] == pytest.approx(sk.hamming_loss(targets, predicted))
    assert got["subset_accuracy"] == pytest.approx(sk.accuracy_score(targets, predicted))
    precision, recall, f1, support = sk.precision_recall_fscore_support(targets, predicted, zero_division=0)
    for i, label in enumerate(names):
        assert got["per_label"][label]["precision"] == pytest.approx(precision[i])
        assert got["per_label"][label]["recall"] == pytest.approx(recall[i])
        assert got["per_label"][label]["f1"] == pytest.approx(f1[i])
        assert got["per_label"][label]["support"] == support[i]


def _direct_ece(confidence: list[float], correct: list[bool], bins: int = 15) -> float:
    """ECE by the textbook: bin k holds confidences in (k/bins, (k+1)/bins], 0 in the first."""
    total = 0.0
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        members = [i for i, c in enumerate(confidence) if (lo < c <= hi) or (k == 0 and c == 0)]
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            mean_confidence = sum(confidence[i] for i in members) / len(members)
            total += len(members) / len(confidence) * abs(accuracy - mean_confidence)
    return total


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_ece_matches_a_direct_count(name: str) -> None:
    labels, probabilities = CASES[name]
    got = classification_metrics(labels, probabilities, [f"l{i}" for i in range(probabilities.shape[1])])
    confidence = [float(row.max()) for row in probabilities]
    correct = [bool(row.argmax() == label) for row, label in zip(probabilities, labels)]
    assert got["expected_calibration_error"] == pytest.approx(_direct_ece(confidence, correct), abs=1e-12)


def test_report_ece_bin_edges_and_a_known_value() -> None:
    # Confidences exactly on bin edges (k/15) belong to the bin below; 1.0 to the last.
    edges = [k / 15 for k in (8, 9, 12, 15)]
    probabilities = np.array([[c, 1 - c] for c in edges])
    labels = np.array([0, 1, 0, 0])  # the second is wrong
    got = classification_metrics(labels, probabilities, ["a", "b"])
    assert got["expected_calibration_error"] == pytest.approx(_direct_ece(edges, [True, False, True, True]))
    # Always 80 % sure and right 4 times in 5: a gap of 0.2 in one bin.
    probabilities = np.tile([0.8, 0.2], (5, 1))
    got = classification_metrics(np.array([0, 0, 0, 0, 1]), probabilities, ["a", "b"])
    assert got["expected_calibration_error"] == pytest.approx(0.0)
    got = classification_metrics(np.array([0, 0, 0, 1, 1]), probabilities, ["a", "b"])
    assert got["expected_calibration_error"] == pytest.approx(0.2)


@pytest.mark.parametrize("name", sorted(MULTI_CASES))
def test_report_multilabel_ece_counts_every_slot(name: str) -> None:
    targets, probabilities = MULTI_CASES[name]
    got = multilabel_metrics(targets, probabilities, [f"l{i}" for i in range(targets.shape[1])])
    p = probabilities.ravel().tolist()
    t = (np.asarray(targets) > 0.5).ravel().tolist()
    confidence = [max(x, 1 - x) for x in p]
    correct = [(x >= 0.5) == y for x, y in zip(p, t)]
    assert got["expected_calibration_error"] == pytest.approx(_direct_ece(confidence, correct), abs=1e-12)


def test_report_confident_mistakes_match_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    names = ["a", "b", "c"]
    collector = ConfidentMistakes(names, limit=4)
    every = []
    for batch in range(6):
        probabilities = np.round(rng.dirichlet(np.ones(3), size=50), 2)  # ties happen
        labels = rng.integers(0, 3, 50)
        texts = [f"text {batch}-{i}".encode() for i in range(50)]
        collector.add(probabilities, labels, np.array(texts, dtype=object))
        for i in range(50):
            if probabilities[i].argmax() != labels[i]:
                every.append((-probabilities[i].max(), len(every), texts[i].decode(), labels[i], probabilities[i]))
    assert collector.count == len(every)
    expected = sorted(every)[:4]  # most confident first, the earlier one of a tie first
    got = collector.worst()
    assert [m.text for m in got] == [e[2] for e in expected]
    assert [m.confidence for m in got] == pytest.approx([-e[0] for e in expected])
    assert got[0].true == (names[expected[0][3]],)
    assert got[0].predicted == (names[int(expected[0][4].argmax())],)


def test_report_confident_mistakes_multilabel() -> None:
    collector = ConfidentMistakes(["x", "y", "z"], multi_label=True, limit=2)
    targets = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=np.float32)
    probabilities = np.array([[0.9, 0.2, 0.1], [0.3, 0.6, 0.05], [0.8, 0.3, 0.7], [0.4, 0.45, 0.1]])
    collector.add(probabilities, targets, ["right", "misses z", "misses y, adds z", "right"])
    # "misses z": the surest wrong decision leaves z out at p 0.05 (confidence 0.95);
    # "misses y, adds z": adds z at 0.7 and leaves y out at 0.3, so 0.7.
    got = collector.worst()
    assert collector.count == 2
    assert got == [
        Mistake("misses z", ("y", "z"), ("y",), pytest.approx(0.95)),
        Mistake("misses y, adds z", ("x", "y"), ("x", "z"), pytest.approx(0.7)),
    ]


def test_report_confident_mistakes_use_the_model_thresholds() -> None:
    # A tuned threshold of 0.3 for y: the last row predicts y there (0.45), as predict and
    # the metrics do, so it is a mistake; at 0.5 it would have counted as right.
    collector = ConfidentMistakes(["x", "y", "z"], multi_label=True, limit=5, thresholds=[0.5, 0.3, 0.5])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    probabilities = np.array([[0.9, 0.2, 0.1], [0.1, 0.35, 0.2], [0.4, 0.45, 0.1]])
    collector.add(probabilities, targets, ["right", "y at 0.35, right at 0.3", "adds y"])
    assert collector.count == 1
    assert collector.worst() == [Mistake("adds y", (), ("y",), pytest.approx(0.45))]


def test_report_markdown_text_escapes_and_shortens() -> None:
    assert markdown_text("a | b *c* <br /> [x](y)\n_d_ `e`") == r"a \| b \*c\* \<br /\> \[x\]\(y\) \_d\_ \`e\`"
    long = " ".join(["word"] * 100)
    short = markdown_text(long, 200)
    assert short.endswith("…") and 160 <= len(short) <= 201 and not short[:-1].endswith(" ")
    assert markdown_text("x" * 300, 200) == "x" * 200 + "…"  # no space to cut at


def _report_md_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    return {part.splitlines()[0]: part for part in parts[1:]}


def test_report_cli_writes_the_report_folder(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    report = tmp_path / "missing" / "parent" / "report"
    args = ["evaluate", str(trained_run.output_dir), "--data", str(corpus_tar), "--report", str(report), "-q"]
    result = cli.invoke(main, args)
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert json.loads((report / "metrics.json").read_text()) == printed
    assert {"expected_calibration_error", "roc_auc", "average_precision"} <= set(printed)
    assert sorted(p.name for p in report.iterdir()) == sorted({"metrics.json", "report.md", *SINGLE_LABEL_PICTURES})
    assert [p.name for p in report.parent.iterdir()] == ["report"]  # no temporary sibling left
    for name in SINGLE_LABEL_PICTURES:
        _assert_png(report / name)
    text = (report / "report.md").read_text()
    sections = _report_md_sections(text)
    assert {"Headline metrics", "Per label", "Confusion matrix", "Calibration", "Most confident mistakes"} <= set(
        sections
    )
    assert f"| accuracy | {printed['accuracy']:.4f} |" in sections["Headline metrics"]
    assert f"| expected calibration error (15 bins) | {printed['expected_calibration_error']:.4f} |" in text
    neg, pos = printed["confusion_matrix"]
    assert f"| **neg** | {neg[0]:,} | {neg[1]:,} |" in sections["Confusion matrix"]
    for name in SINGLE_LABEL_PICTURES:
        assert f"]({name})" in text, name
    assert str(corpus_tar) in text and "split `test`" in text
    # The tiny run is an ensemble: the overview names the epoch each path was kept from.
    kept = json.loads((trained_run.output_dir / "manifest.json").read_text())["member_best_epochs"]
    assert "paths kept from epochs " + ", ".join(f"{markdown_text(k)} {v}" for k, v in kept.items()) in text


def test_report_cli_lists_the_most_confident_mistakes(cli, trained_run, tmp_path: Path) -> None:
    # Long texts with Markdown in them, ending in positive words but labelled neg: the
    # tiny model (which reads the last 40 tokens) is sure, and wrong.
    rows = [
        (f"film {i} | was *great* <b>superb</b> " + "and " * 50 + "great superb loved wonderful brilliant", "neg")
        for i in range(13)
    ]
    rows += [(f"awful boring dull waste {i}", "neg") for i in range(5)]
    data = tmp_path / "flipped.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    report = tmp_path / "report"
    args = ["evaluate", str(trained_run.output_dir), "--data", str(data), "--report", str(report), "-q"]
    result = cli.invoke(main, args)
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    wrong = printed["confusion_matrix"][0][1]
    assert wrong >= 11, printed["confusion_matrix"]
    section = _report_md_sections((report / "report.md").read_text())["Most confident mistakes"]
    assert f"The 10 most confident of {wrong:,} wrong predictions (18 examples)" in section
    table = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(table) == 10
    confidences = [float(line.rsplit("|", 2)[1]) for line in table]
    assert confidences == sorted(confidences, reverse=True) and confidences[-1] > 0.5
    for line in table:
        assert re.match(r"\| \d+ \| film \d+ \\\| was \\\*great\\\* \\<b\\>superb\\</b\\> and and", line), line
        assert line.count(" | ") == 4  # the escaped pipe keeps five columns
        assert "brilliant" not in line and "…" in line  # cut at about 200 characters
        assert line.endswith(f" | neg | pos | {float(line.rsplit('|', 2)[1]):.4f} |")
    # Every example is labelled neg: ROC AUC and average precision are undefined, not drawn.
    assert printed["roc_auc"] is None and printed["average_precision"] is None
    assert not (report / "roc.png").exists() and not (report / "precision_recall.png").exists()
    assert "Not drawn: the split holds only one of the two labels." in (report / "report.md").read_text()
    _assert_png(report / "confusion_matrix.png")


def test_report_cli_refuses_a_non_empty_folder(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "notes.txt").write_text("keep me")
    args = ["evaluate", str(trained_run.output_dir), "--data", str(corpus_tar), "--report", str(report)]
    result = cli.invoke(main, args)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: report folder "), result.stderr
    assert re.search(r"is not empty; expected a new or empty folder", lines[0])
    assert [p.name for p in report.iterdir()] == ["notes.txt"]
    assert (report / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert result.stdout == ""

    (tmp_path / "file").write_text("x")
    result = cli.invoke(main, [*args[:-1], str(tmp_path / "file")])
    assert result.exit_code == 2 and "is a file; expected a new or empty folder" in result.stderr


def test_report_failure_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import textlstm.report as report_module

    labels, probabilities = CASES["random_binary_0"]
    metrics = classification_metrics(labels, probabilities, ["neg", "pos"])

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "_plot_binary_curves", broken)
    with pytest.raises(InputError, match=r"cannot write the report folder .*: No space left on device"):
        write_report(tmp_path / "r", metrics, labels, probabilities, [], mistake_count=0, model_dir="m")
    assert list(tmp_path.iterdir()) == []


def test_report_multilabel_folder_has_per_label_chart_and_no_confusion_matrix(tmp_path: Path) -> None:
    targets, probabilities = MULTI_CASES["random"]
    names = ["sport", "money", "tech", "art"]
    metrics = multilabel_metrics(targets, probabilities, names)
    metrics.update({"data": "tags.jsonl", "split": "test"})
    mistake = Mistake("goal | bank", ("sport",), ("money", "sport"), 0.9)
    out = write_report(tmp_path / "r", metrics, targets, probabilities, [mistake], mistake_count=7, model_dir="m")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_label.png", "reliability.png", "report.md"]
    _assert_png(out / "per_label.png")
    _assert_png(out / "reliability.png")
    text = (out / "report.md").read_text()
    assert "Not drawn for a multi-label model" in text
    assert f"| micro F1 | {metrics['micro_f1']:.4f} |" in text
    assert r"| 1 | goal \| bank | sport | money, sport | 0.9000 |" in text


def test_report_multiclass_folder_has_no_binary_curves(tmp_path: Path) -> None:
    labels, probabilities = CASES["random_5_labels_0"]
    names = ["a", "b", "c", "d", "e"]
    metrics = classification_metrics(labels, probabilities, names)
    out = write_report(tmp_path / "r", metrics, labels, probabilities, [], mistake_count=0, model_dir="m")
    names_written = {p.name for p in out.iterdir()}
    assert names_written == {
        "metrics.json",
        "report.md",
        "confusion_matrix.png",
        "confusion_matrix_normalized.png",
        "reliability.png",
    }
    assert "ROC" not in (out / "report.md").read_text()


def test_report_plot_learning_curves_writes_a_png(trained_run, tmp_path: Path) -> None:
    assert {"loss", "val_loss"} <= set(trained_run.history)
    plot_learning_curves(trained_run.history, tmp_path / "curves.png")
    _assert_png(tmp_path / "curves.png")
    plot_learning_curves({"loss": [0.9, 0.5, 0.4], "accuracy": [0.5, 0.7, 0.8]}, tmp_path / "train_only.png")
    _assert_png(tmp_path / "train_only.png")
    # An ensemble path kept from an epoch of its own is marked there in its panel.
    history = {
        "loss": [0.9, 0.5, 0.4],
        "val_loss": [0.8, 0.6, 0.7],
        "bag_loss": [0.5, 0.2, 0.1],
        "val_bag_loss": [0.3, 0.4, 0.5],
    }
    marked = plot_learning_curves(history, tmp_path / "members.png", best_epoch=2, panel_epochs={"bag_loss": 1})
    assert marked == {"loss": 2, "bag_loss": 1}
    assert plot_learning_curves(history, tmp_path / "lowest.png") == {"loss": 2, "bag_loss": 2}


def test_report_plot_learning_curves_rejects_bad_history(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot plot learning curves; expected a dict .*; received \{\}"):
        plot_learning_curves({}, tmp_path / "x.png")
    with pytest.raises(InputError, match=r"history\['loss'\] is not a list of numbers; .*received \['a'\]"):
        plot_learning_curves({"loss": ["a"]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
