"""Fast in-process inference for the default classifier family (Embedding -> bidirectional
LSTM -> masked pooling -> Dense layers), compiled with XLA.

Keras runs a masked LSTM as a TensorFlow while loop of a dozen small ops per time step,
each with its own dispatch cost, for every padded step of the batch. Here the same
function is written for XLA, which fuses each step into one kernel:

* both directions run in one loop (a batched matmul of the two recurrent kernels);
* the input projection ``x @ kernel`` can be hoisted out of the step: it is computed
  for a block of `CHUNK` time steps at a time as one matmul (measured: no gain on this
  model on 2 cores, so the default block is one step; see `CHUNK`);
* the first layer's input projection is folded into the embedding: ``embedding @ kernel
  + bias`` is computed once per vocabulary row when the model is loaded, so a step looks
  its gate inputs up by token id instead of multiplying (the input projection's FLOPs,
  half of the LSTM's when embedding_dim equals lstm_units as by default; measured on
  IMDB's bundled model, ids -> probabilities, 1.35x on two threads and 1.6x on one; see
  `FOLD_MAX_BYTES`);
* the loop runs only as many steps as the longest text in the batch (a run-time trip
  count), so the input shape can stay fixed at ``max_length`` columns and XLA compiles
  once per batch size instead of once per batch length;
* max and mean pooling are accumulated inside the loop, so the per-step outputs are
  never stored.

The masked semantics are Keras': a masked step keeps the states, and pooling sees only
unmasked steps. Outputs agree with the Keras model within float32 rounding (checked by
the tests within 1e-5). XLA is for this process only: exported SavedModels keep Keras'
graph, which TensorFlow Serving can run without XLA.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from textlstm.runtime import tensorflow

tf = tensorflow()
log = logging.getLogger(__name__)
# Time steps per hoisted input projection: one [batch * CHUNK, features] matmul, then
# CHUNK recurrent steps unrolled in the loop body. Measured on the plain BiLSTM bundled before
# 2026-12-03 with scripts/predict_bench.py (2 cores): 1 was as fast as 4 or 8 at batch 128 and
# faster at batch 16 (10.9 ms against 16.5 ms for 400 steps), 16 and 32 were up to half as fast, and
# compiling takes 0.7 s per batch size against 1.6 s for 8.
CHUNK = 1
# Batch sizes are padded up to one of these (then to multiples of the largest), so that
# XLA compiles a handful of programs however requests are sized, and memory stops
# growing once they are compiled.
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The output every fast path computes, and the key `FastTextModel.outputs` gives it under.
PROBABILITIES = "probabilities"
# The first LSTM layer's input projection is folded into the embedding when the folded
# table, [2 directions, vocabulary rows, 4 * units] float32, is at most this size (10 MB
# for the default model; 8 * units / embedding_dim times the embedding table's size), so
# that a large vocabulary or wide LSTM does not trade memory for a small gain.
FOLD_MAX_BYTES = 128 * 2**20


def batch_bucket(size: int, sizes: tuple[int, ...] = BATCH_SIZES) -> int:
    """The smallest allowed batch size that holds ``size`` rows."""
    for allowed in sizes:
        if size <= allowed:
            return allowed
    top = sizes[-1]
    return -(-size // top) * top


class FastClassifier:
    """ids -> probabilities, equal to a Keras classifier built by `build_classifier`
    (single- or multi-label head, any pooling but ``last``, any number of dense layers,
    one or more bidirectional LSTM layers with Keras' default activations)."""

    def __init__(self, weights: dict[str, Any], max_length: int, chunk: int = CHUNK, fold: bool = True) -> None:
        """``weights``: see `extract_weights`; ``max_length``: the longest id row;
        ``chunk``: time steps per hoisted input projection (see `CHUNK`); ``fold``: use
        the first layer's folded input projection when `extract_weights` made one (False
        is for benchmarks: the per-step projection it replaced)."""
        self.max_length = max_length
        self.chunk = chunk
        self.fold = fold and weights["lstm"][0].get("folded") is not None
        # Columns padded to a whole number of chunks, so every chunk slice is in bounds.
        self.columns = -(-max(1, max_length) // chunk) * chunk
        # The arrays of `extract_weights`, public so that a variant (another chunk size,
        # fold=False for a benchmark) can be built without extracting them again.
        self.weights = weights
        # Traced once per batch bucket with static shapes: a dynamic batch size inside the
        # loop would make XLA treat slice starts as compile-time constants and recompile
        # for every batch length.
        self._xla = tf.function(self._forward, jit_compile=True, autograph=False)
        self._fn = tf.function(self._call, autograph=False)

    @classmethod
    def from_keras(cls, classifier: Any, max_length: int, chunk: int = CHUNK) -> FastClassifier | None:
        """The fast equivalent of an ids -> probabilities Keras classifier, or None when it
        has a layer or setting this module does not reproduce (then use Keras)."""
        weights = extract_weights(classifier)
        if weights is None:
            return None
        return cls(weights, max_length, chunk)

    def pad(self, ids: np.ndarray) -> np.ndarray:
        """Right-pad id rows with 0 to the fixed column count and the rows to a batch bucket."""
        ids = np.asarray(ids, dtype=np.int32)
        rows, cols = ids.shape
        out = np.zeros((batch_bucket(max(rows, 1)), self.columns), dtype=np.int32)
        out[:rows, : min(cols, self.columns)] = ids[:, : self.columns]
        return out

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of right-padded id rows (any width up to max_length)."""
        rows = len(ids)
        return self._fn(tf.constant(self.pad(ids))).numpy()[:rows]

    def graph_call(self, ids: Any) -> Any:
        """Probabilities for an int tensor of padded id rows, inside a tf.function (the
        caller pads to `columns` and a batch bucket)."""
        return self._fn(ids)

    def _call(self, ids: Any) -> Any:
        # A naive Bayes bag's distinct grams come from a sort, which XLA compiles into a
        # slower loop than TensorFlow's own kernel (IMDB, 64 reviews: 4.5 ms against 1.6
        # ms), so they are found before the XLA program and passed in. Outside XLA the
        # shapes need not be static: the sort covers the batch's longest row only (the rows
        # are right-padded, and grams with padding are not real), and the result is padded
        # to the width the full columns give.
        grams: list[Any] = []
        for bag in self.weights["bags"]:
            layer = bag["layer"]
            if not layer.naive_bayes:
                grams.append(())
                continue
            longest = tf.reduce_max(tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1))
            rows, valid = layer.gram_ids(ids[:, : tf.maximum(longest, 1)])
            pad = [[0, 0], [0, layer.gram_count(ids.shape[1]) - tf.shape(rows)[1]]]
            grams.append((tf.pad(rows, pad), tf.pad(valid, pad)))
        return self._xla(ids, grams)

    # The XLA program. Shapes: B rows, T = self.columns, E features, U units per direction.
    def _forward(self, ids: Any, grams: list[Any]) -> Any:
        w = self.weights
        ids = tf.cast(ids, tf.int32)
        lstm_ids = ids
        if w["window"] is not None:
            lstm_ids = _window(ids, *w["window"])
            # Whole chunks again, so that every chunk slice of the loop is in bounds.
            lstm_ids = tf.pad(lstm_ids, [[0, 0], [0, -lstm_ids.shape[1] % self.chunk]])
        mask = tf.not_equal(lstm_ids, 0)
        # Steps to run: the last unmasked column of any row, plus one.
        positions = tf.range(1, tf.shape(lstm_ids)[1] + 1)
        steps = tf.reduce_max(tf.where(mask, positions[None, :], 0))
        from textlstm.layers import cap_ids

        if w["cap"] is not None:
            lstm_ids = tf.cast(cap_ids(lstm_ids, *w["cap"]), tf.int32)
        layers = w["lstm"]
        # Folded: the first layer gathers its gate inputs by id, so no embedding rows are needed.
        x = lstm_ids if self.fold else tf.gather(w["embedding"], lstm_ids)
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            folded = i == 0 and self.fold
            x = _bidirectional(x, mask, steps, layer, self.chunk, pooled=last, pooling=w["pooling"], folded=folded)
        bags = [bag["layer"].pool(bag["table"], ids, grams=g or None) for bag, g in zip(w["bags"], grams, strict=True)]
        if w["join"] == "concat":
            x = tf.concat([x, *bags], axis=-1)
        for kernel, bias in w["dense"]:
            x = tf.nn.relu(tf.matmul(x, kernel) + bias)
        activation = tf.nn.sigmoid if w["multi_label"] else tf.nn.softmax
        probabilities = activation(tf.matmul(x, w["head_kernel"]) + w["head_bias"])
        if w["join"] == "average":
            members = [probabilities]
            for bag, pooled in zip(w["bags"], bags, strict=True):
                kernel, bias = bag["head"]
                # Without a kernel the table already holds the head's (`_fold_bag_head`).
                logits = pooled + bias if kernel is None else tf.matmul(pooled, kernel) + bias
                members.append(activation(logits))
            mix = w["mix"]
            if isinstance(mix, float):
                probabilities = mix * members[0] + (1.0 - mix) * members[1]
            else:
                probabilities = sum((weight * member for weight, member in zip(mix, members, strict=True)), 0.0)
        return probabilities


def _window(ids: Any, length: int, keep: str) -> Any:
    """`SequenceWindow` with a static width: the first or last ``length`` tokens of each
    right-padded row, right-padded to min(length, columns) columns."""
    columns = ids.shape[1]
    width = min(length, columns)
    if keep != "end" or columns <= length:
        return ids[:, :width]
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)
    positions = tf.maximum(lengths - length, 0)[:, None] + tf.range(width)[None, :]
    taken = tf.gather(ids, tf.minimum(positions, columns - 1), batch_dims=1)
    return tf.where(positions < lengths[:, None], taken, tf.zeros_like(taken))


def _bidirectional(
    x: Any, mask: Any, steps: Any, layer: dict[str, Any], k: int, pooled: bool, pooling: str, folded: bool = False
) -> Any:
    """One masked bidirectional LSTM layer over ``x`` [B, T, E] (with ``folded``: over id
    rows [B, T], whose gate inputs are rows of ``layer["folded"]``): with ``pooled`` the
    concatenated (max, mean) pooling of its outputs [B, 2U per mode], else its output
    sequence [B, T, 2U] (zeros at masked steps; the next layer masks them anyway)."""
    kernel, recurrent, bias = layer["kernel"], layer["recurrent"], layer["bias"]  # [2,E,4U] [2,U,4U] [2,4U]
    units = recurrent.shape[1]
    batch, columns = mask.shape[0], mask.shape[1]
    # K zero columns on the left: the backward direction's first chunk may start before
    # column 0 (when steps is not a multiple of K); there the mask is False.
    span = tf.range(k)
    dtype = tf.float32
    x = tf.pad(x, [[0, 0], [k, 0]] + ([] if folded else [[0, 0]]))
    maskf = tf.pad(tf.cast(mask, dtype), [[0, 0], [k, 0]])
    chunks = (steps + k - 1) // k
    zeros = tf.zeros([2, batch, units], dtype)
    big = tf.fill([2, batch, units], tf.constant(-np.inf, dtype))
    sequence = tf.zeros([2, columns + k, batch, units], dtype) if not pooled else tf.zeros([0], dtype)

    def chunk(c: Any, h: Any, cell: Any, high: Any, total: Any, sequence: Any) -> tuple[Any, ...]:
        start_f = k + c * k
        start_b = k + steps - (c + 1) * k
        # Gathers, not slices: XLA would take a slice's start as a compile-time constant
        # and recompile for every batch length.
        mf = tf.gather(maskf, start_f + span, axis=1)
        mb = tf.gather(maskf, start_b + span, axis=1)
        if folded:
            # The input projection of K steps for both directions, looked up: [2, K, B, 4U].
            table = layer["folded"]
            idf = tf.transpose(tf.gather(x, start_f + span, axis=1))  # [K, B]
            idb = tf.transpose(tf.gather(x, start_b + span, axis=1))
            gates_in = tf.stack([tf.gather(table[0], idf), tf.gather(table[1], idb)])
        else:
            xf = tf.gather(x, start_f + span, axis=1)
            xb = tf.gather(x, start_b + span, axis=1)
            # The hoisted input projection of K steps for both directions: [2, K, B, 4U].
            gates_in = tf.einsum("dbte,deg->dtbg", tf.stack([xf, xb]), kernel) + bias[:, None, None, :]
        masks = tf.transpose(tf.stack([mf, mb]), [0, 2, 1])  # [2, K, B]
        outputs = []
        for j in range(k):
            # Forward reads chunk step j, backward step K-1-j (it walks right to left).
            # One batched matmul for both directions (measured faster than two).
            z = tf.stack([gates_in[0, j], gates_in[1, k - 1 - j]]) + tf.matmul(h, recurrent)
            m = tf.stack([masks[0, j], masks[1, k - 1 - j]])[:, :, None] > 0
            gi, gf, gc, go = tf.split(z, 4, axis=-1)  # Keras' gate order: i, f, c, o
            new_c = tf.sigmoid(gf) * cell + tf.sigmoid(gi) * tf.tanh(gc)
            new_h = tf.sigmoid(go) * tf.tanh(new_c)
            cell = tf.where(m, new_c, cell)
            h = tf.where(m, new_h, h)
            if pooled:
                high = tf.where(m, tf.maximum(high, new_h), high)
                total = total + tf.where(m, new_h, 0.0)
            else:
                outputs.append(tf.where(m, new_h, 0.0))
        if not pooled:
            # Time-major [T + K, B, U] per direction; the backward block is written back in
            # left-to-right time order.
            fwd = tf.stack([o[0] for o in outputs])
            bwd = tf.stack([o[1] for o in reversed(outputs)])
            sequence = tf.stack(
                [
                    tf.tensor_scatter_nd_update(sequence[0], (start_f + span)[:, None], fwd),
                    tf.tensor_scatter_nd_update(sequence[1], (start_b + span)[:, None], bwd),
                ]
            )
        return c + 1, h, cell, high, total, sequence

    _, _, _, high, total, sequence = tf.while_loop(
        lambda c, *_: c < chunks,
        chunk,
        (tf.constant(0), zeros, zeros, big, zeros, sequence),
        maximum_iterations=columns // k,
    )
    if not pooled:
        # [B, T, 2U]: forward then backward features, as Bidirectional(merge_mode="concat").
        seq = tf.transpose(sequence[:, k:], [0, 2, 1, 3])  # [2, B, T, U]
        return tf.concat([seq[0], seq[1]], axis=-1)
    count = tf.reduce_sum(tf.cast(mask, dtype), axis=1)[None, :, None]  # [1, B, 1]
    parts = []
    if pooling in ("max", "max_mean"):
        parts.append(tf.where(count > 0, high, 0.0))
    if pooling in ("mean", "max_mean"):
        parts.append(total / tf.maximum(count, 1.0))
    # [dir, B, U] -> [B, dir*U] per mode: (max_f, max_b, mean_f, mean_b), Keras' layout.
    return tf.concat([tf.concat([p[0], p[1]], axis=-1) for p in parts], axis=-1)


def extract_weights(classifier: Any) -> dict[str, Any] | None:
    """The arrays of a `build_classifier` model in the layout `FastClassifier` uses, or
    None (with the reason logged at debug level) when the model has anything else."""
    import keras

    from textlstm.layers import MaskedPooling, MemberMix, NgramBag, SequenceWindow, VocabularyCap
    from textlstm.model import MEMBER_HEADS, NAIVE_BAYES_BAG_NAME, NGRAM_BAG_NAME

    # Each bag's output layer, by the bag's name.
    bag_heads = {MEMBER_HEADS[1]: NGRAM_BAG_NAME, MEMBER_HEADS[2]: NAIVE_BAYES_BAG_NAME}
    weights: dict[str, Any] = {
        "lstm": [],
        "dense": [],
        "pooling": None,
        "bags": [],
        "join": None,
        "cap": None,
        "window": None,
    }
    dense: list[tuple[Any, Any, str]] = []
    try:
        layers = classifier.layers
    except AttributeError:
        return None

    def refuse(why: str) -> None:
        log.debug("no fast path for %s: %s", getattr(classifier, "name", classifier), why)

    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, (keras.layers.Dropout, keras.layers.SpatialDropout1D)):
            continue  # identity at inference
        if isinstance(layer, SequenceWindow):
            # Only the LSTM's own window lives inside the classifier (build_classifier).
            if "embedding" in weights or weights["cap"] is not None or weights["window"] is not None:
                return refuse("token window after the embedding or repeated")
            weights["window"] = (layer.max_length, layer.keep)
            continue
        if isinstance(layer, VocabularyCap):
            if "embedding" in weights or weights["cap"] is not None:
                return refuse("vocabulary cap after the embedding or repeated")
            weights["cap"] = (layer.limit, layer.offset)
            continue
        if isinstance(layer, keras.layers.Embedding):
            if "embedding" in weights or not layer.mask_zero:
                return refuse("embedding without mask_zero or repeated")
            weights["embedding"] = np.asarray(layer.embeddings.numpy(), np.float32)
            continue
        if isinstance(layer, keras.layers.Bidirectional):
            if weights["pooling"] is not None or dense:
                return refuse("LSTM after pooling")
            directions = [layer.forward_layer, layer.backward_layer]
            if layer.merge_mode != "concat" or not all(_plain_lstm(d) for d in directions):
                return refuse("unsupported LSTM settings")
            if directions[0].go_backwards or not directions[1].go_backwards:
                return refuse("unexpected LSTM directions")
            cells = [d.cell for d in directions]
            weights["lstm"].append(
                {
                    "kernel": tf.constant(np.stack([c.kernel.numpy() for c in cells]), tf.float32),
                    "recurrent": tf.constant(np.stack([c.recurrent_kernel.numpy() for c in cells]), tf.float32),
                    "bias": tf.constant(np.stack([c.bias.numpy() for c in cells]), tf.float32),
                }
            )
            continue
        if isinstance(layer, MaskedPooling):
            if not weights["lstm"] or weights["pooling"] is not None:
                return refuse("pooling not after the LSTM")
            weights["pooling"] = layer.mode
            continue
        if isinstance(layer, NgramBag):
            if layer.name not in bag_heads.values() or any(bag["layer"].name == layer.name for bag in weights["bags"]):
                return refuse(f"n-gram bag {layer.name}")
            weights["bags"].append(
                {
                    "layer": layer,
                    "table": tf.constant(keras.ops.convert_to_numpy(layer.folded_table()), tf.float32),
                    "head": None,
                }
            )
            continue
        if isinstance(layer, (keras.layers.Concatenate, keras.layers.Average, MemberMix)):
            # The only merges `build_classifier` makes: pooled LSTM states with the bag, or
            # the members' probabilities.
            if not weights["bags"] or weights["pooling"] is None or weights["join"] is not None:
                return refuse(f"{type(layer).__name__} of unknown inputs")
            weights["join"] = "concat" if isinstance(layer, keras.layers.Concatenate) else "average"
            # The members' mix: tuned after training (the LSTM's share of two members, or
            # each member's weight), or the mean of two.
            weights["mix"] = 0.5
            if isinstance(layer, MemberMix):
                mix = layer.mix.numpy()
                weights["mix"] = float(mix) if mix.ndim == 0 else tuple(float(v) for v in mix)
            continue
        if isinstance(layer, keras.layers.Dense):
            # A bag's output layer may come before the LSTM's pooling in layer order.
            if (weights["pooling"] is None and layer.name not in bag_heads) or not layer.use_bias:
                return refuse("Dense before pooling or without bias")
            activation = getattr(layer.activation, "__name__", "")
            kernel, bias = tf.constant(layer.kernel.numpy()), tf.constant(layer.bias.numpy())
            if layer.name in bag_heads:
                bag = next((b for b in weights["bags"] if b["layer"].name == bag_heads[layer.name]), None)
                if bag is None or bag["head"] is not None:
                    return refuse(f"output layer {layer.name} without its bag")
                bag["head"] = (kernel, bias)
                continue
            dense.append((kernel, bias, activation))
            continue
        return refuse(f"layer {type(layer).__name__}")
    if "embedding" not in weights or not weights["lstm"] or weights["pooling"] is None or not dense:
        return refuse("missing embedding, LSTM, pooling or head")
    headless = [bag["head"] is None for bag in weights["bags"]]
    if (not weights["bags"]) != (weights["join"] is None) or (
        any(headless) if weights["join"] == "average" else not all(headless)
    ):
        return refuse("an n-gram bag without its join or head")
    if weights["join"] == "concat" and len(weights["bags"]) > 1:
        return refuse("two bags joined to the LSTM")
    # The mix weighs the members in `MEMBER_HEADS` order, whatever the layers' order.
    order = list(bag_heads.values())
    weights["bags"].sort(key=lambda bag: order.index(bag["layer"].name))
    mix = weights.get("mix")
    members = 1 + len(weights["bags"])
    if weights["join"] == "average" and (len(mix) if isinstance(mix, tuple) else 2) != members:
        return refuse(f"a mix of {mix} for {members} members")
    *hidden, head = dense
    if head[2] not in ("softmax", "sigmoid") or any(h[2] != "relu" for h in hidden):
        return refuse(f"activations {[d[2] for d in dense]}")
    weights["dense"] = [(kernel, bias) for kernel, bias, _ in hidden]
    first = weights["lstm"][0]
    rows, gates = weights["embedding"].shape[0], first["kernel"].shape[-1]
    if 2 * rows * gates * 4 <= FOLD_MAX_BYTES:
        # embedding @ kernel + bias for every vocabulary row and direction, [2, V, 4U],
        # in float64 then rounded once: as exact as the float32 matmul it replaces. One
        # direction at a time keeps the float64 intermediate at the float32 table's size.
        embedding = weights["embedding"].astype(np.float64)
        kernels, biases = first["kernel"].numpy().astype(np.float64), first["bias"].numpy().astype(np.float64)
        first["folded"] = tf.constant(
            np.stack([(embedding @ kernels[d] + biases[d]).astype(np.float32) for d in range(2)])
        )
    for bag in weights["bags"] if weights["join"] == "average" else ():
        _fold_bag_head(bag)
    weights["embedding"] = tf.constant(weights["embedding"])
    weights["head_kernel"], weights["head_bias"] = head[0], head[1]
    weights["multi_label"] = head[2] == "sigmoid"
    return weights


def _fold_bag_head(bag: dict[str, Any]) -> None:
    """Fold an ensemble bag's output layer into its table when that makes it narrower.

    The bag's output is a weighted sum of table rows (a mean, or the naive Bayes sum),
    and its head is linear up to the activation, so the head's kernel can multiply the
    table once instead of every pooled vector: rows of ``num_labels`` instead of
    ``ngram_dim`` floats to gather and add per n-gram (a default IMDB model's bag: 2 against
    16, a table of 1.3 MB instead of 10 MB). Rounded once from float64, so the logits differ
    from Keras' by float32 rounding only."""
    kernel, bias = bag["head"]
    table = bag["table"]
    if kernel.shape[1] >= table.shape[1]:
        return  # a naive Bayes bag (identity kernel), or more labels than bag dimensions
    folded = table.numpy().astype(np.float64) @ kernel.numpy().astype(np.float64)
    bag["table"] = tf.constant(folded.astype(np.float32))
    bag["head"] = (None, bias)


def _plain_lstm(layer: Any) -> bool:
    import keras

    if not isinstance(layer, keras.layers.LSTM):
        return False
    config = layer.get_config()
    return (
        config["activation"] == "tanh"
        and config["recurrent_activation"] == "sigmoid"
        and config["use_bias"]
        and config["return_sequences"]
        and not config["stateful"]
        and not config.get("return_state")
    )


def signature_outputs(probabilities: Any, labels: Any, k: int, thresholds: Any | None = None) -> dict[str, Any]:
    """The ``serving_default`` outputs computed from ``probabilities`` [None, num_labels]:
    label, score, top_k_labels/top_k_scores (K = ``k``) and, with a multi-label model's
    float64 ``thresholds``, labels_multi_hot. The export's signature and the server's
    fast path both call this, so they answer alike."""
    best = tf.argmax(probabilities, axis=-1)
    outputs = {
        PROBABILITIES: probabilities,
        "label": tf.gather(labels, best),
        "score": tf.reduce_max(probabilities, axis=-1),
    }
    top_scores, top_indices = tf.math.top_k(probabilities, k=k)
    outputs["top_k_labels"] = tf.gather(labels, top_indices)
    outputs["top_k_scores"] = top_scores
    if thresholds is not None:
        # Compared in float64, as predict and the metrics do.
        outputs["labels_multi_hot"] = tf.cast(tf.cast(probabilities, tf.float64) >= thresholds, tf.int32)
    return outputs


class FastTextModel:
    """Raw texts -> probabilities: the model's own TextVectorization (TensorFlow string
    ops, not XLA: they have no XLA kernels) then `FastClassifier` on id rows padded to a
    fixed width and a batch bucket, optionally followed by ``post`` (probabilities -> named
    outputs, e.g. a signature's label and top-k).

    All three run in one graph call per batch, traced once per batch bucket: a server's
    batches of a few texts spent 15-20 % of their time passing ids and probabilities
    between separate calls through NumPy (measured on IMDB's model: 11.4 ms against
    13.2 ms for 8 reviews, 17.4 against 20.5 for 16; `scripts/loadtest.py` went from
    857-925 to 1,009-1,030 requests/s, see the README's Results).
    """

    def __init__(self, vectorize: Any, classifier: FastClassifier, post: Any = None) -> None:
        """``vectorize``: a tf.function from tf.string [None] to right-padded id rows;
        ``post``: probabilities [None, num_labels] -> dict of tensors, traced into the
        same graph (None: `outputs` returns the probabilities alone)."""
        self._vectorize = vectorize
        self.classifier = classifier
        self._post = post
        # Batch sizes compiled so far: a smaller batch is padded up to one of them rather
        # than compiling another program (a new size costs about a second).
        self.compiled: set[int] = set()
        self._graphs: dict[int, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_text_model(cls, text_model: Any) -> FastTextModel | None:
        """Build from a string-in Keras model (`build_text_model`); None if unsupported."""
        from textlstm.model import split_text_model

        try:
            vectorizer, classifier = split_text_model(text_model)
            window = text_model.get_layer("window")
        except ValueError:
            return None
        fast = FastClassifier.from_keras(classifier, window.max_length)
        if fast is None:
            return None
        return cls(_vectorize_fn(vectorizer, window), fast)

    @classmethod
    def from_export(cls, path: Path, config: Any, variables: list[Any], num_labels: int) -> FastTextModel | None:
        """Rebuild from an export folder: the vectorizer from ``assets/vocab.txt`` and the
        config in ``assets/metadata.json``, the classifier's weights from the SavedModel's
        ``variables`` (in the Keras model's weight order). None when they do not fit."""
        from textlstm import artifacts
        from textlstm.layers import SequenceWindow
        from textlstm.model import build_classifier
        from textlstm.vectorizer import make_vectorizer, read_vocabulary

        values = [v.numpy() for v in variables if "seed_generator" not in v.name]
        if not values or values[0].ndim != 2:
            return None
        try:
            vocabulary = read_vocabulary(path / artifacts.EXPORT_ASSETS_DIR / artifacts.VOCAB_FILE)
            # The embedding is the first variable; under a vocabulary cap its rows are the
            # cap plus the tokens a fine-tuning run appended after the base vocabulary.
            size = len(vocabulary) + 2  # padding and [UNK], which the file leaves out
            rows, capped = int(values[0].shape[0]), config.model.lstm_tokens
            base = None if capped is None or capped >= size else capped + size - rows
            classifier = build_classifier(
                config.model,
                size,
                num_labels,
                bool(config.data.multi_label),
                base_vocab_size=base,
                keep=config.vectorizer.keep,
            )
            classifier.set_weights(values)
            vectorizer = make_vectorizer(config.vectorizer, vocabulary)
        except Exception as exc:  # an export this code cannot rebuild: serve its signature
            log.debug("no fast path for %s: %s", path, exc)
            return None
        fast = FastClassifier.from_keras(classifier, config.vectorizer.max_length)
        if fast is None:
            return None
        window = SequenceWindow(config.vectorizer.max_length, config.vectorizer.keep, name="window")
        return cls(_vectorize_fn(vectorizer, window), fast)

    def ids(self, texts: list[str]) -> np.ndarray:
        """The model's right-padded id rows for ``texts``."""
        return self._vectorize(tf.constant(texts, dtype=tf.string)).numpy()

    def with_outputs(self, post: Any) -> FastTextModel:
        """The same model with ``post`` after the probabilities (see `outputs`)."""
        return FastTextModel(self._vectorize, self.classifier, post)

    def probabilities(self, texts: list[str], bucket: int | None = None) -> np.ndarray:
        """Class probabilities, [len(texts), num_labels]; the batch is padded to ``bucket``
        rows (default: the smallest compiled size that holds it, else its `batch_bucket`)."""
        return self.outputs(texts, bucket)[PROBABILITIES]

    def outputs(self, texts: list[str], bucket: int | None = None) -> dict[str, np.ndarray]:
        """``post``'s outputs for ``texts`` (without ``post``: ``probabilities`` only), one
        row per text; the batch is padded as in `probabilities`."""
        rows = len(texts)
        if bucket is None:
            # sorted() copies the set in one step: worker threads may add to it meanwhile.
            fitting = [size for size in sorted(self.compiled) if size >= rows]
            bucket = fitting[0] if fitting else batch_bucket(max(rows, 1))
        out = self._graph(bucket)(tf.constant(texts, dtype=tf.string))
        return {key: value.numpy() for key, value in out.items()}

    def _graph(self, bucket: int) -> Any:
        """The text -> outputs graph for batches padded to ``bucket`` rows (traced on first use)."""
        with self._lock:
            graph = self._graphs.get(bucket)
            if graph is None:
                columns = self.classifier.columns

                def run(text: Any) -> dict[str, Any]:
                    ids = tf.cast(self._vectorize(text), tf.int32)[:, :columns]
                    rows = tf.shape(ids)[0]
                    # Static shape for XLA: one program per bucket, whatever the batch's length.
                    ids = tf.pad(ids, [[0, bucket - rows], [0, columns - tf.shape(ids)[1]]])
                    probabilities = self.classifier.graph_call(tf.reshape(ids, [bucket, columns]))[:rows]
                    return self._post(probabilities) if self._post is not None else {PROBABILITIES: probabilities}

                graph = tf.function(run, input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
                self._graphs[bucket] = graph
            self.compiled.add(bucket)
        return graph

    def warm_up(self, max_batch: int) -> list[int]:
        """Compile every batch bucket up to ``max_batch`` now (a server does this before it
        answers, so no request waits for a compilation and memory stops growing early);
        return the buckets."""
        sizes = sorted({batch_bucket(n) for n in BATCH_SIZES if n <= max_batch} | {batch_bucket(max_batch)})
        for size in sizes:
            self.probabilities(["warm up"], bucket=size)
        return sizes


def _vectorize_fn(vectorizer: Any, window: Any) -> Any:
    return tf.function(
        lambda text: window(vectorizer(text)),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )


def verified(
    fast: FastTextModel | None,
    reference: Callable[[list[str]], Any] | concurrent.futures.Future,
    texts: list[str],
    tolerance: float = 1e-5,
    bucket: int | None = None,
) -> FastTextModel | None:
    """``fast`` if its probabilities on ``texts`` are within ``tolerance`` of the
    reference's (the Keras model or the SavedModel signature: a function called on
    ``texts``, or the future of its answers on them, started by the caller so that it runs
    while the fast path is built and compiled), else None (logged): a fast path that does
    not answer like the model is never used. ``bucket``: the batch bucket to check on
    (default: the texts' own), e.g. the one the caller uses next, which then needs no
    compilation of its own."""
    if fast is None:
        return None
    # In batches of the bucket, so that it is the only program compiled: a smaller batch
    # would otherwise be padded up to the larger program the check compiled.
    size = bucket or batch_bucket(max(len(texts), 1))
    parts = [fast.probabilities(texts[i : i + size], bucket=size) for i in range(0, max(len(texts), 1), size)]
    got = np.concatenate(parts).astype(np.float64)
    answers = reference.result() if isinstance(reference, concurrent.futures.Future) else reference(texts)
    want = np.asarray(answers, dtype=np.float64)
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if got.shape != want.shape or diff > tolerance:
        log.warning("the XLA fast path differs from the model by %.1e; using the model itself", diff)
        return None
    log.debug("XLA fast path verified on %d texts (max difference %.1e)", len(texts), diff)
    return fast
