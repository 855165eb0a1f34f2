"""Custom layers: the sequence window, masked pooling, the bag of n-grams and the vocabulary cap."""

from __future__ import annotations

import numpy as np
import pytest

from textlstm.errors import ConfigError
from textlstm.layers import MaskedPooling, NgramBag, SequenceWindow, VocabularyCap

IDS = np.array([[5, 6, 7, 8, 9], [3, 4, 0, 0, 0], [0, 0, 0, 0, 0]], dtype="int64")


@pytest.mark.parametrize(
    ("keep", "length", "expected"),
    [
        ("start", 3, [[5, 6, 7], [3, 4, 0], [0, 0, 0]]),
        ("end", 3, [[7, 8, 9], [3, 4, 0], [0, 0, 0]]),
        ("end", 10, IDS.tolist()),
        ("start", 10, IDS.tolist()),
    ],
)
def test_layers_sequence_window_keeps_the_right_tokens(keep: str, length: int, expected: list) -> None:
    assert np.asarray(SequenceWindow(length, keep)(IDS)).tolist() == expected


@pytest.mark.parametrize("keep", ["start", "end"])
def test_layers_sequence_window_never_returns_zero_steps(keep: str) -> None:
    assert np.asarray(SequenceWindow(4, keep)(np.zeros((2, 0), dtype="int64"))).shape == (2, 1)


def test_layers_sequence_window_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="keep mode; expected"):
        SequenceWindow(3, "middle")
    with pytest.raises(ConfigError, match="max_length must be positive"):
        SequenceWindow(0)


def test_layers_masked_pooling_ignores_padding() -> None:
    x = np.array([[[1.0, -2.0], [3.0, -4.0], [100.0, 100.0]], [[-1.0, -1.0], [9.0, 9.0], [9.0, 9.0]]], dtype="float32")
    mask = np.array([[True, True, False], [True, False, False]])
    out = np.asarray(MaskedPooling("max_mean")(x, mask=mask))
    np.testing.assert_allclose(out, [[3.0, -2.0, 2.0, -3.0], [-1.0, -1.0, -1.0, -1.0]])


def test_layers_masked_pooling_all_masked_row_is_zero() -> None:
    x = np.full((1, 2, 3), -5.0, dtype="float32")
    out = np.asarray(MaskedPooling("max")(x, mask=np.array([[False, False]])))
    np.testing.assert_allclose(out, np.zeros((1, 3)))


def test_layers_ngram_bag_is_the_mean_of_token_and_bigram_rows() -> None:
    bag = NgramBag(vocab_size=10, order=2, buckets=7, dim=3)
    ids = np.array([[3, 4, 3, 4, 0], [0, 0, 0, 0, 0], [5, 0, 0, 0, 0]], dtype="int64")
    out = np.asarray(bag(ids))
    table = np.asarray(bag.table)
    rows, valid = (np.asarray(x) for x in bag.gram_ids(ids))
    # Row 0: tokens 3 4 3 4 and bigrams (3 4) (4 3) (3 4); the same bigram hashes to the same row.
    assert valid.tolist()[0] == [True] * 4 + [False] + [True] * 3 + [False]
    bigrams = rows[0, 5:8]
    assert bigrams[0] == bigrams[2] and all(10 <= b < 17 for b in bigrams)
    expected = (table[[3, 4, 3, 4]].sum(0) + table[bigrams].sum(0)) / 7
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    np.testing.assert_allclose(out[1], np.zeros(3))  # an empty text
    np.testing.assert_allclose(out[2], table[5], rtol=1e-6)  # one token, no bigram
    assert NgramBag(10, 1, 7, 3)(ids).shape == (3, 3)


def test_layers_naive_bayes_bag_sums_distinct_grams_times_their_ratios() -> None:
    bag = NgramBag(vocab_size=10, order=2, buckets=7, dim=2, scale=3.0, weighting="naive_bayes")
    bag.build((None, None))
    rng = np.random.default_rng(0)
    bag.table.assign(rng.normal(size=bag.table.shape))
    bag.ratio.assign(rng.normal(size=bag.ratio.shape))
    ids = np.array([[3, 4, 3, 4, 0], [3, 4, 3, 0, 0], [0, 0, 0, 0, 0]], dtype="int64")
    out = np.asarray(bag(ids))
    weighted = np.asarray(bag.table) * np.asarray(bag.ratio)
    rows = bag.gram_ids(ids[:1, :2])[0].numpy()[0]  # tokens 3 and 4, bigram (3 4)
    reverse = bag.gram_ids(np.array([[4, 3]], dtype="int64"))[0].numpy()[0, 2]  # bigram (4 3)
    # "3 4 3 4" and "3 4 3" hold the same distinct grams: 3, 4, (3 4) and (4 3), once each.
    expected = 3.0 * weighted[[*rows, reverse]].sum(0)
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)
    np.testing.assert_allclose(out[1], expected, rtol=1e-5)
    np.testing.assert_allclose(out[2], np.zeros(2))
    # The folded table (what the fast path and exports use) gives the same output.
    np.testing.assert_allclose(np.asarray(bag.pool(bag.folded_table(), ids)), out, rtol=1e-5)


def test_layers_naive_bayes_bag_adapt_counts_log_ratios() -> None:
    import tensorflow as tf

    bag = NgramBag(vocab_size=10, order=1, buckets=7, dim=2, weighting="naive_bayes")
    bag.build((None, None))
    # Label 1: {3, 5} and {3, 6} (token 3 twice in the first text counts once); label 0: {4, 5}.
    ids = tf.constant([[3, 5, 3], [3, 6, 0], [4, 5, 0]], tf.int64)
    counts = bag.adapt(tf.data.Dataset.from_tensors((ids, tf.constant([1, 1, 0]))), multi_label=False)
    assert counts == {"texts": 3, "grams_seen": 4, "rows": 10}
    ratio = np.asarray(bag.ratio)
    # Smoothing 1 on the 10 rows: label 1's counts sum to 10 + 4, the rest's to 10 + 2.
    np.testing.assert_allclose(ratio[3, 1], np.log(3 / 14) - np.log(1 / 12), rtol=1e-5)
    np.testing.assert_allclose(ratio[4, 1], np.log(1 / 14) - np.log(2 / 12), rtol=1e-5)
    np.testing.assert_allclose(ratio[5, 1], np.log(2 / 14) - np.log(2 / 12), rtol=1e-5)
    # Two labels, one against the other: the columns are opposite.
    np.testing.assert_allclose(ratio[:, 0], -ratio[:, 1], atol=1e-6)
    # Counted over batches of two and one text, then a batch of padding only: row 3, in
    # two texts of one batch, and row 5, in both batches, add up to the same ratios.
    split = NgramBag(vocab_size=10, order=1, buckets=7, dim=2, weighting="naive_bayes")
    split.build((None, None))
    padding = tf.data.Dataset.from_tensors((tf.zeros([2, 3], tf.int64), tf.constant([0, 1])))
    batches = tf.data.Dataset.from_tensor_slices((ids, tf.constant([1, 1, 0]))).batch(2).concatenate(padding)
    assert split.adapt(batches, multi_label=False) == {**counts, "texts": 5}
    np.testing.assert_array_equal(np.asarray(split.ratio), ratio)
    # Multi-label targets count each label of a text: label 0 is the first text's only.
    multi = NgramBag(vocab_size=10, order=1, buckets=7, dim=2, weighting="naive_bayes")
    multi.build((None, None))
    targets = tf.constant([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    multi.adapt(tf.data.Dataset.from_tensors((ids, targets)), multi_label=True)
    np.testing.assert_allclose(np.asarray(multi.ratio)[3, 0], np.log(2 / 12) - np.log(2 / 14), rtol=1e-5)
    # The same, one text a batch.
    single = NgramBag(vocab_size=10, order=1, buckets=7, dim=2, weighting="naive_bayes")
    single.build((None, None))
    single.adapt(tf.data.Dataset.from_tensor_slices((ids, targets)).batch(1), multi_label=True)
    np.testing.assert_array_equal(np.asarray(single.ratio), np.asarray(multi.ratio))


def test_layers_ngram_bag_rejects_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="NgramBag needs positive sizes"):
        NgramBag(vocab_size=10, order=0, buckets=7, dim=3)
    with pytest.raises(ConfigError, match="unknown NgramBag weighting; expected"):
        NgramBag(vocab_size=10, order=2, buckets=7, dim=3, weighting="tfidf")


def test_layers_vocabulary_cap_keeps_padding_and_moves_appended_tokens() -> None:
    # limit 4, offset 8: ids 0-3 stay, 4-7 become [UNK] (1), 8 and 9 (appended by a
    # fine-tuning run) follow right after the limit.
    ids = np.array([[0, 1, 2, 3, 4, 7, 8, 9]], dtype="int64")
    out = np.asarray(VocabularyCap(4, 8)(ids))
    assert out.tolist() == [[0, 1, 2, 3, 1, 1, 4, 5]]
    with pytest.raises(ConfigError, match="VocabularyCap needs 2 <= limit <= offset"):
        VocabularyCap(5, 4)


@pytest.mark.parametrize("keep", ["start", "end"])
def test_layers_lstm_window_hides_tokens_from_the_lstm_only(keep: str) -> None:
    from textlstm.config import ModelConfig
    from textlstm.model import build_classifier, training_model

    config = ModelConfig(
        embedding_dim=8, lstm_units=6, dense_units=(8,), ngram_buckets=97, lstm_length=3, naive_bayes_bag=False
    )
    classifier = build_classifier(config, 50, 2, keep=keep)
    bag = classifier.get_layer("ngram_bag")  # trained-looking rows, so the bag's output moves
    bag.table.assign(np.random.default_rng(2).normal(0, 1 / bag.scale, bag.table.shape))
    trainer = training_model(classifier)
    # Five-token texts that differ only outside the LSTM's three-token window.
    kept = [7, 8, 9]
    first = np.array([[5, 6, *kept]] if keep == "end" else [[*kept, 5, 6]], dtype="int64")
    second = np.array([[11, 12, *kept]] if keep == "end" else [[*kept, 11, 12]], dtype="int64")
    _, lstm_a, bag_a = (np.asarray(out) for out in trainer(first, training=False))
    _, lstm_b, bag_b = (np.asarray(out) for out in trainer(second, training=False))
    np.testing.assert_allclose(lstm_a, lstm_b, atol=1e-6)
    assert np.abs(bag_a - bag_b).max() > 1e-3
