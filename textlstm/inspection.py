"""`data inspect`: what a corpus holds before training on it (sizes, labels, lengths,
empty and duplicate texts, vocabulary coverage against a model, overlap with another set)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from textlstm import artifacts
from textlstm.config import VectorizerConfig
from textlstm.file_sources import ReadOptions
from textlstm.runtime import tensorflow
from textlstm.source_spec import open_source
from textlstm.sources import Label, Source
from textlstm.vectorizer import make_vectorizer, read_vocabulary, standardizer

tf = tensorflow()
_BATCH = 1024
_PERCENTILES = (50, 90, 95, 99, 100)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(" ".join(text.split()).encode(), digest_size=8).digest()


def _batches(source: Source, split: str) -> Iterator[tuple[list[str], list[Label]]]:
    texts: list[str] = []
    labels: list[Label] = []
    for _, text, label in source.examples(split):
        texts.append(text)
        labels.append(label)
        if len(texts) == _BATCH:
            yield texts, labels
            texts, labels = [], []
    if texts:
        yield texts, labels


def inspect_data(
    data: str,
    split: str = "train",
    read_options: ReadOptions | None = None,
    model_dir: str | Path | None = None,
    against: str | None = None,
    against_split: str = "test",
) -> dict[str, Any]:
    """Describe a split of a source in one streaming pass and return a JSON-ready dict.

    Lengths are counted in tokens after the default standardization (or the model's, with
    ``model_dir``, which also gives the out-of-vocabulary token rate and the share of texts
    the model's vectorizer truncates). With ``against``, counts texts that also occur in
    that source's ``against_split`` (whitespace-normalised exact matches: leakage).
    """
    source = open_source(data, read_options)
    source.check_split(split)
    vectorizer_config = VectorizerConfig()
    vocabulary = None
    if model_dir is not None:
        info = artifacts.read_run_info(model_dir)
        vectorizer_config = info.config.vectorizer
        vocabulary = read_vocabulary(info.path / artifacts.VOCAB_FILE)
    standardize = standardizer(vectorizer_config.standardize)
    lookup = make_vectorizer(vectorizer_config, vocabulary=vocabulary, ragged=True) if vocabulary else None

    labels: Counter[str] = Counter()
    sizes: Counter[int] = Counter()
    multi = False
    lengths: list[np.ndarray] = []
    seen: Counter[bytes] = Counter()
    empty = tokens = oov = 0
    for texts, batch_labels in _batches(source, split):
        for label in batch_labels:
            names = (label,) if isinstance(label, str) else label
            multi = multi or not isinstance(label, str)
            labels.update(names)
            sizes[len(names)] += 1
        seen.update(_digest(t) for t in texts)
        empty += sum(1 for t in texts if not t.strip())
        batch = tf.constant(texts)
        words = tf.strings.split(standardize(batch) if standardize else batch)
        lengths.append(words.row_lengths().numpy())
        if lookup is not None:
            ids = lookup(batch)
            tokens += int(ids.values.shape[0])
            oov += int(tf.reduce_sum(tf.cast(tf.equal(ids.values, 1), tf.int64)))
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    n = int(all_lengths.size)
    report: dict[str, Any] = {
        "data": data,
        "split": split,
        "examples": n,
        "labels": dict(sorted(labels.items())),
        "multi_label": multi,
        "length_tokens": {f"p{p}": int(np.percentile(all_lengths, p)) for p in _PERCENTILES} if n else {},
        "mean_length_tokens": round(float(all_lengths.mean()), 1) if n else 0.0,
        "empty_texts": empty,
        "duplicate_texts": int(sum(c - 1 for c in seen.values() if c > 1)),
    }
    if report["multi_label"]:
        report["labels_per_example"] = {str(k): v for k, v in sorted(sizes.items())}
    skipped = getattr(source, "skipped", None)
    if skipped is not None:
        report["skipped_empty_rows"] = skipped()
    if lookup is not None:
        report["model"] = str(model_dir)
        report["oov_token_rate"] = round(oov / tokens, 4) if tokens else 0.0
        report["truncated_share"] = round(float((all_lengths > vectorizer_config.max_length).mean()), 4) if n else 0.0
    if against is not None:
        other = open_source(against, read_options)
        other.check_split(against_split)
        other_seen = {_digest(text) for _, text, _ in other.examples(against_split)}
        report["against"] = {
            "data": against,
            "split": against_split,
            "shared_texts": int(sum(c for d, c in seen.items() if d in other_seen)),
        }
    return report
