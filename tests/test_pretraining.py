"""Language-model pretraining of the embedding (`pretrain.*`): its loss, what it keeps, its
config checks, and a run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_OVERRIDES
from textlstm.config import load_config
from textlstm.errors import ConfigError


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pretrain.epochs=-1"], r"pretrain\.epochs; expected an integer >= 0; received -1"),
        (["pretrain.vocabulary=2"], r"pretrain\.vocabulary; expected an integer >= 3; received 2"),
        (["pretrain.learning_rate=0"], r"pretrain\.learning_rate; expected a number > 0"),
        (["pretrain.epochs=1", "model.pooling=last"], r"pretrain\.epochs; expected 0 with model\.pooling=last"),
        (
            ["pretrain.epochs=1", "finetune.init_from=runs/base"],
            r"pretrain\.epochs; expected 0 with finetune\.init_from",
        ),
        (
            ["pretrain.epochs=1", "model.embeddings_file=v.txt", "model.freeze_embeddings=true"],
            r"pretrain\.epochs; expected 0 with model\.freeze_embeddings",
        ),
        (
            ["pretrain.epochs=1", "training.strategy=multi-worker"],
            r"pretrain\.epochs; expected 0 with training\.strategy=multi-worker",
        ),
    ],
)
def test_pretraining_config_rejects(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_pretraining_config_allows_last_pooling_over_two_layers() -> None:
    config = load_config(None, ["pretrain.epochs=1", "model.pooling=last", "model.lstm_layers=2"])
    assert config.pretrain.epochs == 1


def test_pretraining_loss_is_the_mean_cross_entropy_of_both_directions() -> None:
    from textlstm.pretraining import LanguageModelLoss

    rng = np.random.default_rng(0)
    classes, units = 5, 3
    # Right-padded rows; id 7 is beyond the language model's 5 ids, so its target is [UNK] (1).
    ids = np.array([[2, 7, 3, 4], [3, 2, 0, 0]], np.int64)
    states = rng.normal(size=(2, 4, 2 * units)).astype(np.float32)
    layer = LanguageModelLoss(classes)
    layer.build([ids.shape, states.shape])
    kf, bf = rng.normal(size=(units, classes)), rng.normal(size=classes)
    kb, bb = rng.normal(size=(units, classes)), rng.normal(size=classes)
    layer.forward_head.set_weights([kf, bf])
    layer.backward_head.set_weights([kb, bb])
    got = np.asarray(layer([ids, states]))

    def nll(state: np.ndarray, kernel: np.ndarray, bias: np.ndarray, target: int) -> float:
        logits = state @ kernel + bias
        return float(np.log(np.exp(logits).sum()) - logits[target])

    target = np.where(ids >= classes, 1, ids)
    terms = []
    for row in range(2):
        length = int((ids[row] != 0).sum())
        for t in range(length - 1):
            terms.append(nll(states[row, t, :units], kf, bf, target[row, t + 1]))  # next token
            terms.append(nll(states[row, t + 1, units:], kb, bb, target[row, t]))  # previous token
    assert len(terms) == 2 * (3 + 1)
    np.testing.assert_allclose(got, [np.mean(terms)] * 2, rtol=1e-5)


def test_pretraining_keeps_the_embedding_at_its_initial_scale_and_nothing_else() -> None:
    import keras
    import tensorflow as tf

    from textlstm.model import build_classifier
    from textlstm.pretraining import pretrain_embedding

    keras.utils.set_random_seed(0)
    config = load_config(None, [*TINY_OVERRIDES, "pretrain.epochs=3", "pretrain.learning_rate=0.01"])
    classifier = build_classifier(config.model, vocab_size=100, num_labels=2)
    # Texts of a repeating pattern: a language model can learn them.
    rows = [[2 + (i + j) % 6 for j in range(5 + i % 7)] for i in range(64)]
    ids = tf.data.Dataset.from_generator(
        lambda: ((np.array(r, np.int64), np.int64(i % 2)) for i, r in enumerate(rows)),
        output_signature=(tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)),
    )
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in classifier.layers}
    summary = pretrain_embedding(classifier, ids, config, steps_per_epoch=16, verbose=0)
    changed = {
        name
        for name, weights in before.items()
        for old, new in zip(weights, classifier.get_layer(name).get_weights(), strict=True)
        if not np.array_equal(old, new)
    }
    assert changed == {"embedding"}
    table = classifier.get_layer("embedding").get_weights()[0]
    initial_norm = np.linalg.norm(before["embedding"][0], axis=1).mean()
    np.testing.assert_allclose(np.linalg.norm(table, axis=1), initial_norm, rtol=1e-5)
    # The rows moved, not just their scale: the language model's words point elsewhere.
    cosine = np.sum(table[2:8] * before["embedding"][0][2:8], axis=1) / initial_norm**2
    assert np.all(np.abs(cosine) < 0.9)
    assert summary["epochs"] == 3 and summary["steps"] == 48 and len(summary["loss"]) == 3
    # The embedding has 20 rows under the tiny config's LSTM vocabulary cap.
    assert summary["vocabulary"] == 20
    assert summary["loss"][-1] < 0.8 * summary["loss"][0]


def test_pretraining_through_the_cli_is_recorded_and_the_model_works(cli, corpus_tar: Path, tmp_path: Path) -> None:
    from textlstm.cli import main

    out = tmp_path / "run"
    sets = [*TINY_OVERRIDES, "pretrain.learning_rate=0.01", "training.epochs=2"]
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(out), "-q", "--pretrain-epochs", "2"]
    result = cli.invoke(main, [*args, *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output + result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    pretraining = manifest["pretraining"]
    assert pretraining["epochs"] == 2 and len(pretraining["loss"]) == 2
    assert np.isfinite(pretraining["loss"]).all() and pretraining["perplexity"] > 1
    assert json.loads((out / "config.json").read_text())["pretrain"]["epochs"] == 2
    predicted = cli.invoke(main, ["predict", str(out), "wonderful superb film", "awful boring film"])
    assert predicted.exit_code == 0, predicted.output + predicted.stderr
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    assert labels == ["pos", "neg"]


def test_pretraining_under_mixed_precision_keeps_a_float32_softmax() -> None:
    import keras
    import tensorflow as tf

    from textlstm.distribution import dtype_policy
    from textlstm.model import build_classifier
    from textlstm.pretraining import language_model, pretrain_embedding

    keras.utils.set_random_seed(0)
    config = load_config(None, [*TINY_OVERRIDES, "pretrain.epochs=2", "pretrain.learning_rate=0.01"])
    rows = [[2 + (i + j) % 6 for j in range(5 + i % 7)] for i in range(64)]
    ids = tf.data.Dataset.from_generator(
        lambda: ((np.array(r, np.int64), np.int64(0)) for r in rows),
        output_signature=(tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)),
    )
    with dtype_policy("mixed_bfloat16"):
        classifier = build_classifier(config.model, vocab_size=100, num_labels=2)
        heads = language_model(classifier, 20).get_layer("language_model")
        summary = pretrain_embedding(classifier, ids, config, steps_per_epoch=16, verbose=0)
    assert classifier.get_layer("bilstm_1").compute_dtype == "bfloat16"
    assert heads.forward_head.compute_dtype == heads.backward_head.compute_dtype == "float32"
    assert np.isfinite(summary["loss"]).all() and summary["loss"][-1] < summary["loss"][0]
