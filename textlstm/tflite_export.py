"""`export --format tflite`: the classifier as a TFLite model over token ids, with the
vocabulary and a plain-Python tokenizer that turns text into those ids.

TextVectorization's string ops have no TFLite kernels, so the string-in part stays out of
the .tflite file: `textlstm.tokenizer` reproduces it exactly and travels beside the model.
The LSTM's loop converts to TFLite built-in ops only when its per-step shapes are static,
so the model takes one text at a time: ``token_ids`` int32 [1, length], any length.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from textlstm import artifacts, tokenizer
from textlstm.errors import ExportError
from textlstm.model import split_text_model
from textlstm.runtime import library_versions, tensorflow
from textlstm.saved_model import ExportResult
from textlstm.tflite_runtime import INPUT_NAME, OUTPUT_NAME, TFLiteModel
from textlstm.vectorizer import read_vocabulary
from textlstm.verification import SAMPLE_TEXTS, probe_texts

tf = tensorflow()
log = logging.getLogger(__name__)
# TFLite's float kernels (XNNPACK) sum in a different order than TensorFlow's.
TOLERANCE = 1e-4


def export_tflite(
    model_dir: str | Path,
    export_dir: str | Path,
    version: int | None = None,
    *,
    name: str | None = None,
    verify: bool = False,
) -> ExportResult:
    """Export a run directory as a TFLite model to ``export_dir/<version>/``.

    The folder (written under a temporary name and renamed into place when complete)
    holds ``model.tflite`` (input ``token_ids`` int32 [1, length], output
    ``probabilities`` float32 [1, num_labels]; TFLite built-in ops only), ``vocab.txt``,
    ``labels.json``, ``tokenizer.json`` (standardize, max_length, keep), ``tokenizer.py``
    (stdlib-only tokenizer) and ``metadata.json``. With ``verify``, probe texts (empty,
    very long, out of vocabulary, punctuation, non-ASCII ...) must give the same token ids
    from the plain-Python tokenizer as from the model's TextVectorization, and TFLite
    probabilities within 1e-4 of the Keras model, else ExportError and no version folder.
    """
    info = artifacts.read_run_info(model_dir)
    name = artifacts.export_name(export_dir, name)
    target, version = artifacts.export_target(export_dir, version)
    model = artifacts.load_text_model(info.path)
    vectorizer, classifier = split_text_model(model)
    window = model.get_layer("window")
    content = _convert(classifier)
    vectorizer_config = info.config.vectorizer
    multi_label = bool(info.config.data.multi_label)
    with artifacts.atomic_directory(target) as tmp:
        (tmp / artifacts.TFLITE_MODEL_FILE).write_bytes(content)
        for asset in (artifacts.LABELS_FILE, artifacts.VOCAB_FILE):
            shutil.copyfile(info.path / asset, tmp / asset)
        shutil.copyfile(tokenizer.__file__, tmp / artifacts.TOKENIZER_MODULE_FILE)
        artifacts.write_json(
            tmp / artifacts.TOKENIZER_CONFIG_FILE,
            {
                "standardize": vectorizer_config.standardize,
                "max_length": vectorizer_config.max_length,
                "keep": vectorizer_config.keep,
                "split": "whitespace",
                "vocabulary": artifacts.VOCAB_FILE,
                "pad_id": tokenizer.PAD_ID,
                "oov_id": tokenizer.OOV_ID,
            },
        )
        artifacts.write_json(
            tmp / artifacts.EXPORT_METADATA_FILE,
            {
                "format": "tflite",
                "config": info.config.to_dict(),
                "labels": info.labels,
                "metrics": info.metrics,
                "training": info.manifest,
                "versions": library_versions(),
                "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "name": name,
                "version": version,
                "signature": {
                    "inputs": {INPUT_NAME: "int32 [1, length]"},
                    "outputs": {OUTPUT_NAME: "float32 [1, num_labels]"},
                    # Multi-label: label i is predicted when probabilities[i] >= its threshold.
                    **({"thresholds": dict(zip(info.labels, info.thresholds or []))} if multi_label else {}),
                },
            },
        )
        report = None
        if verify:
            texts = probe_texts(read_vocabulary(info.path / artifacts.VOCAB_FILE)) + SAMPLE_TEXTS
            report = verify_tflite(tmp, texts, vectorizer, window, model)
            log.info("verified: %d texts, max difference %.1e", report["texts"], report["max_abs_diff"])
    log.info("exported %s to %s (%.1f MB)", info.path, target, len(content) / 1e6)
    return ExportResult(path=target, name=name, version=version, top_k=None, verification=report, format="tflite")


def _convert(classifier: keras.Model) -> bytes:
    """Convert the id-in classifier, through a SavedModel with a [1, None] signature (the
    converter leaves variables unfrozen inside the LSTM loop when given a function)."""

    def probabilities(token_ids: Any) -> dict[str, Any]:
        return {OUTPUT_NAME: classifier(tf.cast(token_ids, "int64"), training=False)}

    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.add_endpoint(
        "serving_default", probabilities, input_signature=[tf.TensorSpec([1, None], tf.int32, name=INPUT_NAME)]
    )
    with tempfile.TemporaryDirectory(prefix=".textlstm-tflite-") as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as exc:  # the converter raises ConverterError and others
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"TFLite conversion failed: {first[:300]}") from exc


def verify_tflite(path: Path, texts: list[str], vectorizer: Any, window: Any, model: keras.Model) -> dict[str, Any]:
    """Check a TFLite export against the Keras model it came from (see `export_tflite`)."""
    runner = TFLiteModel(path)
    for i, text in enumerate(texts):
        want = window(vectorizer(tf.constant([text]))).numpy()[0]
        want = [int(x) for x in want if x != tokenizer.PAD_ID]
        got = runner.tokenizer.ids(text)
        if got != want:
            at = next((j for j, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
            raise ExportError(
                f"verification: the Python tokenizer gives different ids for text {i} ({text[:40]!r}) "
                f"from position {at}; expected the TextVectorization ids"
            )
    want = model(tf.constant(texts), training=False).numpy()
    got = runner.probabilities(texts)
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if len(texts) else 0.0
    if diff > TOLERANCE:
        worst = int(np.argmax(np.abs(got - want).max(axis=1)))
        raise ExportError(
            f"verification: the TFLite model differs from the model by {diff:.2e} on text {worst} "
            f"({texts[worst][:40]!r}); expected at most {TOLERANCE:.0e}"
        )
    return {"passed": True, "texts": len(texts), "token_ids": "identical", "max_abs_diff": diff, "tolerance": TOLERANCE}
