"""Streaming benchmark: train on a JSONL corpus larger than memory budgets and report peak RSS.

Builds a JSONL file of at least --gigabytes GB in a temporary folder by repeating the IMDB
training reviews (row numbers are the keys, and the run's hold-out hashes them,
`data.holdout_by=key`, so that it is a sample of rows as in the earlier measurements rather
than every copy of a dozen reviews), then
trains through the public API with the data cache off, a bounded vocabulary sample and
a bounded number of steps, and prints JSON with the file size, timings and the peak
resident memory of the process (ru_maxrss, which includes TensorFlow itself).

Usage: python scripts/stream_bench.py --imdb ../shared/data/imdb/aclImdb_labeled.tar.gz [--gigabytes 5] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import resource
import tarfile
import tempfile
import time
from pathlib import Path


def build_corpus(imdb: Path, target: Path, gigabytes: float) -> int:
    """Write repeated IMDB training reviews as JSONL until the file reaches the size."""
    reviews = []
    with tarfile.open(imdb) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] == "train" and parts[2] in ("pos", "neg"):
                reviews.append((tar.extractfile(member).read().decode("utf-8"), parts[2]))
    lines = [json.dumps({"text": text, "label": label}) + "\n" for text, label in reviews]
    block = "".join(lines).encode()
    limit = int(gigabytes * 1e9)
    written = 0
    with open(target, "wb") as handle:
        while written < limit:
            handle.write(block)
            written += len(block)
    return written


def main() -> None:
    """Build the corpus, train on it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imdb", required=True, type=Path)
    parser.add_argument("--gigabytes", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="textlstm-stream-"))
    corpus = workdir / "corpus.jsonl"
    started = time.time()
    size = build_corpus(args.imdb, corpus, args.gigabytes)
    built = time.time() - started

    import textlstm
    from textlstm.config import load_config

    config = load_config(
        None,
        [
            "data.cache=false",
            "data.vocab_sample=20000",
            "data.val_fraction=0.0005",
            "data.holdout_by=key",
            "data.shuffle_buffer=10000",
            f"training.steps_per_epoch={args.steps}",
            "training.epochs=1",
        ],
    )
    started = time.time()
    result = textlstm.train(str(corpus), workdir / "run", config, verbose=0)
    trained = time.time() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "corpus_bytes": size,
                "corpus_gb": round(size / 1e9, 2),
                "build_seconds": round(built, 1),
                "train_seconds": round(trained, 1),
                "steps": args.steps,
                "train_examples_counted": result.train_examples,
                "val_examples": result.val_examples,
                "validation_accuracy": result.metrics.get("accuracy"),
                "peak_rss_gb": round(peak_kb / 1e6, 2),
                "peak_rss_limit_gb": 3.0,
            },
            indent=2,
        )
    )
    corpus.unlink()


if __name__ == "__main__":
    main()
