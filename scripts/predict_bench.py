"""Benchmark of `predict`'s inference levers, baseline and new side by side in one process.

Prints JSON figures:

* ``machine``: the fp32 matmul rate of a large tf.matmul and the LSTM FLOPs per review at
  the data's average (capped) length, hence the throughput bound the matmuls alone allow;
* ``levers``: ids -> probabilities on the same sorted batches, rounds interleaved so that
  other load on the machine hits each variant alike: the Keras model padded to
  max_length, the Keras model trimmed to the batch's longest text (what the model does),
  and the XLA fast path with several chunk sizes, batch sizes and 1 or 2 threads, with
  the first layer's input projection folded into the embedding (the default) and not
  (``unfolded``: the per-step projection it replaced);
* ``end_to_end``: `predict_command` on the JSONL file (reading, vectorizing, predicting,
  writing) with the fast path off (the old code path) and on.

Usage:
  python scripts/predict_bench.py --model textlstm/pretrained/imdb --input imdb_test.jsonl
  python scripts/predict_bench.py --model exports/imdb --input imdb_test.jsonl --limit 5000
  python scripts/predict_bench.py ... --intra-op 1     # TensorFlow intra-op threads
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="textlstm/pretrained/imdb", help="run directory (levers) or export")
    parser.add_argument("--input", required=True, help="JSONL file with a 'text' field per line")
    parser.add_argument("--limit", type=int, default=5000, help="texts for the lever comparison (every n-th)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per lever")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--intra-op", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    return parser.parse_args()


def matmul_rate(tf: Any, n: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n fp32 tf.matmul."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads) of ``fn()``."""
    cpu = os.times()
    started = time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.user - cpu.user) + (after.system - cpu.system)


def main() -> None:
    """Run the benchmark and print the figures as JSON."""
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from textlstm.runtime import tensorflow

    tf = tensorflow()
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    from textlstm import artifacts, prediction
    from textlstm.fast_inference import FastClassifier
    from textlstm.model import split_text_model

    with open(args.input, encoding="utf-8") as handle:
        all_texts = [json.loads(line)["text"] for line in handle if line.strip()]
    step = max(1, len(all_texts) // args.limit)
    texts = all_texts[::step][: args.limit]
    report: dict[str, Any] = {"texts_total": len(all_texts), "lever_texts": len(texts), "cpus": os.cpu_count()}

    # What the matmuls allow: FLOPs per review of the input projection and the recurrent
    # matmul, both directions, at the average number of steps actually run.
    peak = matmul_rate(tf)
    run_dir = Path(args.model)
    found = artifacts.find_export(run_dir) if not artifacts.is_run_dir(run_dir) else None
    if found is None:
        text_model = artifacts.load_text_model(run_dir)
    else:
        text_model = artifacts.load_text_model(artifacts.BUNDLED_MODEL_DIR)
        report["levers_model"] = str(artifacts.BUNDLED_MODEL_DIR)
    vectorizer, classifier = split_text_model(text_model)
    window = text_model.get_layer("window")
    to_ids = tf.function(lambda t: window(vectorizer(t)), input_signature=[tf.TensorSpec([None], tf.string)])
    ids_all = np.concatenate(
        [
            np.pad(x, [[0, 0], [0, window.max_length - x.shape[1]]])
            for x in (to_ids(tf.constant(texts[i : i + 1000])).numpy() for i in range(0, len(texts), 1000))
        ]
    )
    lengths = (ids_all != 0).sum(axis=1)
    lstm = classifier.get_layer("bilstm_1").forward_layer.cell
    inputs, units = lstm.kernel.shape[0], lstm.units
    flops = 2 * 2 * 4 * units * (inputs + units) * float(lengths.mean())
    # The fast path folds the input projection into the embedding: only the recurrent
    # matmul is left per step, so its bound is the one that path can approach.
    recurrent = 2 * 2 * 4 * units * units * float(lengths.mean())
    report["machine"] = {
        "matmul_gflops_4096": round(peak, 1),
        "mean_steps": round(float(lengths.mean()), 1),
        "lstm_mflop_per_review": round(flops / 1e6, 2),
        "matmul_bound_reviews_per_second": round(peak * 1e9 / flops),
        "recurrent_mflop_per_review": round(recurrent / 1e6, 2),
        "recurrent_matmul_bound_reviews_per_second": round(peak * 1e9 / recurrent),
    }

    # Batches sorted by length, as predict's sorting window makes them.
    order = np.argsort(-lengths, kind="stable")
    ids_sorted = ids_all[order]
    keras_fn = tf.function(
        lambda ids: classifier(ids, training=False), input_signature=[tf.TensorSpec([None, None], tf.int32)]
    )

    def batches(size: int, trim: bool) -> list[np.ndarray]:
        out = []
        for start in range(0, len(ids_sorted), size):
            b = ids_sorted[start : start + size]
            out.append(b[:, : max(1, int((b != 0).sum(axis=1).max()))] if trim else b)
        return out

    variants: dict[str, Callable[[], Any]] = {}
    size = args.batch_size
    padded, trimmed = batches(size, False), batches(size, True)
    variants[f"keras_padded_to_{window.max_length}_b{size}"] = lambda: [keras_fn(b).numpy() for b in padded]
    variants[f"keras_trimmed_b{size}"] = lambda: [keras_fn(b).numpy() for b in trimmed]
    pool = ThreadPoolExecutor(2)
    variants[f"keras_trimmed_b{size}_2threads"] = lambda: list(pool.map(lambda b: keras_fn(b).numpy(), trimmed))
    reference = np.concatenate([keras_fn(b).numpy() for b in trimmed])
    for chunk in (1, 4, 8, 16):
        fast = FastClassifier.from_keras(classifier, window.max_length, chunk)
        got = np.concatenate([fast(b) for b in trimmed])
        report.setdefault("max_abs_diff_vs_keras", {})[f"chunk{chunk}"] = float(np.abs(got - reference).max())
        variants[f"xla_chunk{chunk}_b{size}_1thread"] = lambda f=fast: [f(b) for b in trimmed]
    unfolded = FastClassifier(fast.weights, window.max_length, 1, fold=False)
    got = np.concatenate([unfolded(b) for b in trimmed])
    report["max_abs_diff_vs_keras"]["unfolded_chunk1"] = float(np.abs(got - reference).max())
    variants[f"xla_unfolded_chunk1_b{size}_1thread"] = lambda: [unfolded(b) for b in trimmed]
    variants[f"xla_unfolded_chunk1_b{size}_2threads"] = lambda: list(pool.map(unfolded, trimmed))
    for chunk in (1, 8):
        fast = FastClassifier.from_keras(classifier, window.max_length, chunk)
        for b_size in sorted({64, size, 256}):
            sized = batches(b_size, True)
            fast(sized[0])
            variants[f"xla_chunk{chunk}_b{b_size}_2threads"] = lambda s=sized, f=fast: list(pool.map(f, s))
    for fn in variants.values():  # warm up: traces and compilations out of the timings
        fn()
    results: dict[str, list[float]] = {name: [] for name in variants}
    cpu_share: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            wall, cpu = timed(fn)
            results[name].append(len(texts) / wall)
            cpu_share[name].append(cpu / wall)
    base = max(results[f"keras_trimmed_b{size}"])
    report["levers_ids_to_probabilities"] = {
        name: {
            "reviews_per_second": round(max(values)),
            "vs_keras_trimmed": round(max(values) / base, 2),
            "cpu_per_wall": round(float(np.mean(cpu_share[name])), 2),
        }
        for name, values in results.items()
    }

    if not args.skip_end_to_end:
        end: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for label, minimum in (("old_path", 10**12), ("fast_path", prediction.FAST_MIN_TEXTS)):
                prediction.FAST_MIN_TEXTS = minimum
                out = Path(tmp) / f"{label}.jsonl"
                summary = prediction.predict_command(
                    args.model, input_path=args.input, id_key=None, batch_size=size, output=out
                )
                end[label] = {k: summary[k] for k in ("texts", "seconds", "texts_per_second")}
                end[label]["probabilities"] = [
                    list(json.loads(line)["probabilities"].values()) for line in out.open(encoding="utf-8")
                ]
        old = np.asarray(end["old_path"].pop("probabilities"))
        new = np.asarray(end["fast_path"].pop("probabilities"))
        end["max_abs_diff"] = float(np.abs(old - new).max())
        end["speedup"] = round(end["fast_path"]["texts_per_second"] / end["old_path"]["texts_per_second"], 2)
        report["end_to_end"] = end
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
