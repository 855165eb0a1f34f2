"""tf.data pipelines: stream a Source's examples, hold out validation, vectorize, bucket.

Examples are streamed from Python generators and never collected into lists; an
in-memory cache (``data.cache``) keeps the vectorized ids after the first pass.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Iterator, Literal

import numpy as np

from textlstm.errors import DataError, TextlstmError
from textlstm.runtime import tensorflow
from textlstm.sources import Source

tf = tensorflow()

Part = Literal["all", "train", "val"]
_VECTORIZE_BATCH = 1024
# Errors raised inside a tf.data generator reach the caller wrapped in a TensorFlow
# error; the original is parked here so `source_errors()` can re-raise it cleanly.
_pending: list[TextlstmError] = []


def holdout_value(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the example key and the seed."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@contextlib.contextmanager
def source_errors() -> Iterator[None]:
    """Re-raise a textlstm error that happened inside a tf.data generator as itself."""
    _pending.clear()
    try:
        yield
    except tf.errors.OpError:
        if _pending:
            raise _pending.pop() from None
        raise


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
) -> Any:
    """A tf.data.Dataset of ``(text: tf.string, label: tf.int32)`` for one split, or of
    ``(text, target: tf.float32 [num_labels])`` multi-hot targets with ``multi_label``.

    ``part`` selects the training or validation side of the seeded hold-out. With
    ``limit`` the split is first thinned at random (by the same hash) to about that many
    examples, and never more.
    """
    source.check_split(split)
    index = {name: i for i, name in enumerate(label_names)}
    keep = 1.0
    size = source.count(split) if limit is not None else None
    if limit is not None and size is not None:
        keep = min(1.0, limit / max(size, 1))

    def generate() -> Iterator[tuple[str, int]]:
        try:
            for key, text, label in source.examples(split):
                u = holdout_value(key, seed)
                if u >= keep:
                    continue
                is_val = u < keep * val_fraction
                if part == "train" and is_val or part == "val" and not is_val:
                    continue
                if multi_label:
                    names = (label,) if isinstance(label, str) else label
                    unknown = [name for name in names if name not in index]
                    if unknown:
                        raise DataError(
                            f"{source.spec} has an example labelled {unknown}; expected labels among {label_names}"
                        )
                    target = np.zeros(len(label_names), np.float32)
                    target[[index[name] for name in names]] = 1.0
                    yield text, target
                    continue
                if not isinstance(label, str):
                    raise DataError(
                        f"{source.spec} example {key} has {len(label)} labels {list(label)}; expected one label "
                        "per example, or a multi-label run (data.multi_label=true)"
                    )
                if label not in index:
                    raise DataError(f"{source.spec} has an example labelled {label!r}; expected one of {label_names}")
                yield text, index[label]
        except TextlstmError as exc:
            _pending.append(exc)
            raise

    label_spec = tf.TensorSpec((len(label_names),), tf.float32) if multi_label else tf.TensorSpec((), tf.int32)
    dataset = tf.data.Dataset.from_generator(
        generate,
        output_signature=(tf.TensorSpec((), tf.string), label_spec),
    )
    if limit is not None:
        # Keep the bound exact when the per-example sampling overshoots.
        share = {"all": 1.0, "train": 1.0 - val_fraction, "val": val_fraction}[part]
        dataset = dataset.take(max(1, round(limit * share)) if part != "all" else limit)
    return dataset


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


def bucket_boundaries(max_length: int) -> list[int]:
    """Length boundaries for bucketing: about ten buckets up to ``max_length``."""
    step = max(8, max_length // 10)
    return list(range(step, max_length, step)) or [max_length]


def batched(ids: Any, batch_size: int, max_length: int, *, shuffle_buffer: int = 0, seed: int = 0) -> Any:
    """Shuffle (optionally) and batch examples of similar length together.

    Padding each batch only to its longest member instead of ``max_length`` makes the
    sequential LSTM several times faster on corpora with varied lengths.
    """
    if shuffle_buffer:
        ids = ids.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries(max_length)
    ids = ids.bucket_by_sequence_length(
        element_length_func=lambda x, y: tf.shape(x)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    return ids.prefetch(tf.data.AUTOTUNE)
