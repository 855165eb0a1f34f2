"""tf.data pipelines: stream a Source's examples, hold out validation, vectorize, bucket.

Examples are streamed from Python generators and never collected into lists; an
in-memory cache (``data.cache``) keeps the vectorized ids after the first pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from typing import Any, Iterator, Literal

import numpy as np

from textlstm.config import HOLDOUT_BY
from textlstm.errors import DataError, TextlstmError
from textlstm.runtime import tensorflow
from textlstm.sources import Label, Source, text_identity

tf = tensorflow()

Part = Literal["all", "train", "val"]
_VECTORIZE_BATCH = 1024
# Examples leave the Python generator in blocks of this many, split again by `unbatch`:
# tf.data's generator costs about 0.4 ms per element it yields, which for the 22,485 IMDB
# training reviews was 9.5 s of a 12.9 s pass (the Python reading alone took 3.3 s).
_GENERATOR_BLOCK = 256
# Errors raised inside a tf.data generator reach the caller wrapped in a TensorFlow
# error; the original is parked here so `source_errors()` can re-raise it cleanly.
_pending: list[TextlstmError] = []
# Errors that ended a dataset early (`text_dataset` with ``end_on_error``).
_ended: list[TextlstmError] = []


def holdout_value(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the example key and the seed."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@contextlib.contextmanager
def source_errors() -> Iterator[None]:
    """Re-raise a textlstm error that happened inside a tf.data generator as itself, also
    one that ended a dataset early (`text_dataset` with ``end_on_error``)."""
    _pending.clear()
    _ended.clear()
    try:
        yield
    except tf.errors.OpError:
        if _pending:
            raise _pending.pop() from None
        raise
    except Exception:
        # A reading error that ended a dataset early is the cause of what failed after it
        # ("no examples", say).
        if _ended:
            raise _ended.pop() from None
        raise
    if _ended:
        raise _ended.pop()


def labelled_examples(
    source: Source,
    split: str,
    label_names: list[str],
    *,
    parts: tuple[Part, ...] = ("all",),
    seed: int = 0,
    val_fraction: float = 0.0,
    limit: int | None = None,
    multi_label: bool = False,
    holdout_by: str = "text",
) -> Iterator[tuple[Part, str, Label, Any]]:
    """Read a split once and yield ``(part, text, label, target)`` for the examples of the
    requested ``parts``: "train" or "val" (the two sides of the seeded hold-out), or
    "all". ``target`` is the label's index, or a float32 multi-hot vector with
    ``multi_label``. With ``limit`` the split is thinned at random (by the same hash) to
    about that many examples, and each part is cut at its share of ``limit``.

    The hash is of the seed and, with ``holdout_by="text"``, the example's `text_identity`,
    so that copies of a text share a side; with ``"key"``, of its stable key.
    """
    if holdout_by not in HOLDOUT_BY:  # a caller's bug: the config checks users' values
        raise ValueError(f"holdout_by must be one of {list(HOLDOUT_BY)}, not {holdout_by!r}")
    source.check_split(split)
    index = {name: i for i, name in enumerate(label_names)}
    keep = 1.0
    size = source.count(split) if limit is not None else None
    if limit is not None and size is not None:
        keep = min(1.0, limit / max(size, 1))
    bounds: dict[str, float] = dict.fromkeys(parts, math.inf)
    if limit is not None:
        # The parts add up to exactly `limit`; a hold-out that is asked for gets at least one.
        val_bound = max(1, round(limit * val_fraction)) if val_fraction > 0 else 0
        share = {"all": limit, "train": limit - val_bound, "val": val_bound}
        bounds = {part: share[part] for part in parts}
    taken = dict.fromkeys(parts, 0)
    for key, text, label in source.examples(split):
        u = 0.0
        if keep < 1.0 or "all" not in parts:  # a whole split read unthinned needs no hash
            u = holdout_value(text_identity(text) if holdout_by == "text" else key, seed)
        if u >= keep:
            continue
        part: Part = "all" if "all" in parts else "val" if u < keep * val_fraction else "train"
        if part not in parts or taken[part] >= bounds[part]:
            if all(taken[p] >= bounds[p] for p in parts):
                return  # every part is full: spare reading the rest
            continue
        taken[part] += 1
        yield part, text, label, _target(source, key, label, index, label_names, multi_label)


def _target(source: Source, key: str, label: Label, index: dict[str, int], names: list[str], multi: bool) -> Any:
    if multi:
        wanted = (label,) if isinstance(label, str) else label
        unknown = [name for name in wanted if name not in index]
        if unknown:
            raise DataError(f"{source.spec} {source.where(key)} is labelled {unknown}; expected labels among {names}")
        target = np.zeros(len(names), np.float32)
        target[[index[name] for name in wanted]] = 1.0
        return target
    if not isinstance(label, str):
        if len(label) != 1:
            raise DataError(
                f"{source.spec} {source.where(key)} has {len(label)} labels {list(label)}; expected one label "
                "per example, or a multi-label run (data.multi_label=true)"
            )
        label = label[0]
    if label not in index:
        raise DataError(f"{source.spec} {source.where(key)} is labelled {label!r}; expected one of {names}")
    return index[label]


def text_dataset(
    source: Source,
    split: str,
    label_names: list[str],
    *,
    part: Part = "all",
    seed: int = 0,
    val_fraction: float = 0.0,
    limit: int | None = None,
    multi_label: bool = False,
    end_on_error: bool = False,
    holdout_by: str = "text",
) -> Any:
    """A tf.data.Dataset of ``(text: tf.string, label: tf.int32)`` for one part of a split
    (see `labelled_examples`), or of ``(text, target: tf.float32 [num_labels])`` multi-hot
    targets with ``multi_label``.

    A textlstm error while reading fails the dataset's iteration, and `source_errors()`
    re-raises it; TensorFlow then logs the error with its traceback on stderr. With
    ``end_on_error`` the dataset ends at the error instead, which `source_errors()` raises
    when its block ends: for a consumer that reads the dataset once, such as an evaluation,
    which must not train on in the meantime."""
    source.check_split(split)
    label_dtype = np.float32 if multi_label else np.int32
    label_shape = (-1, len(label_names)) if multi_label else (-1,)

    def block(texts: list[str], targets: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        return np.array(texts, dtype=object), np.array(targets, dtype=label_dtype).reshape(label_shape)

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        texts: list[str] = []
        targets: list[Any] = []
        try:
            for _, text, _, target in labelled_examples(
                source,
                split,
                label_names,
                parts=(part,),
                seed=seed,
                val_fraction=val_fraction,
                limit=limit,
                multi_label=multi_label,
                holdout_by=holdout_by,
            ):
                texts.append(text)
                targets.append(target)
                if len(texts) == _GENERATOR_BLOCK:
                    yield block(texts, targets)
                    texts, targets = [], []
        except TextlstmError as exc:
            if end_on_error:
                _ended.append(exc)
                return
            _pending.append(exc)
            raise
        if texts:
            yield block(texts, targets)

    label_spec = tf.TensorSpec((None, *label_shape[1:]), tf.as_dtype(label_dtype))
    blocks = tf.data.Dataset.from_generator(generate, output_signature=(tf.TensorSpec((None,), tf.string), label_spec))
    return blocks.unbatch()


def texts_only(dataset: Any) -> Any:
    """Batches of texts (labels dropped), for vocabulary adaptation."""
    return dataset.map(lambda text, label: text).batch(_VECTORIZE_BATCH)


def id_dataset(texts: Any, vectorizer: Any, max_length: int, keep: str = "start") -> Any:
    """Vectorize ``(text, label)`` pairs into ``(ids, label)``, one example each, keeping
    the first (``keep="start"``) or last (``"end"``) ``max_length`` tokens.

    ``vectorizer`` must be a ragged TextVectorization layer: batching the strings first
    lets TextVectorization run on 1,024 texts at a time, then the batch is split again.
    """

    def vectorize(text: Any, label: Any) -> tuple[Any, Any]:
        ids = vectorizer(text)
        return (ids[:, -max_length:] if keep == "end" else ids[:, :max_length]), label

    def densify(ids: Any, label: Any) -> tuple[Any, Any]:
        # Unbatching a ragged batch yields ragged rank-0 specs; an identity map turns
        # them into plain tensors that padded_batch accepts.
        return tf.cast(ids, tf.int32), label

    return texts.batch(_VECTORIZE_BATCH).map(vectorize, num_parallel_calls=tf.data.AUTOTUNE).unbatch().map(densify)


def bucket_boundaries(bucket_length: int) -> list[int]:
    """Length boundaries for bucketing: about ten buckets up to ``bucket_length`` (the
    LSTM's longest window, `Config.lstm_steps`; longer texts share the last bucket)."""
    step = max(8, bucket_length // 10)
    return list(range(step, bucket_length, step)) or [bucket_length]


def count_batches(ids: Any, batch_size: int, bucket_length: int) -> int:
    """How many batches `batched` makes of ``ids`` in one pass (one pass over the data; on
    a cached dataset it is the pass that fills the cache). Each length bucket yields full
    batches and one partial one, whatever the order, so the count does not depend on the
    shuffle."""
    lengths = np.fromiter(ids.map(lambda x, *target: tf.shape(x)[0]).as_numpy_iterator(), dtype=np.int64)
    per_bucket = np.bincount(np.searchsorted(bucket_boundaries(bucket_length), lengths, side="right"))
    return int(np.sum(-(-per_bucket // batch_size)))


def batched(ids: Any, batch_size: int, bucket_length: int, *, shuffle_buffer: int = 0, seed: int = 0) -> Any:
    """Shuffle (optionally) and batch ``(ids, target[, weight])`` examples of similar
    length together.

    Padding each batch only to its longest member instead of ``max_length`` makes the
    sequential LSTM several times faster on corpora with varied lengths.
    """
    if shuffle_buffer:
        ids = ids.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries(bucket_length)
    ids = ids.bucket_by_sequence_length(
        element_length_func=lambda x, *target: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return ids.prefetch(tf.data.AUTOTUNE)
