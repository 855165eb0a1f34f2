"""Per-label thresholds of multi-label models: tuned on validation for each label's best F1
(`train --tune-thresholds`), saved as thresholds.json, and used by evaluate, predict and
both export formats."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FILLER, TINY_OVERRIDES
from textlstm.artifacts import THRESHOLDS_FILE, read_run_info
from textlstm.cli import main
from textlstm.errors import ModelDirError
from textlstm.metrics import THRESHOLD_RANGE, multilabel_metrics, tune_thresholds

# Cue words per label and how often a text carries the label: "rain" is rare. Cues are
# sometimes missing from a labelled text and sometimes present in an unlabelled one, so no
# model gets every label right and the F1-best thresholds move away from 0.5.
CUES = {
    "sport": ("goal match team league coach", 0.5),
    "money": ("bank price market stock profit", 0.3),
    "tech": ("software chip robot code network", 0.2),
    "rain": ("storm cloud umbrella drizzle flood", 0.1),
}
LABELS = sorted(CUES)


def _rows(n: int, seed: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        tags = [tag for tag, (_, rate) in CUES.items() if rnd.random() < rate]
        words = [rnd.choice(FILLER) for _ in range(rnd.randint(3, 10))]
        for tag, (cues, _) in CUES.items():
            cue_words = cues.split()
            if tag in tags and rnd.random() < 0.8:
                words += rnd.sample(cue_words, 2)
            elif tag not in tags and rnd.random() < 0.08:
                words.append(rnd.choice(cue_words))
        rnd.shuffle(words)
        rows.append({"text": " ".join(words), "label": tags})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _args(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _f1(targets: np.ndarray, probabilities: np.ndarray, threshold: float) -> float:
    predicted = probabilities >= threshold
    tp = (predicted & targets).sum()
    return 2 * tp / (predicted.sum() + targets.sum())


def _records(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


# --- tune_thresholds and per-label metrics on constructed arrays -------------------------


def test_thresholds_tune_finds_the_best_f1_cut() -> None:
    # Label 0: positives at 0.3, 0.35, 0.4 and negatives at 0.1, 0.2, 0.6. Predicting the
    # four examples above 0.2 gives F1 6/7, more than any other cut (0.5: F1 0).
    probabilities = np.array([[0.3], [0.35], [0.4], [0.1], [0.2], [0.6]])
    targets = np.array([[1], [1], [1], [0], [0], [0]])
    thresholds = tune_thresholds(targets, probabilities)
    assert thresholds.tolist() == [0.25]  # the midpoint between 0.2 and 0.3
    report = multilabel_metrics(targets, probabilities, ["a"], thresholds)
    assert report["per_label"]["a"]["f1"] == pytest.approx(6 / 7)
    assert report["thresholds"] == {"a": 0.25}


def test_thresholds_tune_ties_and_labels_without_positives() -> None:
    probabilities = np.array(
        [
            # perfect   tie far apart   no positive   best cut above the range
            [0.8, 0.9, 0.9, 0.99],
            [0.7, 0.7, 0.3, 0.97],
            [0.2, 0.65, 0.1, 0.1],
            [0.1, 0.2, 0.6, 0.2],
        ]
    )
    targets = np.array([[1, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    thresholds = tune_thresholds(targets, probabilities)
    # Label 0: every cut in (0.2, 0.7] is perfect, 0.5 among them: it stays 0.5.
    # Label 1: F1 2/3 both by predicting only 0.9 (cut 0.8) and by predicting all four
    # (cut 0.05); 0.8 is nearer 0.5.
    assert _f1(targets[:, 1] > 0, probabilities[:, 1], 0.8) == _f1(targets[:, 1] > 0, probabilities[:, 1], 0.05)
    # Label 2 has no positive: it keeps 0.5. Label 3's best cut (0.98) lies above the range;
    # clipped to 0.95 it ties with 0.5 (F1 2/3), which wins.
    assert thresholds.tolist() == [0.5, 0.8, 0.5, 0.5]


def test_thresholds_tune_is_the_best_cut_in_range_on_random_scores() -> None:
    rng = np.random.default_rng(0)
    targets = rng.random((300, 5)) < np.array([0.5, 0.3, 0.1, 0.03, 0.0])
    # Scores that lean towards the truth, with ties (3 decimals) and values outside the range.
    probabilities = np.clip(np.round(0.35 * targets + 0.8 * rng.random((300, 5)) - 0.05, 3), 0, 1)
    thresholds = tune_thresholds(targets, probabilities)
    low, high = THRESHOLD_RANGE
    assert ((low <= thresholds) & (thresholds <= high)).all()
    assert thresholds[4] == 0.5  # no positives
    grid = np.round(np.arange(low, high + 1e-9, 1e-4), 4)  # every distinct cut of 3-decimal scores
    for j in range(4):
        brute = max(_f1(targets[:, j], probabilities[:, j], t) for t in grid)
        assert _f1(targets[:, j], probabilities[:, j], thresholds[j]) == pytest.approx(brute)
        assert _f1(targets[:, j], probabilities[:, j], thresholds[j]) >= _f1(targets[:, j], probabilities[:, j], 0.5)
    assert len(set(thresholds[:4].tolist())) > 1


def test_thresholds_per_label_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    rng = np.random.default_rng(1)
    targets = (rng.random((200, 4)) < [0.5, 0.3, 0.1, 0.05]).astype(int)
    probabilities = rng.random((200, 4))
    thresholds = np.array([0.5, 0.3, 0.2, 0.9])
    got = multilabel_metrics(targets, probabilities, list("abcd"), thresholds)
    predicted = (probabilities >= thresholds).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(targets, predicted, zero_division=0)
    for i, name in enumerate("abcd"):
        assert got["per_label"][name] == pytest.approx(
            {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]}
        )
    assert got["micro_f1"] == pytest.approx(f1_score(targets, predicted, average="micro", zero_division=0))
    assert got["macro_f1"] == pytest.approx(f1_score(targets, predicted, average="macro", zero_division=0))
    assert got["subset_accuracy"] == pytest.approx(accuracy_score(targets, predicted))
    assert got["hamming_loss"] == pytest.approx(hamming_loss(targets, predicted))
    assert got["thresholds"] == {"a": 0.5, "b": 0.3, "c": 0.2, "d": 0.9}
    with pytest.raises(ValueError, match="one value or one per label"):
        multilabel_metrics(targets, probabilities, list("abcd"), [0.5, 0.5])


# --- end to end through the CLI ----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("thresholds")
    _write_jsonl(folder / "train.jsonl", _rows(600, seed=0))
    _write_jsonl(folder / "test.jsonl", _rows(200, seed=1))
    (folder / "single.csv").write_text(
        "text,label\n" + "".join(f"goal match {i},sport\nbank {i},money\n" for i in range(20))
    )
    return folder


@pytest.fixture(scope="module")
def tuned_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "tuned"
    sets = _args(*TINY_OVERRIDES, "training.epochs=8", "model.embedding_dim=16", "model.lstm_units=16")
    result = CliRunner().invoke(
        main,
        ["train", "--data", str(corpus / "train.jsonl"), "--output-dir", str(run), "--tune-thresholds", "-q", *sets],
    )
    assert result.exit_code == 0, result.stderr
    return run, json.loads(result.stdout)


def test_thresholds_train_tunes_and_saves_them(tuned_run: tuple[Path, dict[str, object]]) -> None:
    run, summary = tuned_run
    saved = json.loads((run / THRESHOLDS_FILE).read_text())
    assert list(saved) == LABELS
    low, high = THRESHOLD_RANGE
    assert all(low <= value <= high for value in saved.values()), saved
    assert any(value != 0.5 for value in saved.values()), saved
    assert read_run_info(run).thresholds == [saved[name] for name in LABELS]
    assert json.loads((run / "config.json").read_text())["training"]["tune_thresholds"] is True
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["thresholds"] == saved == summary["validation"]["thresholds"]
    default = metrics["at_default_threshold"]
    assert set(default) == {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_label"}
    # 0.5 is one of the candidates, so no label's validation F1 can fall.
    for name in LABELS:
        assert metrics["per_label"][name]["f1"] >= default["per_label"][name]["f1"]
    assert metrics["macro_f1"] >= default["macro_f1"]
    assert metrics["micro_f1"] > 0.6


def test_thresholds_evaluate_matches_sklearn_on_predict_output(
    cli, corpus: Path, tuned_run: tuple[Path, dict[str, object]]
) -> None:
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    run, _ = tuned_run
    saved = json.loads((run / THRESHOLDS_FILE).read_text())
    test = corpus / "test.jsonl"
    result = cli.invoke(main, ["predict", str(run), "--input", str(test), "-q"])
    assert result.exit_code == 0, result.stderr
    records = _records(result.stdout)
    for record in records:
        assert record["labels"] == [n for n in LABELS if record["probabilities"][n] >= saved[n]], record
    truth = [json.loads(line)["label"] for line in test.read_text().splitlines()]
    y_true = np.array([[name in tags for name in LABELS] for tags in truth], dtype=int)
    y_pred = np.array([[name in record["labels"] for name in LABELS] for record in records], dtype=int)

    result = cli.invoke(main, ["evaluate", str(run), "--data", str(test), "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["thresholds"] == saved and report["examples"] == len(records) == 200
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, name in enumerate(LABELS):
        assert report["per_label"][name] == pytest.approx(
            {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]}
        ), name
    assert report["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro", zero_division=0))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert report["subset_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["hamming_loss"] == pytest.approx(hamming_loss(y_true, y_pred))

    # --threshold still overrides the saved thresholds with one value for every label.
    result = cli.invoke(main, ["predict", str(run), "--input", str(test), "--threshold", "0.5", "-q"])
    assert result.exit_code == 0, result.stderr
    for record in _records(result.stdout):
        assert record["labels"] == [n for n in LABELS if record["probabilities"][n] >= 0.5]


def test_thresholds_savedmodel_export_uses_them(
    cli, corpus: Path, tuned_run: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    import tensorflow as tf

    run, _ = tuned_run
    saved = json.loads((run / THRESHOLDS_FILE).read_text())
    result = cli.invoke(main, ["export", str(run), "--export-dir", str(tmp_path / "exp"), "--verify", "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verify"]["passed"] is True
    version = tmp_path / "exp" / "1"
    metadata = json.loads((version / "assets" / "metadata.json").read_text())
    assert metadata["signature"]["thresholds"] == saved

    texts = [json.loads(line)["text"] for line in (corpus / "test.jsonl").read_text().splitlines()]
    out = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    probabilities = out["probabilities"].numpy().astype(np.float64)
    vector = np.array([saved[name] for name in LABELS])
    assert out["labels_multi_hot"].numpy().tolist() == (probabilities >= vector).astype(int).tolist()

    from_export = cli.invoke(main, ["predict", str(tmp_path / "exp"), *texts[:40], "-q"])
    from_run = cli.invoke(main, ["predict", str(run), *texts[:40], "-q"])
    assert from_export.exit_code == 0 and from_run.exit_code == 0, from_export.stderr + from_run.stderr
    export_sets = [r["labels"] for r in _records(from_export.stdout)]
    assert export_sets == [r["labels"] for r in _records(from_run.stdout)]
    assert export_sets == [
        [n for n, hit in zip(LABELS, row, strict=True) if hit] for row in (probabilities[:40] >= vector)
    ]


def test_thresholds_edited_file_drives_predict_export_and_tflite(
    cli, tuned_run: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    import tensorflow as tf

    run = tmp_path / "edited"
    shutil.copytree(tuned_run[0], run)
    # Extreme thresholds show which value each runtime applies to which label.
    edited = {"money": 0.0, "rain": 1.0, "sport": 0.5, "tech": 0.5}
    (run / THRESHOLDS_FILE).write_text(json.dumps(edited))
    texts = ["goal match team", "bank price storm cloud", "software chip", "the plot of it"]

    def check(records: list[dict[str, object]]) -> None:
        assert len(records) == len(texts)
        for record in records:
            assert record["labels"] == [n for n in LABELS if record["probabilities"][n] >= edited[n]], record
            assert "money" in record["labels"] and "rain" not in record["labels"]

    result = cli.invoke(main, ["predict", str(run), *texts, "-q"])
    assert result.exit_code == 0, result.stderr
    check(_records(result.stdout))

    result = cli.invoke(main, ["export", str(run), "--export-dir", str(tmp_path / "sm"), "-q"])
    assert result.exit_code == 0, result.stderr
    out = tf.saved_model.load(str(tmp_path / "sm" / "1")).signatures["serving_default"](text=tf.constant(texts))
    hot = out["labels_multi_hot"].numpy()
    assert hot[:, LABELS.index("money")].tolist() == [1] * 4 and hot[:, LABELS.index("rain")].tolist() == [0] * 4

    result = cli.invoke(
        main, ["export", str(run), "--export-dir", str(tmp_path / "lite"), "--format", "tflite", "--verify", "-q"]
    )
    assert result.exit_code == 0, result.stderr
    metadata = json.loads((tmp_path / "lite" / "1" / "metadata.json").read_text())
    assert metadata["signature"]["thresholds"] == edited
    result = cli.invoke(main, ["predict", str(tmp_path / "lite"), *texts, "-q"])
    assert result.exit_code == 0, result.stderr
    check(_records(result.stdout))

    # A run written before thresholds.json existed predicts at 0.5 for every label.
    (run / THRESHOLDS_FILE).unlink()
    assert read_run_info(run).thresholds == [0.5] * 4
    result = cli.invoke(main, ["predict", str(run), *texts, "-q"])
    assert result.exit_code == 0, result.stderr
    for record in _records(result.stdout):
        assert record["labels"] == [n for n in LABELS if record["probabilities"][n] >= 0.5]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--data", "{corpus}/single.csv"],
            r"^error: training\.tune_thresholds \(--tune-thresholds\) applies to multi-label models; "
            r"expected a multi-label corpus or data\.multi_label=true; received 'single-label data in .*single\.csv'$",
        ),
        (
            ["--data", "{corpus}/train.jsonl", "--val-split", "0"],
            r"^error: training\.tune_thresholds \(--tune-thresholds\) needs a validation hold-out to tune on; "
            r"expected data\.val_fraction > 0; received 0\.0$",
        ),
    ],
    ids=["single-label", "no-validation"],
)
def test_thresholds_bad_tuning_requests(cli, corpus: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "run"
    args = [arg.format(corpus=corpus) for arg in args]
    result = cli.invoke(main, ["train", *args, "--output-dir", str(out), "--tune-thresholds", *_args(*TINY_OVERRIDES)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and re.search(message, result.stderr.strip()), result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"money": 0.3, "rain": 1.5, "sport": 0.5, "tech": 0.5},
            r"the threshold of label 'rain' is invalid; "
            r"expected a number in \[0, 1\]; received 1\.5",
        ),
        ({"money": "high", "rain": 0.5, "sport": 0.5, "tech": 0.5}, r"threshold of label 'money' is invalid; .*'high'"),
        ({"money": True, "rain": 0.5, "sport": 0.5, "tech": 0.5}, r"threshold of label 'money' is invalid; .*True"),
        ({"money": 0.3, "sport": 0.5, "tech": 0.5}, r"has no threshold for label 'rain'; expected one for each of"),
        ({"money": 0.3, "rain": 0.5, "sport": 0.5, "tech": 0.5, "snow": 0.2}, r"unknown label 'snow'"),
        ([0.5, 0.5, 0.5, 0.5], r"is invalid; expected a JSON object of label name to threshold; received 'list'"),
    ],
    ids=["above-1", "string", "bool", "missing", "unknown", "list"],
)
def test_thresholds_bad_file_is_a_model_dir_error(
    tuned_run: tuple[Path, dict[str, object]], tmp_path: Path, content: object, message: str
) -> None:
    run = tmp_path / "bad"
    shutil.copytree(tuned_run[0], run)
    (run / THRESHOLDS_FILE).write_text(json.dumps(content))
    with pytest.raises(ModelDirError, match=re.escape(str(run / THRESHOLDS_FILE))) as caught:
        read_run_info(run)
    assert re.search(message, str(caught.value))


def test_thresholds_corrupt_file_stops_predict_and_evaluate(
    cli, corpus: Path, tuned_run: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    run = tmp_path / "corrupt"
    shutil.copytree(tuned_run[0], run)
    (run / THRESHOLDS_FILE).write_text(json.dumps({"money": 0.3, "rain": 1.5, "sport": 0.5, "tech": 0.5}))
    for args in (["predict", str(run), "goal match"], ["evaluate", str(run), "--data", str(corpus / "test.jsonl")]):
        result = cli.invoke(main, args)
        assert result.exit_code == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert str(run / THRESHOLDS_FILE) in lines[0] and "received 1.5" in lines[0]
        assert result.stdout == ""
