"""Custom Keras layers used by the classifier; registered so saved models reload."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from textlstm.config import KEEP_MODES, NGRAM_WEIGHTINGS, POOLING_MODES
from textlstm.errors import ConfigError, describe


@keras.saving.register_keras_serializable(package="textlstm")
class SequenceWindow(keras.layers.Layer):
    """Cut right-padded id sequences to ``max_length`` tokens and keep at least one step.

    ``keep="start"`` keeps each text's first tokens, ``keep="end"`` its last ones (the
    padding stays on the right either way). A batch of empty strings would otherwise have
    zero time steps, which the LSTM cannot run on.
    """

    def __init__(self, max_length: int, keep: str = "start", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_length < 1:
            raise ConfigError(f"SequenceWindow max_length must be positive; {describe('an integer >= 1', max_length)}")
        if keep not in KEEP_MODES:
            raise ConfigError(f"unknown SequenceWindow keep mode; {describe(str(list(KEEP_MODES)), keep)}")
        self.max_length = max_length
        self.keep = keep

    def call(self, ids: Any) -> Any:
        """Return the kept window of each row, right-padded with 0 to at least one column."""
        ids = ops.pad(ids, [[0, 0], [0, ops.maximum(1 - ops.shape(ids)[1], 0)]])
        if self.keep == "end":
            lengths = ops.sum(ops.cast(ops.not_equal(ids, 0), "int32"), axis=1)
            width = ops.shape(ids)[1]
            start = ops.maximum(lengths - self.max_length, 0)
            positions = ops.expand_dims(start, 1) + ops.expand_dims(ops.arange(self.max_length, dtype="int32"), 0)
            inside = positions < ops.expand_dims(lengths, 1)
            taken = ops.take_along_axis(ids, ops.minimum(positions, width - 1), axis=1)
            ids = ops.where(inside, taken, ops.zeros_like(taken))
            # Trim the all-padding columns that short batches would otherwise carry.
            return ids[:, : ops.maximum(ops.max(lengths), 1)]
        return ids[:, : self.max_length]

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "max_length": self.max_length, "keep": self.keep}


@keras.saving.register_keras_serializable(package="textlstm")
class VocabularyCap(keras.layers.Layer):
    """Map the token ids of a shared vocabulary onto a smaller embedding: ids below
    ``limit`` stay, ids in ``[limit, offset)`` become the out-of-vocabulary id 1, and ids
    from ``offset`` on (tokens a fine-tuning run appended) follow right after ``limit``.

    This lets the LSTM embed only the most frequent tokens (rare words mostly let it
    memorise its training texts) while the n-gram bag reads the whole vocabulary.
    Padding (0) stays 0, so the embedding's mask is unchanged.
    """

    def __init__(self, limit: int, offset: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 2 <= limit <= offset:
            raise ConfigError(f"VocabularyCap needs 2 <= limit <= offset; {describe('such a pair', (limit, offset))}")
        self.limit = limit
        self.offset = offset

    def call(self, ids: Any) -> Any:
        """[batch, time] ids of the whole vocabulary -> ids of the capped one."""
        return cap_ids(ids, self.limit, self.offset)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "limit": self.limit, "offset": self.offset}


def cap_ids(ids: Any, limit: int, offset: int) -> Any:
    """`VocabularyCap`'s mapping, shared with the XLA fast path."""
    ids = ops.cast(ids, "int64")
    appended = ids - (offset - limit)
    return ops.where(ids < limit, ids, ops.where(ids >= offset, appended, ops.ones_like(ids)))


@keras.saving.register_keras_serializable(package="textlstm")
class MemberMix(keras.layers.Layer):
    """``w * first + (1 - w) * second`` of two members' probabilities, ``w`` a scalar
    weight of the layer that training does not fit: it starts at 0.5 (the plain mean) and
    is set after training on validation data (`textlstm.training`). Being a weight, it is
    saved, checkpointed and exported with the others.

    With ``members`` > 2, ``w[0] * first + w[1] * second + ...`` with one weight per member
    (summing to 1, starting equal); two members keep the scalar, so that models saved with
    it load as they were."""

    def __init__(self, members: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(members, int) or members < 2:
            raise ConfigError(f"MemberMix needs two or more members; {describe('an integer >= 2', members)}")
        self.members = members

    def build(self, input_shape: Any) -> None:
        """Create the mixing weight: 0.5, or 1 / members for each of more than two."""
        shape = () if self.members == 2 else (self.members,)
        start = keras.initializers.Constant(1.0 / self.members)
        self.mix = self.add_weight(name="mix", shape=shape, initializer=start, trainable=False)

    def call(self, inputs: list[Any]) -> Any:
        """The weighted mean of the members' probabilities."""
        weight = ops.cast(self.mix, inputs[0].dtype)
        if self.members == 2:
            first, second = inputs
            return weight * first + (1.0 - weight) * second
        total = weight[0] * inputs[0]
        for index in range(1, self.members):
            total = total + weight[index] * inputs[index]
        return total

    def compute_output_shape(self, input_shape: Any) -> Any:
        """The members' shape."""
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "members": self.members}


@keras.saving.register_keras_serializable(package="textlstm")
class MaskedPooling(keras.layers.Layer):
    """Pool a sequence over its unmasked time steps: ``max``, ``mean`` or both concatenated.

    Keras' GlobalMaxPooling1D ignores masks, so padding would leak into the maximum.
    A sequence with no unmasked step (an empty text) pools to zeros.
    """

    def __init__(self, mode: str = "max_mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in POOLING_MODES or mode == "last":
            raise ConfigError(f"unknown pooling mode; {describe(str(['max_mean', 'max', 'mean']), mode)}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        """Pool [batch, time, features] to [batch, features] (or 2x features for max_mean)."""
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        has_any = ops.cast(ops.sum(valid, axis=1) > 0, inputs.dtype)
        pooled = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.stop_gradient(ops.min(inputs)) - 1.0
            masked = ops.where(valid > 0, inputs, lowest)
            pooled.append(ops.max(masked, axis=1) * has_any)
        if self.mode in ("mean", "max_mean"):
            total = ops.sum(inputs * valid, axis=1)
            pooled.append(total / ops.maximum(ops.sum(valid, axis=1), 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        """The pooled output has no time axis, so no mask."""
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """[batch, features * (2 if max_mean else 1)]."""
        features = input_shape[-1]
        if features is not None and self.mode == "max_mean":
            features *= 2
        return (input_shape[0], features)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "mode": self.mode}


# Multipliers of the n-gram hash; odd and large, so consecutive ids spread over the buckets.
_HASH_MULTIPLIER = 1_000_003
_HASH_MODULUS = 2_147_483_647


@keras.saving.register_keras_serializable(package="textlstm")
class NgramBag(keras.layers.Layer):
    """The mean embedding of a text's tokens and hashed n-grams (fastText's bag of n-grams).

    Token ids index the first ``vocab_size`` rows of the table; each n-gram of order 2 to
    ``order`` (consecutive non-padding ids) is hashed into one of ``buckets`` rows after
    them. Working on token ids keeps the vectorizer, exports and the TFLite tokenizer as
    they are: the n-grams are formed inside the model. A text with no token pools to zeros.

    ``scale`` multiplies the mean and divides the table's initial values: the same start,
    but under Adam (whose steps do not depend on the gradient's size) the table learns
    ``scale`` times faster than the rest of the model. Each n-gram row gets a gradient from
    a few texts of a batch only, diluted over their hundreds of n-grams, so at the LSTM's
    learning rate the bag learns several times slower than it could.

    With ``weighting="naive_bayes"`` the bag is NBSVM's linear model instead (Wang & Manning
    2012): each distinct token and n-gram of a text counts once, the sum (not the mean) of
    their rows is the output, one column per label, and each row is multiplied by its
    naive Bayes log-count ratios (``ratio``, one per label against the rest), which `adapt`
    counts on the training data before training. The ratios favour the n-grams that tell
    the labels apart: under Adam, whose steps do not depend on a feature's scale, a row's
    reach grows with its ratio, and the L2 penalty ``l2`` (on the weights before the ratios,
    ``scale`` times the stored table, as NBSVM penalises its weights) holds the rest near 0.
    """

    def __init__(
        self,
        vocab_size: int,
        order: int,
        buckets: int,
        dim: int,
        scale: float = 1.0,
        weighting: str = "none",
        l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if order < 1 or buckets < 1 or dim < 1 or vocab_size < 1 or not scale > 0 or not l2 >= 0:
            raise ConfigError(
                "NgramBag needs positive sizes; "
                f"{describe('order, buckets, dim, vocab_size >= 1, scale > 0 and l2 >= 0', (order, buckets, dim, vocab_size, scale, l2))}"
            )
        if weighting not in NGRAM_WEIGHTINGS:
            raise ConfigError(f"unknown NgramBag weighting; {describe(str(list(NGRAM_WEIGHTINGS)), weighting)}")
        self.vocab_size = vocab_size
        self.order = order
        self.buckets = buckets
        self.dim = dim
        self.scale = float(scale)
        self.weighting = weighting
        self.l2 = float(l2)

    @property
    def naive_bayes(self) -> bool:
        """Whether the bag is NBSVM's linear model over distinct n-grams."""
        return self.weighting == "naive_bayes"

    def build(self, input_shape: tuple) -> None:
        """Create the embedding table: vocab_size token rows, then the n-gram buckets (and,
        for naive Bayes weighting, their ratios, set by `adapt`)."""
        rows = self.vocab_size + (self.buckets if self.order > 1 else 0)
        if self.naive_bayes:
            # A linear model has no symmetry to break. The penalty is on the weights before
            # the ratios: scale times the stored ones.
            initializer: Any = "zeros"
            regularizer = keras.regularizers.L2(self.l2 * self.scale**2) if self.l2 else None
        else:
            initializer = keras.initializers.RandomUniform(-0.05 / self.scale, 0.05 / self.scale)
            regularizer = None
        self.table = self.add_weight(
            name="table", shape=(rows, self.dim), initializer=initializer, regularizer=regularizer
        )
        if self.naive_bayes:
            # Ones until `adapt`: a plain linear bag.
            self.ratio = self.add_weight(name="ratio", shape=(rows, self.dim), initializer="ones", trainable=False)

    def gram_count(self, length: int) -> int:
        """How many grams `gram_ids` gives for rows of ``length`` tokens."""
        return sum(max(length - n + 1, 0) for n in range(1, self.order + 1))

    def gram_ids(self, ids: Any) -> tuple[Any, Any]:
        """Table rows [batch, grams] of every token and n-gram, and whether each is real."""
        ids = ops.cast(ids, "int64")
        rows, valid = [ids], [ops.not_equal(ids, 0)]
        hashed, present = ids, ops.not_equal(ids, 0)
        for n in range(2, self.order + 1):
            # n-grams starting at t: hash of the (n-1)-gram at t extended by ids[t + n - 1].
            hashed = (hashed[:, :-1] * _HASH_MULTIPLIER + ids[:, n - 1 :]) % _HASH_MODULUS
            present = ops.logical_and(present[:, :-1], ops.not_equal(ids[:, n - 1 :], 0))
            rows.append(self.vocab_size + hashed % self.buckets)
            valid.append(present)
        rows, valid = ops.concatenate(rows, axis=1), ops.concatenate(valid, axis=1)
        if self.naive_bayes:
            rows, valid = _distinct(rows, valid)
        return rows, valid

    def call(self, ids: Any) -> Any:
        """[batch, time] token ids -> [batch, dim] mean of their gram embeddings (for
        naive Bayes weighting, the sum over distinct grams of their weighted rows)."""
        return self.pool(self.table, ids, self.ratio if self.naive_bayes else None)

    def folded_table(self) -> Any:
        """The table with the naive Bayes ratios multiplied in: what `pool` needs, without
        ``ratio``, to give the layer's output."""
        return self.table * self.ratio if self.naive_bayes else self.table

    def pool(self, table: Any, ids: Any, ratio: Any = None, grams: Any = None) -> Any:
        """The layer's output with ``table`` in place of its own (the XLA fast path passes
        a constant copy of `folded_table`) and each row multiplied by ``ratio``'s if given;
        ``grams``: `gram_ids` of ``ids`` if already computed."""
        rows, valid = self.gram_ids(ids) if grams is None else grams
        vectors = ops.take(table, rows, axis=0)
        if ratio is not None:
            vectors = vectors * ops.take(ratio, rows, axis=0)
        weights = ops.expand_dims(ops.cast(valid, vectors.dtype), -1)
        total = ops.sum(vectors * weights, axis=1)
        if self.naive_bayes:
            return total * self.scale
        return total * (self.scale / ops.maximum(ops.sum(weights, axis=1), 1.0))

    def adapt(self, batches: Any, multi_label: bool, smoothing: float = 1.0) -> dict[str, Any]:
        """Set the naive Bayes ratios from a dataset of ``(ids, target, ...)`` batches:
        for label c, log((a + p) / |a + p|_1) - log((a + q) / |a + q|_1), where p counts
        the texts of label c holding each row's gram, q the other texts holding it, and a
        is ``smoothing`` (NBSVM's, one label against the rest). Returns counts for the log."""
        import numpy as np
        import tensorflow as tf

        if not self.built:
            raise ValueError("NgramBag.adapt needs a built layer")
        rows_total = int(self.table.shape[0])

        @tf.function(reduce_retracing=True)
        def count(ids: Any, target: Any) -> tuple[Any, Any, Any]:
            rows, valid = self.gram_ids(ids)
            if multi_label:
                labels = tf.cast(target, tf.float32)
            else:
                labels = tf.one_hot(tf.cast(target, tf.int32), self.dim, dtype=tf.float32)
            # Each distinct gram of a text counts once for its labels. Summed over the rows the
            # batch holds, not over the whole table: a dense [rows, labels] sum per batch cost
            # most of the pass on short texts (scripts/nb_adapt_bench.py, 60,000 SST-2-like
            # phrases: 2.0 s against 0.7 s with the default 2^19 buckets, 6.3 s against 0.9 s
            # with 2^21).
            real = tf.where(valid)  # [grams, 2]: (text, position) of each real gram
            distinct, slot = tf.unique(tf.gather_nd(rows, real))
            # float32 counts a batch's texts exactly; the totals add up in float64.
            by_label = tf.math.unsorted_segment_sum(tf.gather(labels, real[:, 0]), slot, tf.size(distinct))
            by_row = tf.math.unsorted_segment_sum(tf.ones_like(slot, tf.float32), slot, tf.size(distinct))
            return distinct, by_label, by_row

        positive = np.zeros((rows_total, self.dim))
        present = np.zeros(rows_total)
        texts = 0
        for batch in batches:
            distinct, by_label, by_row = count(batch[0], batch[1])
            # tf.unique's values are distinct, so fancy-indexed += adds each once.
            index = distinct.numpy()
            positive[index] += by_label.numpy()
            present[index] += by_row.numpy()
            texts += int(batch[0].shape[0])
        if texts == 0:
            raise ValueError("NgramBag.adapt got no texts")
        p = smoothing + positive
        q = smoothing + (present[:, None] - positive)
        ratio = np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))
        self.ratio.assign(ratio.astype(np.float32))
        return {"texts": texts, "grams_seen": int(np.count_nonzero(present)), "rows": rows_total}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """[batch, dim]."""
        return (input_shape[0], self.dim)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "order": self.order,
            "buckets": self.buckets,
            "dim": self.dim,
            "scale": self.scale,
            "weighting": self.weighting,
            "l2": self.l2,
        }


def _distinct(rows: Any, valid: Any) -> tuple[Any, Any]:
    """Each row's distinct values among its valid entries: the rows sorted, and valid
    where an entry is real and differs from its left neighbour."""
    # int32: table rows fit it, and TensorFlow sorts int32 about a third faster.
    marked = ops.sort(ops.where(valid, ops.cast(rows, "int32"), -1), axis=-1)
    first = ops.concatenate(
        [ops.ones_like(marked[:, :1], dtype="bool"), ops.not_equal(marked[:, 1:], marked[:, :-1])], axis=1
    )
    return ops.maximum(marked, 0), ops.logical_and(first, marked >= 0)
