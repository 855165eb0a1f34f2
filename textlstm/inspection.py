"""`data inspect`: what a corpus holds before training on it (sizes, labels, lengths,
empty and duplicate texts, vocabulary coverage against a model, overlap with another set)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from textlstm import artifacts
from textlstm.config import VectorizerConfig
from textlstm.file_sources import ReadOptions
from textlstm.runtime import tensorflow
from textlstm.source_spec import data_spec, open_source
from textlstm.sources import Label, Source, text_identity
from textlstm.vectorizer import make_vectorizer, read_vocabulary, standardizer

tf = tensorflow()
_BATCH = 1024
_PERCENTILES = (50, 90, 95, 99, 100)


def _digests(texts: list[str]) -> np.ndarray:
    # 8-byte hashes of the texts' identities (copies, as the hold-out groups them), kept in
    # arrays rather than a Python set, so that counting duplicates over millions of rows
    # stays within tens of MB.
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(text_identity(t).encode(), digest_size=8).digest(), "big") for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )


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


class TextSummary:
    """Accumulates what `data inspect` reports, batch by batch: label counts, token
    lengths (after the vectorizer's standardization), empty and duplicate texts, and with
    a model's vocabulary the out-of-vocabulary token rate and the share of texts longer
    than its ``max_length``."""

    def __init__(self, vectorizer: VectorizerConfig, vocabulary: list[str] | None = None) -> None:
        self._standardize = standardizer(vectorizer.standardize)
        self._lookup = None
        if vocabulary is not None:
            self._lookup = make_vectorizer(vectorizer, vocabulary=vocabulary, ragged=True)
        self.max_length = vectorizer.max_length
        self.labels: Counter[str] = Counter()
        self.sizes: Counter[int] = Counter()
        self.multi = False
        self._lengths: list[np.ndarray] = []
        self._digests: list[np.ndarray] = []
        self.empty = self.tokens = self.oov = 0

    def add(self, texts: list[str], labels: list[Label]) -> None:
        """Take one batch of texts and their labels (names, or tuples of names)."""
        for label in labels:
            names = (label,) if isinstance(label, str) else label
            self.multi = self.multi or not isinstance(label, str)
            self.labels.update(names)
            self.sizes[len(names)] += 1
        self._digests.append(_digests(texts))
        self.empty += sum(1 for t in texts if not t.strip())
        batch = tf.constant(texts)
        words = tf.strings.split(self._standardize(batch) if self._standardize else batch)
        self._lengths.append(words.row_lengths().numpy())
        if self._lookup is not None:
            ids = self._lookup(batch)
            self.tokens += int(ids.values.shape[0])
            self.oov += int(tf.reduce_sum(tf.cast(tf.equal(ids.values, 1), tf.int64)))

    def digests(self) -> np.ndarray:
        """Hashes of every text seen so far (for overlap with another corpus)."""
        return np.concatenate(self._digests) if self._digests else np.zeros(0, dtype=np.uint64)

    def report(self) -> dict[str, Any]:
        """The JSON-ready summary of everything added."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int64)
        n = int(lengths.size)
        _, repeats = np.unique(self.digests(), return_counts=True)
        report: dict[str, Any] = {
            "examples": n,
            "labels": dict(sorted(self.labels.items())),
            "multi_label": self.multi,
            "length_tokens": {f"p{p}": int(np.percentile(lengths, p)) for p in _PERCENTILES} if n else {},
            "mean_length_tokens": round(float(lengths.mean()), 1) if n else 0.0,
            "empty_texts": self.empty,
            "duplicate_texts": int((repeats - 1).sum()),
        }
        if self.multi:
            report["labels_per_example"] = {str(k): v for k, v in sorted(self.sizes.items())}
        if self._lookup is not None:
            report["oov_token_rate"] = round(self.oov / self.tokens, 4) if self.tokens else 0.0
            report["truncated_share"] = round(float((lengths > self.max_length).mean()), 4) if n else 0.0
        return report


def summarize_parts(
    examples: Iterable[tuple[str, str, Label, Any]],
    vectorizer: VectorizerConfig,
    parts: Iterable[str] = (),
    vocabulary: list[str] | None = None,
) -> dict[str, Any]:
    """`TextSummary.report` per part, in one pass over ``(part, text, label, ...)``
    tuples as yielded by `textlstm.pipeline.labelled_examples`; every name in ``parts``
    gets a report even when no example falls in it. With ``vocabulary`` (a model's),
    each report also gives the out-of-vocabulary rate and truncated share under it."""
    summaries = {part: TextSummary(vectorizer, vocabulary) for part in parts}
    batches: dict[str, tuple[list[str], list[Label]]] = {}
    for part, text, label, *_ in examples:
        texts, labels = batches.setdefault(part, ([], []))
        texts.append(text)
        labels.append(label)
        if len(texts) == _BATCH:
            summaries.setdefault(part, TextSummary(vectorizer, vocabulary)).add(texts, labels)
            batches[part] = ([], [])
    for part, (texts, labels) in batches.items():
        if texts:
            summaries.setdefault(part, TextSummary(vectorizer, vocabulary)).add(texts, labels)
    return {part: summary.report() for part, summary in summaries.items()}


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
    data = data_spec(data)
    against = None if against is None else data_spec(against)
    source = open_source(data, read_options)
    source.check_split(split)
    summary = TextSummary(VectorizerConfig())
    if model_dir is not None:
        info = artifacts.read_run_info(model_dir)
        summary = TextSummary(info.config.vectorizer, read_vocabulary(info.path / artifacts.VOCAB_FILE))
    for texts, labels in _batches(source, split):
        summary.add(texts, labels)
    report: dict[str, Any] = {"data": data, "split": split, **summary.report()}
    skipped = getattr(source, "skipped", None)
    if skipped is not None:
        report["skipped_empty_rows"] = skipped(split)
    if model_dir is not None:
        report["model"] = str(model_dir)
    if against is not None:
        other = open_source(against, read_options, file_options_only=True)
        other.check_split(against_split)
        theirs = np.concatenate([_digests(texts) for texts, _ in _batches(other, against_split)] or [_digests([])])
        report["against"] = {
            "data": against,
            "split": against_split,
            "shared_texts": int(np.isin(summary.digests(), theirs).sum()),
        }
    return report
