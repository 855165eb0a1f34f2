"""Optimisation options: class weights, AdamW, warm-up and plateau schedules, the early
stopping monitor, TensorBoard logs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FILLER, NEGATIVE, POSITIVE, TINY_OVERRIDES
from textlstm import artifacts
from textlstm.cli import main
from textlstm.errors import ConfigError
from textlstm.optimization import PositiveWeightedBinaryCrossentropy, class_weights


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TSV with 160 'ham' and 40 'spam' rows."""
    rnd = random.Random(3)
    rows = []
    for label, words, n in (("ham", POSITIVE, 160), ("spam", NEGATIVE, 40)):
        for _ in range(n):
            text = [rnd.choice(FILLER) for _ in range(rnd.randint(3, 10))] + [rnd.choice(words)]
            rnd.shuffle(text)
            rows.append(f"{label}\t{' '.join(text)}\n")
    rnd.shuffle(rows)
    path = tmp_path_factory.mktemp("imbalanced") / "sms.tsv"
    path.write_text("".join(rows))
    return path


def _train(cli, data: Path, out: Path, *args: str):
    reading = ["--format", "tsv", "--no-header", "--label-column", "0", "--text-column", "1"]
    return cli.invoke(
        main, ["train", "--data", str(data), "--output-dir", str(out), "-q", *reading, *_sets(*TINY_OVERRIDES), *args]
    )


def test_optimization_balanced_weights_follow_the_counts() -> None:
    weights = class_weights("balanced", ["ham", "spam"], {"ham": 160, "spam": 40}, 200, multi_label=False)
    np.testing.assert_allclose(weights, [200 / (2 * 160), 200 / (2 * 40)])
    multi = class_weights("balanced", ["a", "b", "c"], {"a": 50, "b": 10, "c": 0}, 100, multi_label=True)
    np.testing.assert_allclose(multi, [1.0, 9.0, 1.0])
    assert class_weights("none", ["a", "b"], {}, 0, multi_label=False) is None


def test_optimization_weighted_bce_matches_the_formula() -> None:
    y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    p = np.array([[0.8, 0.3], [0.4, 0.6]], np.float32)
    w = np.array([2.0, 5.0])
    expected = -np.mean(w * y * np.log(p) + (1 - y) * np.log(1 - p), axis=1).mean()
    loss = PositiveWeightedBinaryCrossentropy(w)(y, p)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    restored = PositiveWeightedBinaryCrossentropy.from_config(PositiveWeightedBinaryCrossentropy(w).get_config())
    assert restored.pos_weight == [2.0, 5.0]


@pytest.mark.slow
def test_optimization_class_weight_balanced_and_file(cli, imbalanced: Path, tmp_path: Path) -> None:
    result = _train(cli, imbalanced, tmp_path / "balanced", "--class-weight", "balanced", "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    weights = json.loads((tmp_path / "balanced" / artifacts.MANIFEST_FILE).read_text())["class_weights"]
    assert weights["spam"] > 1.0 > weights["ham"]
    assert weights["spam"] / weights["ham"] == pytest.approx(160 / 40, rel=0.25)  # of the training part

    file = tmp_path / "weights.json"
    file.write_text(json.dumps({"spam": 3}))
    result = _train(cli, imbalanced, tmp_path / "file", "--class-weight", str(file), "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "file" / artifacts.MANIFEST_FILE).read_text())
    assert manifest["class_weights"] == {"ham": 1.0, "spam": 3.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"spam": 2, "eggs": 1}, "names labels the data does not have: ['eggs']"),
        ({"spam": -1}, "gives 'spam' the weight -1; expected a number > 0"),
        ([1, 2], "is not a JSON object"),
    ],
)
def test_optimization_bad_class_weight_file(cli, imbalanced: Path, tmp_path: Path, content, message: str) -> None:
    file = tmp_path / "weights.json"
    file.write_text(json.dumps(content))
    result = _train(cli, imbalanced, tmp_path / "run", "--class-weight", str(file))
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_optimization_plateau_lowers_the_rate_and_monitor_stops(cli, corpus_tar: Path, tmp_path: Path) -> None:
    # A rate too small to change any prediction: validation accuracy cannot improve after
    # epoch 1, so the plateau schedule halves the rate each epoch and patience 2 stops at 3.
    out = tmp_path / "run"
    result = cli.invoke(
        main,
        ["train", "--data", str(corpus_tar), "--output-dir", str(out), "-q", *_sets(*TINY_OVERRIDES)]
        + _sets(
            "training.learning_rate=1e-9",
            "training.lr_schedule=plateau",
            "training.plateau_patience=1",
            "training.monitor=val_accuracy",
            "training.patience=2",
            "training.epochs=6",
            "training.weight_decay=0.01",
        ),
    )
    assert result.exit_code == 0, result.stderr
    history = json.loads((out / artifacts.HISTORY_FILE).read_text())
    assert history["learning_rate"][0] == pytest.approx(1e-9)
    assert history["learning_rate"][1] == pytest.approx(1e-9)  # lowered after epoch 2, seen from epoch 3
    assert history["learning_rate"][2] == pytest.approx(5e-10)
    assert len(history["loss"]) == 3 and json.loads(result.stdout)["best_epoch"] == 1


def test_optimization_warmup_and_tensorboard(cli, corpus_tar: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = cli.invoke(
        main,
        ["train", "--data", str(corpus_tar), "--output-dir", str(out), "-q", "--tensorboard", "--epochs", "2"]
        + _sets(*TINY_OVERRIDES, "training.warmup_epochs=1", "training.patience=5"),
    )
    assert result.exit_code == 0, result.stderr
    history = json.loads((out / artifacts.HISTORY_FILE).read_text())
    # Warm-up to the 0.01 peak over epoch 1, then cosine decay to 0 over epoch 2 (the
    # schedule counts the real batches of an epoch).
    assert history["learning_rate"][0] == pytest.approx(0.01, rel=1e-3)
    assert history["learning_rate"][1] == pytest.approx(0.0, abs=1e-6)
    for part in ("train", "validation"):
        events = list((out / artifacts.TENSORBOARD_DIR / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0


def test_optimization_monitor_must_exist_for_the_model(cli, corpus_tar: Path, tmp_path: Path) -> None:
    result = cli.invoke(
        main,
        [
            "train",
            "--data",
            str(corpus_tar),
            "--output-dir",
            str(tmp_path / "r"),
            *_sets("training.monitor=val_micro_f1"),
        ],
    )
    assert result.exit_code == 2
    assert "training.monitor val_micro_f1 does not exist for a single-label model" in result.stderr


def test_optimization_config_rejects_bad_schedule_values() -> None:
    from textlstm.config import load_config

    with pytest.raises(ConfigError, match="training.warmup_epochs; expected 0 unless training.lr_schedule is cosine"):
        load_config(None, ["training.lr_schedule=constant", "training.warmup_epochs=1"])
    with pytest.raises(ConfigError, match=r"training.plateau_factor; expected a number in \(0, 1\)"):
        load_config(None, ["training.plateau_factor=1.5"])
    with pytest.raises(ConfigError, match=r"training.ema_momentum; expected a number in \[0, 1\)"):
        load_config(None, ["training.ema_momentum=1"])


def test_optimization_ema_scores_and_keeps_the_average_and_trains_on_from_the_raw_weights(
    cli, corpus_tar: Path, tmp_path: Path
) -> None:
    runs = {}
    for name, extra in (("plain", []), ("ema", ["training.ema_momentum=0.9"])):
        out = tmp_path / name
        result = cli.invoke(
            main,
            ["train", "--data", str(corpus_tar), "--output-dir", str(out), "-q", "--epochs", "3"]
            + _sets(*TINY_OVERRIDES, "training.patience=5", *extra),
        )
        assert result.exit_code == 0, result.stderr
        runs[name] = json.loads((out / artifacts.HISTORY_FILE).read_text())
        test = cli.invoke(main, ["evaluate", str(out), "--data", str(corpus_tar), "-q"])
        assert test.exit_code == 0, test.stderr
        runs[name]["test_loss"] = json.loads(test.stdout)["loss"]
    plain, ema = runs["plain"], runs["ema"]
    # The training loss is measured on the raw weights while they train: the same steps from
    # the same weights each epoch, whatever is validated and saved in between.
    assert ema["loss"] == pytest.approx(plain["loss"], rel=1e-4)
    # Validation scores the average, and the saved model is the average.
    # (Each epoch's figures as a whole: the mix of one epoch can score the same to 1e-5 by
    # chance, as it did at epoch 3 on the hold-out drawn by text, while its paths differ.)
    keys = ("val_loss", "val_lstm_probabilities_loss", "val_ngram_probabilities_loss")
    for epoch in range(len(plain["val_loss"])):
        assert max(abs(ema[key][epoch] - plain[key][epoch]) for key in keys) > 1e-5, epoch
    assert abs(ema["test_loss"] - plain["test_loss"]) > 1e-5
