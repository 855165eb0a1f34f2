"""Multi-label corpora: label sets read from every file format into multi-hot targets, a
sigmoid head trained on them, and metrics that are not fooled by sparse targets."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FILLER, TINY_OVERRIDES
from textlstm.cli import main
from textlstm.errors import DataError
from textlstm.file_sources import ReadOptions
from textlstm.metrics import multilabel_metrics
from textlstm.source_spec import open_source

TAGS = {
    "sport": "goal match team score league coach".split(),
    "money": "bank price market stock profit trade".split(),
    "tech": "software chip robot code network data".split(),
}


def _tagged_rows(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        tags = [tag for tag in TAGS if rnd.random() < 0.45] or [rnd.choice(list(TAGS))]
        words = [rnd.choice(FILLER) for _ in range(rnd.randint(3, 10))]
        for tag in tags:
            words += [rnd.choice(TAGS[tag]) for _ in range(3)]
        rnd.shuffle(words)
        rows.append((" ".join(words), tags))
    return rows


def _labels(path: Path, **options) -> list[object]:
    return [label for _, _, label in open_source(str(path), ReadOptions(**options)).examples("train")]


def test_multilabel_jsonl_lists_are_label_sets(tmp_path: Path) -> None:
    path = tmp_path / "tags.jsonl"
    rows = [{"text": "a", "label": ["x", "y"]}, {"text": "b", "label": []}, {"text": "c", "label": ["y", "y"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = open_source(str(path))
    assert source.multi_label() is True
    assert source.label_names() == ["x", "y"]
    assert _labels(path) == [("x", "y"), (), ("y",)]


def test_multilabel_label_sep_with_label_map(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text('text,tags\n"first",1|2\n"second", 2 \n')
    options = {"label_column": "tags", "label_sep": "|", "label_map": {"1": "World", "2": "Sports"}}
    assert _labels(path, **options) == [("World", "Sports"), ("Sports",)]
    assert open_source(str(path), ReadOptions(**options)).multi_label() is True
    assert open_source(str(path), ReadOptions(label_column="tags")).multi_label() is False


def test_multilabel_label_sep_then_regex_per_label(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_text("text,label\nfirst,cat:1|dog:2\nsecond,dog:3\n")
    options = {"label_sep": "|", "label_regex": r"(\w+):", "label_map": {"cat": "feline"}}
    assert _labels(path, **options) == [("feline", "dog"), ("dog",)]


def test_multilabel_fasttext_several_labels(tmp_path: Path) -> None:
    path = tmp_path / "tags.ft"
    path.write_text("__label__a __label__b both here\n__label__b only b\n")
    source = open_source(str(path), ReadOptions(format="fasttext"))
    assert source.multi_label() is True
    assert [label for _, _, label in source.examples("train")] == [("a", "b"), "b"]


def test_multilabel_parquet_and_hf_lists(tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["one", "two"], "label": [["p", "q"], ["q"]]}), tmp_path / "t.parquet")
    assert _labels(tmp_path / "t.parquet") == [("p", "q"), ("q",)]
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.Sequence(datasets.ClassLabel(names=["neg", "pos"]))}
    )
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [[0, 1], [1]]}, features=features).save_to_disk(
        str(tmp_path / "saved")
    )
    assert _labels(Path(f"hf:{tmp_path / 'saved'}")) == [("neg", "pos"), ("pos",)]


def test_multilabel_label_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": ["x", null]}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl row 1 has no label; expected a label in every row"):
        _labels(path)
    sep = tmp_path / "sep.csv"
    sep.write_text("text,label\nx,a|b\n")
    with pytest.raises(DataError, match=r"--label-sep must not be empty"):
        _labels(sep, label_sep="")


def test_multilabel_metrics_match_a_direct_count() -> None:
    targets = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    probabilities = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.6], [0.7, 0.3, 0.1], [0.2, 0.1, 0.05]])
    got = multilabel_metrics(targets, probabilities, ["a", "b", "c"])
    # Predictions at 0.5: [1,0,0], [0,1,1], [1,0,0], [0,0,0].
    # a: tp 2 fp 0 fn 0; b: tp 1 fp 0 fn 1; c: tp 0 fp 1 fn 1.
    assert got["per_label"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert got["per_label"]["b"]["recall"] == 0.5 and got["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert got["per_label"]["c"]["f1"] == 0.0
    assert got["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert got["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert got["subset_accuracy"] == 0.25  # only the last row is right in every label
    assert got["hamming_loss"] == pytest.approx(3 / 12)
    expected_loss = -np.mean(targets * np.log(probabilities) + (1 - targets) * np.log(1 - probabilities))
    assert got["loss"] == pytest.approx(expected_loss)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tagged")
    rows = _tagged_rows(800)
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": tags}) + "\n" for t, tags in rows))
    (folder / "test.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": tags}) + "\n" for t, tags in _tagged_rows(80, seed=1))
    )
    (folder / "single.csv").write_text("text,label\n" + "".join(f'"{t}",{tags[0]}\n' for t, tags in rows))
    return folder


@pytest.fixture(scope="module")
def tagged_run(tagged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "tags"
    sets = [
        arg
        for item in [*TINY_OVERRIDES, "training.epochs=12", "model.embedding_dim=16", "model.lstm_units=16"]
        for arg in ("--set", item)
    ]
    result = CliRunner().invoke(
        main, ["train", "--data", str(tagged / "train.jsonl"), "--output-dir", str(run), "-q", *sets]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["validation"]["micro_f1"] > 0.8
    return run


def test_multilabel_train_evaluate_predict(cli, tagged: Path, tagged_run: Path) -> None:
    config = json.loads((tagged_run / "config.json").read_text())
    assert config["data"]["multi_label"] is True
    assert json.loads((tagged_run / "labels.json").read_text()) == ["money", "sport", "tech"]
    # Not tuned: every multi-label run still says which thresholds it uses.
    assert json.loads((tagged_run / "thresholds.json").read_text()) == {"money": 0.5, "sport": 0.5, "tech": 0.5}
    result = cli.invoke(main, ["evaluate", str(tagged_run), "--data", str(tagged / "test.jsonl"), "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["multi_label"] is True and report["examples"] == 80
    assert report["micro_f1"] > 0.8 and report["hamming_loss"] < 0.15
    assert report["thresholds"] == {"money": 0.5, "sport": 0.5, "tech": 0.5}
    assert "accuracy" not in report  # plain binary accuracy would flatter sparse targets

    result = cli.invoke(main, ["predict", str(tagged_run), "goal team league bank price stock", "-q"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["labels"] == ["money", "sport"], record


def test_multilabel_evaluate_report(cli, tagged: Path, tagged_run: Path, tmp_path: Path) -> None:
    # single.csv keeps only each example's first tag, so the (right) predicted sets of
    # multi-tag texts count as mistakes: the report has some to list.
    report = tmp_path / "report"
    args = ["evaluate", str(tagged_run), "--data", str(tagged / "single.csv"), "--report", str(report), "-q"]
    result = cli.invoke(main, args)
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert 0 <= printed["expected_calibration_error"] <= 1 and "roc_auc" not in printed
    assert json.loads((report / "metrics.json").read_text()) == printed
    assert sorted(p.name for p in report.iterdir()) == ["metrics.json", "per_label.png", "reliability.png", "report.md"]
    text = (report / "report.md").read_text()
    assert f"| micro F1 | {printed['micro_f1']:.4f} |" in text
    assert "Not drawn for a multi-label model" in text
    # Every listed mistake names label sets that differ.
    rows = [line.split(" | ") for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert rows and all(row[2] != row[3] for row in rows)


def test_multilabel_export_returns_multi_hot(cli, tagged_run: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    result = cli.invoke(main, ["export", str(tagged_run), "--export-dir", str(tmp_path / "exp"), "-q"])
    assert result.exit_code == 0, result.stderr
    serve = tf.saved_model.load(str(tmp_path / "exp" / "1")).signatures["serving_default"]
    out = serve(text=tf.constant(["goal team league bank price stock", "software chip robot"]))
    hot = out["labels_multi_hot"].numpy()
    assert hot.dtype == np.int32 and hot.tolist() == (out["probabilities"].numpy() >= 0.5).astype(int).tolist()
    assert hot.tolist()[1] == [0, 0, 1]

    # The server's XLA fast path gives the same outputs, multi-hot included.
    from textlstm.serving import Repository

    repository = Repository(tmp_path / "exp", "tags", max_batch=4)
    assert repository.refresh() == [1]
    servable = repository.get(None)
    assert servable.fast is not None
    texts = ["goal team league bank price stock", "software chip robot", "", "stock"]
    got, want = servable.run(texts), servable.run_signature(texts)
    assert sorted(got) == sorted(want) and "labels_multi_hot" in got
    assert got["labels_multi_hot"].tolist() == want["labels_multi_hot"].tolist()
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)


def test_multilabel_mode_conflicts(cli, tagged: Path, tagged_run: Path, trained_run, tmp_path: Path) -> None:
    args = ["train", "--data", str(tagged / "train.jsonl"), "--output-dir", str(tmp_path / "r")]
    result = cli.invoke(main, [*args, "--set", "data.multi_label=false"])
    assert result.exit_code == 2
    assert re.search(r"train\.jsonl row \d+ has [23] labels \[.*\]; expected one label per example", result.stderr)
    assert not (tmp_path / "r").exists()
    # A multi-label model reads single-label data as one-label sets.
    result = cli.invoke(main, ["evaluate", str(tagged_run), "--data", str(tagged / "single.csv"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 800


def test_multilabel_data_inspect(cli, tagged: Path) -> None:
    result = cli.invoke(main, ["data", "inspect", str(tagged / "train.jsonl")])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["multi_label"] is True
    assert sum(report["labels_per_example"].values()) == 800 == report["examples"]
    assert set(report["labels"]) == set(TAGS)
