"""Naive Bayes counting benchmark: `NgramBag.adapt` against a reference in the same process.

The naive Bayes bag counts, before training, how many texts of each label hold each of its
table's rows (one pass over the training part). The reference here is the counting as it
was until 2026-12-05: each batch summed into a dense [rows, labels] array, which costs the
whole table per batch however few rows the batch holds. `NgramBag.adapt` sums over the
rows the batch holds. Both run on the same synthetic batches (token ids drawn from a Zipf
law, lengths from an exponential law around the given mean: long reviews and short
phrases), alternating, and must give the same ratios (the float32 the layer stores equals
the reference's float64 rounded to it; the script exits with an error otherwise).

Usage: python scripts/nb_adapt_bench.py [--buckets 524288 2097152] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VOCAB = 30_000
BATCH = 128
# name -> (batches, mean tokens a text): about IMDB's training part and SST-2's.
CORPORA = {"long texts (IMDB-like)": (176, 238), "short texts (SST-2-like)": (474, 9)}


def synthetic_batches(batches: int, mean_length: int, seed: int) -> list[tuple[Any, Any]]:
    """``batches`` batches of (ids [BATCH, longest], binary labels), padded with 0."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        lengths = np.clip(rng.exponential(mean_length, BATCH).astype(int) + 3, 3, 1500)
        ids = np.zeros((BATCH, lengths.max()), np.int64)
        for i, length in enumerate(lengths):
            # Zipf draws start at 1, so no token is padding; the rarest share the last token row.
            ids[i, :length] = np.minimum(rng.zipf(1.2, length), VOCAB - 1)
        out.append((tf.constant(ids), tf.constant(rng.integers(0, 2, BATCH))))
    return out


def reference_ratios(bag: Any, batches: list[tuple[Any, Any]], smoothing: float = 1.0) -> np.ndarray:
    """The ratios counted with a dense [rows, labels] sum per batch (the code before)."""
    import tensorflow as tf

    rows_total = int(bag.table.shape[0])

    @tf.function(reduce_retracing=True)
    def count(ids: Any, target: Any) -> tuple[Any, Any]:
        rows, valid = bag.gram_ids(ids)
        labels = tf.one_hot(tf.cast(target, tf.int32), bag.dim, dtype=tf.float32)
        per_gram = tf.cast(valid, tf.float32)[:, :, None] * labels[:, None, :]
        flat_rows = tf.reshape(rows, [-1])
        by_label = tf.math.unsorted_segment_sum(tf.reshape(per_gram, [-1, bag.dim]), flat_rows, rows_total)
        by_row = tf.math.unsorted_segment_sum(tf.reshape(tf.cast(valid, tf.float32), [-1]), flat_rows, rows_total)
        return by_label, by_row

    positive = np.zeros((rows_total, bag.dim))
    present = np.zeros(rows_total)
    for ids, target in batches:
        by_label, by_row = count(ids, target)
        positive += by_label.numpy()
        present += by_row.numpy()
    p = smoothing + positive
    q = smoothing + (present[:, None] - positive)
    return np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))


def main() -> None:
    """Time both countings per corpus shape and bucket count; print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, nargs="+", default=[524288, 2097152])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1; received {args.rounds}")

    from textlstm.layers import NgramBag

    results = []
    for name, (batches, mean_length) in CORPORA.items():
        data = synthetic_batches(batches, mean_length, seed=0)
        for buckets in args.buckets:
            bag = NgramBag(VOCAB, 2, buckets, 2, scale=5.0, weighting="naive_bayes")
            bag.build((None, None))
            times: dict[str, list[float]] = {"reference": [], "adapt": []}
            for _ in range(args.rounds):
                tick = time.perf_counter()
                expected = reference_ratios(bag, data)
                times["reference"].append(time.perf_counter() - tick)
                tick = time.perf_counter()
                bag.adapt(data, multi_label=False)
                times["adapt"].append(time.perf_counter() - tick)
            difference = float(np.max(np.abs(np.asarray(bag.ratio) - expected)))
            if not np.array_equal(np.asarray(bag.ratio), expected.astype(np.float32)):
                sys.exit(f"nb_adapt_bench: adapt's ratios differ from the reference's ({name}, {buckets} buckets)")
            row = {
                "corpus": name,
                "buckets": buckets,
                "texts": batches * BATCH,
                "reference_seconds": [round(t, 2) for t in times["reference"]],
                "adapt_seconds": [round(t, 2) for t in times["adapt"]],
                "speedup": round(min(times["reference"]) / min(times["adapt"]), 2),
                "largest_ratio_difference": difference,
            }
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    print("| texts | buckets | reference (s) | adapt (s) | speed-up, best of each | largest ratio difference |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['corpus']}, {row['texts']} | {row['buckets']} | "
            f"{', '.join(map(str, row['reference_seconds']))} | {', '.join(map(str, row['adapt_seconds']))} | "
            f"{row['speedup']}x | {row['largest_ratio_difference']:.1e} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
