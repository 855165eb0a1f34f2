"""`train --init-from`: fine-tuning a trained run on a new corpus (vocabulary kept or
extended, head continued or replaced, layers frozen), with the OOV rate and label overlap
logged and saved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FILLER, NEGATIVE, POSITIVE, TINY_OVERRIDES
from textlstm import artifacts
from textlstm.cli import main
from textlstm.model import split_text_model


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _topic_corpus(root: Path, labels: dict[str, list[str]], n: int = 40) -> Path:
    """LABEL/<file> folders whose texts mix filler with the label's cue words."""
    rnd = random.Random(1)
    for label, cues in labels.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            words = [rnd.choice(FILLER) for _ in range(rnd.randint(4, 12))] + rnd.sample(cues, 2)
            rnd.shuffle(words)
            (root / label / f"{i}.txt").write_text(" ".join(words))
    return root


def _classifier_weights(run: Path) -> dict[str, list[np.ndarray]]:
    _, classifier = split_text_model(artifacts.load_text_model(run))
    return {layer.name: layer.get_weights() for layer in classifier.layers if layer.weights}


def _finetune(cli, base: Path, data: Path, run: Path, epochs: int, *options: str, sets: tuple[str, ...] = ()):
    """`textlstm train --init-from BASE` on ``data`` with a 20 % hold-out and batches of 16."""
    command = ["train", "--init-from", str(base), "--data", str(data), "--output-dir", str(run)]
    command += ["--epochs", str(epochs), *options]
    command += _sets("data.val_fraction=0.2", "training.batch_size=16", "training.min_epoch_steps=0", *sets)
    return cli.invoke(main, command)


def test_finetune_same_labels_continues_the_head(cli, trained_run, tmp_path: Path) -> None:
    base = trained_run.output_dir
    # The same labels, new wording: half the cue words are new to the base vocabulary.
    data = _topic_corpus(
        tmp_path / "data",
        {"pos": [*POSITIVE[:4], "splendid", "marvellous"], "neg": [*NEGATIVE[:4], "dreadful", "lousy"]},
    )
    run = tmp_path / "ft"
    result = _finetune(cli, base, data, run, 1)
    assert result.exit_code == 0, result.stderr
    assert "its output layer continues" in result.stderr
    assert "out-of-vocabulary tokens under the base vocabulary" in result.stderr
    assert "what the base model trained on" not in result.stderr  # another corpus
    manifest = json.loads((run / artifacts.MANIFEST_FILE).read_text())
    finetune = manifest["finetune"]
    assert finetune["head"] == "continued" and finetune["shared_labels"] == ["neg", "pos"]
    assert 0.0 < finetune["oov_token_rate"] < 0.5
    assert finetune["init_from"] == str(base)
    # Vocabulary kept exactly, label order the base's, the base's architecture.
    assert (run / artifacts.VOCAB_FILE).read_text() == (base / artifacts.VOCAB_FILE).read_text()
    assert json.loads((run / artifacts.LABELS_FILE).read_text()) == json.loads(
        (base / artifacts.LABELS_FILE).read_text()
    )
    config = json.loads((run / artifacts.CONFIG_FILE).read_text())
    assert config["model"] == json.loads((base / artifacts.CONFIG_FILE).read_text())["model"]
    assert config["finetune"]["init_from"] == str(base)
    # The fine-tuning learning rate (3e-4 peak, cosine over one epoch) is below the base's 1e-2.
    history = json.loads((run / artifacts.HISTORY_FILE).read_text())
    assert history["learning_rate"][0] <= 3e-4


def test_finetune_new_labels_new_head_extended_vocab_frozen_encoder(cli, trained_run, tmp_path: Path) -> None:
    base = trained_run.output_dir
    data = _topic_corpus(
        tmp_path / "data",
        {
            "sport": ["goal", "match", "team", "coach"],
            "money": ["bank", "price", "stock", "market"],
            "pos": POSITIVE[:4],
        },
    )
    run = tmp_path / "ft"
    result = _finetune(cli, base, data, run, 2, "--extend-vocab", "5", "--freeze", "encoder")
    assert result.exit_code == 0, result.stderr
    assert "a new output layer is trained on its encoder" in result.stderr
    assert "freezing embedding, ngram_bag, bilstm_1" in result.stderr
    finetune = json.loads((run / artifacts.MANIFEST_FILE).read_text())["finetune"]
    assert finetune["head"] == "new" and finetune["shared_labels"] == ["pos"]
    assert finetune["vocabulary"]["tokens"] == finetune["vocabulary"]["base_tokens"] + 5
    old_vocab = (base / artifacts.VOCAB_FILE).read_text().split("\n")[:-1]
    new_vocab = (run / artifacts.VOCAB_FILE).read_text().split("\n")[:-1]
    assert new_vocab[: len(old_vocab)] == old_vocab and len(new_vocab) == len(old_vocab) + 5
    assert json.loads((run / artifacts.CONFIG_FILE).read_text())["vectorizer"]["max_tokens"] == len(new_vocab)
    assert set(new_vocab[len(old_vocab) :]) <= {"goal", "match", "team", "coach", "bank", "price", "stock", "market"}
    before, after = _classifier_weights(base), _classifier_weights(run)
    # Frozen encoder: the old embedding rows and the LSTM weights are the base's, exactly.
    # (TINY_OVERRIDES cap the LSTM embedding: the appended tokens follow the capped rows.)
    rows = before["embedding"][0].shape[0]
    assert after["embedding"][0].shape[0] == rows + 5
    np.testing.assert_array_equal(after["embedding"][0][:rows], before["embedding"][0])
    for old, new in zip(before["bilstm_1"], after["bilstm_1"], strict=True):
        np.testing.assert_array_equal(old, new)
    assert after["lstm_probabilities"][0].shape[1] == after["ngram_probabilities"][0].shape[1] == 3


def test_finetune_on_the_base_corpus_warns_when_its_hold_out_is_drawn_otherwise(
    cli, trained_run, corpus_tar: Path, tmp_path: Path
) -> None:
    # The same archive and split with another seed: most of this hold-out trained the base.
    result = _finetune(cli, trained_run.output_dir, corpus_tar, tmp_path / "ft", 1, sets=("training.seed=7",))
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "what the base model trained on" in line]
    assert len(warning) == 1 and "training.seed=42" in warning[0], result.stderr
    assert "data.holdout_by" not in warning[0] and "data.val_fraction" not in warning[0]


@pytest.mark.slow
def test_finetune_unfreeze_after_trains_the_encoder(cli, trained_run, tmp_path: Path) -> None:
    base = trained_run.output_dir
    data = _topic_corpus(tmp_path / "data", {"pos": POSITIVE[:5], "neg": NEGATIVE[:5]})
    run = tmp_path / "ft"
    result = _finetune(
        cli, base, data, run, 2, "--freeze", "embedding", "--unfreeze-after", "1", sets=("training.patience=5",)
    )
    assert result.exit_code == 0, result.stderr
    assert "unfreezing embedding" in result.stderr
    before, after = _classifier_weights(base), _classifier_weights(run)
    assert not np.array_equal(after["embedding"][0], before["embedding"][0])


def test_finetune_bad_base_names_the_missing_file(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run.output_dir, broken)
    (broken / artifacts.VOCAB_FILE).unlink()
    run = tmp_path / "ft"
    result = cli.invoke(
        main,
        [
            "train",
            "--init-from",
            str(broken),
            "--data",
            str(corpus_tar),
            "--output-dir",
            str(run),
            *_sets(*TINY_OVERRIDES),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and "missing vocab.txt" in result.stderr
    assert not run.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--freeze", "encoder"], "finetune.freeze; expected none without finetune.init_from"),
        (["--extend-vocab", "10"], "finetune.extend_vocab; expected 0 without finetune.init_from"),
        (["--unfreeze-after", "0", "--init-from", "x"], "finetune.unfreeze_after; expected null or an integer >= 1"),
    ],
)
def test_finetune_bad_options(cli, corpus_tar: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli.invoke(main, ["train", "--data", str(corpus_tar), "--output-dir", str(tmp_path / "r"), *args])
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and message in result.stderr


@pytest.mark.slow
def test_finetune_of_an_ngram_ensemble_moves_the_hash_buckets_with_the_vocabulary(
    cli, corpus_tar: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    # The default bigram ensemble with a small table, its LSTM embedding capped at 20 ids.
    ensemble = ["model.ngram_buckets=64", "model.lstm_tokens=20"]
    command = ["train", "--data", str(corpus_tar), "--output-dir", str(base), "--epochs", "1"]
    result = cli.invoke(main, [*command, *_sets(*TINY_OVERRIDES, *ensemble)])
    assert result.exit_code == 0, result.stderr
    history = json.loads((base / artifacts.HISTORY_FILE).read_text())
    assert {"lstm_probabilities_loss", "ngram_probabilities_loss", "objective", "val_loss"} <= set(history)
    # "loss" is the averaged model's cross-entropy (as val_loss is), "objective" the sum of
    # the paths' losses; the average's loss is at most their mean (convexity).
    assert 0 < history["loss"][0] <= history["objective"][0] / 2 + 1e-6
    data = _topic_corpus(tmp_path / "data", {"sport": ["goal", "match", "team"], "money": ["bank", "price", "stock"]})
    run = tmp_path / "ft"
    result = _finetune(cli, base, data, run, 1, "--extend-vocab", "5", "--freeze", "encoder")
    assert result.exit_code == 0, result.stderr
    assert "freezing embedding, ngram_bag, bilstm_1" in result.stderr
    old_vocab = len((base / artifacts.VOCAB_FILE).read_text().split("\n")[:-1])
    before, after = _classifier_weights(base), _classifier_weights(run)
    old_table, new_table = before["ngram_bag"][0], after["ngram_bag"][0]
    assert new_table.shape == (old_vocab + 5 + 64, old_table.shape[1])
    # Frozen: the old token rows and every bucket are the base's, the buckets after the new tokens.
    np.testing.assert_array_equal(new_table[:old_vocab], old_table[:old_vocab])
    np.testing.assert_array_equal(new_table[old_vocab + 5 :], old_table[old_vocab:])
    assert after["lstm_probabilities"][0].shape[1] == after["ngram_probabilities"][0].shape[1] == 2
    # The LSTM embeds the 20 capped ids and then the 5 appended tokens, the old rows kept.
    assert before["embedding"][0].shape[0] == 20 and after["embedding"][0].shape[0] == 25
    np.testing.assert_array_equal(after["embedding"][0][:20], before["embedding"][0])
    predicted = cli.invoke(main, ["predict", str(run), "goal match bank"])
    assert predicted.exit_code == 0, predicted.stderr
    assert json.loads(predicted.stdout)["label"] in ("sport", "money")
    # Fine-tuning the fine-tuned run appends after the first run's tokens, same cap.
    weather = _topic_corpus(tmp_path / "w", {"sport": ["rain", "snow", "wind"], "money": ["sun", "fog", "hail"]})
    again = tmp_path / "ft2"
    result = _finetune(cli, run, weather, again, 1, "--extend-vocab", "4", "--freeze", "embedding")
    assert result.exit_code == 0, result.stderr
    twice = _classifier_weights(again)
    assert twice["embedding"][0].shape[0] == 29
    np.testing.assert_array_equal(twice["embedding"][0][:25], after["embedding"][0])


@pytest.mark.slow
def test_finetune_from_a_model_saved_before_the_ngram_path(cli, corpus_tar: Path, tmp_path: Path) -> None:
    import textlstm
    from textlstm.config import load_config

    # A plain BiLSTM whose config.json holds only the keys of the first saved models (those
    # of the IMDB model bundled until 2026-12-03): no n-gram path, vocabulary cap, epoch
    # minimum, fine-tuning section or later training options.
    plain = ["model.ngram_order=0", "model.lstm_tokens=null", "training.epochs=1"]
    base = textlstm.train(str(corpus_tar), tmp_path / "old", load_config(None, [*TINY_OVERRIDES, *plain]), verbose=0)
    config_file = base.output_dir / artifacts.CONFIG_FILE
    first_keys = {
        "data": {
            *("cache", "eval_split", "limit", "multi_label", "shuffle_buffer", "train_split", "val_fraction"),
            "vocab_sample",
        },
        "model": {"dense_units", "dropout", "embedding_dim", "lstm_layers", "lstm_units", "pooling", "spatial_dropout"},
        "training": {
            *("batch_size", "clipnorm", "epochs", "learning_rate", "lr_schedule", "patience", "seed"),
            "steps_per_epoch",
        },
        "vectorizer": {"keep", "max_length", "max_tokens", "standardize", "vocab_file"},
    }
    saved = {
        section: {key: value for key, value in values.items() if key in first_keys[section]}
        for section, values in json.loads(config_file.read_text()).items()
        if section in first_keys
    }
    config_file.write_text(json.dumps(saved))
    # Cue words the base never saw, for --extend-vocab to append.
    cues = {"pos": [*POSITIVE[:3], "splendid", "marvellous"], "neg": [*NEGATIVE[:3], "dreadful", "lousy"]}
    data = _topic_corpus(tmp_path / "data", cues)
    run = tmp_path / "ft"
    result = _finetune(cli, base.output_dir, data, run, 1, "--extend-vocab", "3")
    assert result.exit_code == 0, result.stderr
    # The run keeps the base's architecture: no n-gram table, every token embedded.
    config = json.loads((run / artifacts.CONFIG_FILE).read_text())
    assert config["model"]["ngram_order"] == 0 and config["model"]["lstm_tokens"] is None
    weights = _classifier_weights(run)
    assert "ngram_bag" not in weights
    vocabulary = (run / artifacts.VOCAB_FILE).read_text().splitlines()
    assert len(vocabulary) > len((base.output_dir / artifacts.VOCAB_FILE).read_text().splitlines())
    assert weights["embedding"][0].shape[0] == len(vocabulary)
    assert textlstm.predict(run, ["loved it"])[0]["label"] in ("pos", "neg")
