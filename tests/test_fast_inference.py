"""The XLA fast path answers like the Keras model, and predict keeps order with it."""

from __future__ import annotations

import numpy as np
import pytest

from textlstm import fast_inference, prediction
from textlstm.config import ModelConfig
from textlstm.layers import MemberMix
from textlstm.model import build_classifier


@pytest.mark.parametrize(
    ("layers", "pooling", "dense", "multi_label", "chunk", "ngrams"),
    [
        (1, "max_mean", [16], False, 8, {}),
        (2, "mean", [8, 8], True, fast_inference.CHUNK, {}),
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "ngram_join": "concat"}),
        (1, "max", [8], True, fast_inference.CHUNK, {"ngram_order": 3, "ngram_join": "average", "ngram_scale": 30}),
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "lstm_tokens": 20}),
        # A capped LSTM after fine-tuning appended ids 40-49 to a 40-token base vocabulary:
        # they get embedding rows of their own after the cap's.
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "lstm_tokens": 20, "base": 40}),
        # The LSTM reads the bag's whole window (models saved before lstm_length's default).
        (
            1,
            "max_mean",
            [8],
            False,
            fast_inference.CHUNK,
            {"ngram_order": 2, "naive_bayes_bag": True, "lstm_length": None},
        ),
        # The LSTM reads a shorter window than the bag: the last 13 tokens, or the first.
        (1, "max_mean", [8], False, 4, {"ngram_order": 2, "lstm_tokens": 20, "lstm_length": 13, "keep": "end"}),
        (2, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "lstm_length": 13, "keep": "start"}),
        # A bag narrower than the labels: its head is not folded into its table.
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "ngram_dim": 2}),
        # The plain mean of models saved before the mix was tuned.
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "ngram_mix": "mean"}),
        # NBSVM's bag: distinct grams, one weighted column per label.
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "ngram_weighting": "naive_bayes"}),
        (1, "max", [8], True, 4, {"ngram_order": 3, "ngram_weighting": "naive_bayes", "lstm_length": 13}),
        # Both bags, three members.
        (1, "max_mean", [8], False, fast_inference.CHUNK, {"ngram_order": 2, "naive_bayes_bag": True}),
        (1, "max", [8], True, 4, {"ngram_order": 2, "naive_bayes_bag": True, "ngram_dim": 2, "lstm_length": 13}),
        (1, "max_mean", [8], False, 4, {"ngram_order": 2, "naive_bayes_bag": True, "naive_bayes_order": 3}),
    ],
)
def test_fast_classifier_matches_keras(
    layers: int, pooling: str, dense: list[int], multi_label: bool, chunk: int, ngrams: dict
) -> None:
    config = ModelConfig(
        embedding_dim=8,
        lstm_units=6,
        lstm_layers=layers,
        pooling=pooling,
        dense_units=dense,
        ngram_buckets=97,
        # Two members unless a case asks for the naive Bayes bag beside the bag.
        **{"naive_bayes_bag": False, **{key: value for key, value in ngrams.items() if key not in ("keep", "base")}},
    )
    classifier = build_classifier(
        config, 50, 3, multi_label=multi_label, keep=ngrams.get("keep", "start"), base_vocab_size=ngrams.get("base")
    )
    bags = [layer for layer in classifier.layers if layer.name in ("ngram_bag", "naive_bayes_bag")]
    for seed, bag in enumerate(bags):  # trained-looking weights, so each bag's share is not negligible
        bag.table.assign(np.random.default_rng(2 + seed).normal(0, 1 / bag.scale, bag.table.shape))
        if bag.naive_bayes:
            bag.ratio.assign(np.random.default_rng(7 + seed).normal(0, 1, bag.ratio.shape))
    head = classifier.get_layer("probabilities")
    if isinstance(head, MemberMix):  # a tuned mix, not the mean
        head.mix.assign(0.3 if head.members == 2 else [0.3, 0.25, 0.45])
    fast = fast_inference.FastClassifier.from_keras(classifier, 37, chunk)
    assert fast is not None
    assert len(fast.weights["bags"]) == len(bags)
    orders = {bag.name: bag.order for bag in bags}
    if "naive_bayes_bag" in orders:  # its own order, or the first bag's
        assert orders["naive_bayes_bag"] == (config.naive_bayes_order or config.ngram_order) != 0
    if fast.weights["join"] == "average":
        # A mean bag's head is folded into its table (one column per label) when that is
        # narrower; a naive Bayes bag's table has one column per label already.
        for bag in fast.weights["bags"]:
            naive_bayes = bag["layer"].naive_bayes
            assert bag["table"].shape[1] == (3 if naive_bayes else min(config.ngram_dim, 3))
    rng = np.random.default_rng(0)
    # Rows of every length, an empty one among them, right-padded as TextVectorization
    # pads; the length is not a multiple of the chunk, so the backward direction starts
    # inside a chunk.
    lengths = [0, 1, 37, 5, 19, 36, 2, 30, 11]
    ids = np.zeros((len(lengths), 37), np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 50, size=n)
    want = classifier(ids, training=False).numpy()
    np.testing.assert_allclose(fast(ids), want, atol=1e-5)
    # A batch narrower than max_length, as a batch of short texts is (same batch bucket,
    # so no second compilation).
    narrow = ids[:, :20]
    np.testing.assert_allclose(fast(narrow), classifier(narrow, training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 4])
def test_fast_classifier_folds_the_input_projection_unless_too_large(monkeypatch, chunk: int) -> None:
    classifier = build_classifier(ModelConfig(embedding_dim=8, lstm_units=6, lstm_layers=2, ngram_order=0), 50, 2)
    rng = np.random.default_rng(1)
    ids = np.zeros((5, 23), np.int32)
    for row, n in enumerate([23, 0, 7, 1, 16]):
        ids[row, :n] = rng.integers(1, 50, size=n)
    want = classifier(ids, training=False).numpy()
    folded = fast_inference.FastClassifier.from_keras(classifier, 23, chunk)
    # Every vocabulary row times its gate inputs: 50 rows x 24 gates x 2 directions.
    monkeypatch.setattr(fast_inference, "FOLD_MAX_BYTES", 50 * 24 * 2 * 4 - 1)
    unfolded = fast_inference.FastClassifier.from_keras(classifier, 23, chunk)
    assert folded.fold and not unfolded.fold
    np.testing.assert_allclose(folded(ids), want, atol=1e-5)
    np.testing.assert_allclose(unfolded(ids), want, atol=1e-5)


def test_fast_classifier_refuses_what_it_does_not_reproduce() -> None:
    classifier = build_classifier(ModelConfig(embedding_dim=8, lstm_units=6, pooling="last"), 50, 2)
    assert fast_inference.FastClassifier.from_keras(classifier, 10) is None


def test_batch_buckets() -> None:
    assert [fast_inference.batch_bucket(n) for n in (1, 3, 16, 17, 256, 257, 600)] == [1, 4, 16, 32, 256, 512, 768]


@pytest.mark.parametrize("kind", ["run", "export"])
def test_predict_fast_path_keeps_order_and_outputs(trained_run, tmp_path, monkeypatch, kind: str) -> None:
    import textlstm

    model = trained_run.output_dir if kind == "run" else textlstm.export(trained_run.output_dir, tmp_path / "exp")
    rng = np.random.default_rng(1)
    words = ["great", "superb", "film", "awful", "boring", "waste", "dull", "loved", "it", "zzz"]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 40))) for _ in range(70)]
    slow = prediction.load_predictor(model)
    want = [slow.probabilities([t])[0] for t in texts]
    fast_predictor = prediction.load_predictor(model)
    monkeypatch.setattr(prediction, "FAST_MIN_TEXTS", 8)
    items = [(i, t) for i, t in enumerate(texts)]
    out = [
        r for batch in prediction.iter_predictions(fast_predictor, items, batch_size=8, sort_window=3) for r in batch
    ]
    assert fast_predictor.fast() is not None  # the fast path was built, verified and used
    # Checked on the batches' own size: one program compiled, no batch padded beyond it.
    assert fast_predictor.fast().compiled == {8}
    assert [r["id"] for r in out] == list(range(len(texts)))
    assert [r["text"] for r in out] == texts
    got = np.array([[r["probabilities"][name] for name in slow.labels] for r in out])
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)
