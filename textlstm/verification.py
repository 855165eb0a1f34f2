"""`export --verify`: reload a new SavedModel the way TensorFlow Serving users do, in a
process that imports only TensorFlow, and prove it answers like the model it came from."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from textlstm.errors import ExportError

# Outputs equal to the in-memory model within this (absolute, on probabilities).
TOLERANCE = 1e-5
_TIMEOUT_SECONDS = 600
# Two neutral sentences for the sample TensorFlow Serving request.
SAMPLE_TEXTS = ["an absolute masterpiece, I loved every minute of it", "a dull, lifeless waste of two hours"]

# Runs in a fresh interpreter: only the standard library and TensorFlow, as a serving
# host would have. Texts arrive on stdin (a very long text would not fit in argv).
_LOADER = """
import json, sys
import tensorflow as tf
texts = json.load(sys.stdin)
loaded = tf.saved_model.load(sys.argv[1])
if sys.argv[2] not in loaded.signatures:
    print(json.dumps({"error": "no signature " + sys.argv[2], "signatures": sorted(loaded.signatures)}))
    sys.exit(0)
signature = loaded.signatures[sys.argv[2]]
inputs = signature.structured_input_signature[1]
out = signature(**{sys.argv[3]: tf.constant(texts, dtype=tf.string)})
def plain(value):
    value = value.numpy()
    if value.dtype == object:
        return [[x.decode("utf-8") for x in row] if value.ndim == 2 else row.decode("utf-8") for row in value]
    return value.tolist()
print(json.dumps({
    "inputs": {k: [v.dtype.as_datatype_enum, v.shape.as_list()] for k, v in inputs.items()},
    "outputs": {k: plain(v) for k, v in out.items()},
    "foreign_modules": sorted(m for m in sys.modules if m.split(".")[0] == "textlstm"),
}))
"""


def probe_texts(vocabulary: list[str], count: int = 48, seed: int = 0) -> list[str]:
    """Texts that exercise the vectorizer's edges: empty and blank strings, a text far
    longer than max_length, out-of-vocabulary words, punctuation, HTML and non-ASCII
    characters, and random sentences of vocabulary words of every length."""
    rnd = random.Random(seed)
    words = [w for w in vocabulary if w and w != "[UNK]"] or ["word"]
    texts = [
        "",
        "   ",
        " ".join(rnd.choice(words) for _ in range(5000)),
        "qzxwv brrrmph xylophonically zzzyzx",
        "WOW!!! Best. Film. Ever?! <br /><br />10/10 :-)",
        "café naïve Ünïcödé 日本語 😀",
        "\t tabs\nand\r\nnewlines\u00a0nbsp ",
    ]
    while len(texts) < count:
        texts.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 60))))
    return texts


def verify_saved_model(
    path: Path,
    texts: list[str],
    expected: Callable[[list[str]], np.ndarray],
    signature: str,
    input_name: str,
    thresholds: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Load ``path`` in a TensorFlow-only subprocess, check that its input is DT_STRING
    [None], run ``texts`` through it and compare with ``expected(texts)`` (probabilities of
    the in-memory model); with a multi-label model's ``thresholds``, its labels_multi_hot
    must be its own probabilities at those thresholds. Return a report; raise ExportError
    on any mismatch."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        done = subprocess.run(
            # Absolute: the child runs in path.parent, where a relative path means nothing.
            [sys.executable, "-c", _LOADER, str(path.resolve()), signature, input_name],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            env=env,
            cwd=path.parent,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"verification timed out after {_TIMEOUT_SECONDS} s loading {path}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"verification could not load the SavedModel in a TensorFlow-only process: {tail[:300]}")
    served = json.loads(lines[-1])
    if "error" in served:
        raise ExportError(f"verification: {served['error']}; expected {signature!r} among {served['signatures']}")
    dtype, shape = served["inputs"].get(input_name, [None, None])
    string_enum = 7  # tf.string.as_datatype_enum: DT_STRING
    if dtype != string_enum or shape != [None] or len(served["inputs"]) != 1:
        raise ExportError(
            f"verification: the signature input is {served['inputs']}; expected only {input_name!r}: DT_STRING [None]"
        )
    if served["foreign_modules"]:
        raise ExportError(f"verification: the loader imported {served['foreign_modules']}; expected TensorFlow only")
    outputs = served["outputs"]
    want = np.asarray(expected(texts), dtype=np.float64)
    got = np.asarray(outputs["probabilities"], dtype=np.float64)
    if got.shape != want.shape:
        raise ExportError(f"verification: probabilities have shape {got.shape}; expected {want.shape}")
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if diff > TOLERANCE:
        worst = int(np.argmax(np.abs(got - want).max(axis=1)))
        raise ExportError(
            f"verification: the SavedModel differs from the model by {diff:.2e} on text {worst} "
            f"({texts[worst][:40]!r}); expected at most {TOLERANCE:.0e}"
        )
    scores = np.asarray(outputs["score"], dtype=np.float64)
    if scores.size and float(np.max(np.abs(scores - got.max(axis=1)))) > TOLERANCE:
        raise ExportError("verification: score is not the highest probability; expected them equal")
    if thresholds is not None:
        # The served probabilities arrive as exact float32 values; compare as the export does.
        want_hot = (got >= np.asarray(thresholds, dtype=np.float64)).astype(int).tolist()
        if outputs.get("labels_multi_hot") != want_hot:
            raise ExportError(
                "verification: labels_multi_hot is not the probabilities at the per-label thresholds "
                f"{list(thresholds)}; expected them to agree on every text"
            )
    return {
        "passed": True,
        "texts": len(texts),
        "max_abs_diff": diff,
        "tolerance": TOLERANCE,
        "input": {input_name: "DT_STRING [None]"},
        "outputs": sorted(outputs),
        "sample_outputs": {k: v[-len(SAMPLE_TEXTS) :] for k, v in outputs.items()},
    }


def curl_example(name: str, outputs: dict[str, list[Any]], host: str = "localhost", port: int = 8501) -> dict[str, Any]:
    """The TensorFlow Serving REST request for `SAMPLE_TEXTS` as a ``curl`` command, with
    the response the exported model gives (row format: one prediction object per text)."""
    request = {"instances": SAMPLE_TEXTS}
    predictions = [{key: values[i] for key, values in sorted(outputs.items())} for i in range(len(SAMPLE_TEXTS))]
    body = json.dumps(request, ensure_ascii=False)
    return {
        "curl": f"curl -s -X POST http://{host}:{port}/v1/models/{name}:predict -H 'Content-Type: application/json' "
        f"-d '{body}'",
        "request": request,
        "expected_response": {"predictions": predictions},
    }
