"""`export`: write a TensorFlow-Serving-ready SavedModel that takes raw text."""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from textlstm import artifacts
from textlstm.errors import ExportError, describe
from textlstm.fast_inference import signature_outputs
from textlstm.runtime import library_versions, tensorflow
from textlstm.vectorizer import read_vocabulary
from textlstm.verification import SAMPLE_TEXTS, curl_example, probe_texts, verify_saved_model

tf = tensorflow()
log = logging.getLogger(__name__)
SIGNATURE = "serving_default"
INPUT_NAME = "text"
# Labels ranked in the top_k outputs unless --top-k says otherwise (fewer if the model has fewer).
DEFAULT_TOP_K = 5


def parse_version(value: str) -> int | None:
    """``--version``: "auto" (None, the next free integer) or an integer >= 1."""
    if value == "auto":
        return None
    # Leading zeros dropped and the length checked before int(), which refuses strings of more
    # than 4,300 digits with a ValueError.
    digits = value.lstrip("0")
    if not artifacts.is_version_name(value) or len(digits) > 19 or not 1 <= int(digits or "0") <= artifacts.MAX_VERSION:
        raise ExportError(
            f"invalid --version; {describe(f'auto or an integer from 1 to {artifacts.MAX_VERSION}', value)}"
        )
    return int(digits)


@dataclass
class ExportResult:
    """What `export_model` wrote."""

    path: Path
    name: str
    version: int
    # Labels in the top_k outputs; None for TFLite, whose only output is probabilities.
    top_k: int | None
    # The `export --verify` report (for a SavedModel with the TensorFlow Serving curl
    # example); None unverified.
    verification: dict[str, Any] | None = None
    # "savedmodel" or "tflite".
    format: str = "savedmodel"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for the CLI."""
        result: dict[str, Any] = {"export": str(self.path), "format": self.format}
        result.update(name=self.name, version=self.version)
        if self.top_k is not None:
            result["top_k"] = self.top_k
        if self.verification is not None:
            result["verify"] = self.verification
        return result


def export_model(
    model_dir: str | Path,
    export_dir: str | Path,
    version: int | None = None,
    *,
    top_k: int | None = None,
    name: str | None = None,
    verify: bool = False,
) -> ExportResult:
    """Export a run directory to ``export_dir/<version>/``.

    ``serving_default`` takes ``text`` (tf.string, shape [None]) and returns
    ``probabilities`` (float32 [None, num_labels]), ``label`` (string [None], the label
    with the highest probability), ``score`` (float32 [None], that probability),
    ``top_k_labels`` (string [None, K]) and ``top_k_scores`` (float32 [None, K]), the K
    most probable labels in order (K = ``top_k``, default min(5, num_labels)); a
    multi-label model also returns ``labels_multi_hot`` (int32 [None, num_labels], 1 where
    the probability reaches that label's threshold from the run's thresholds.json, which
    the metadata records under ``signature.thresholds``). ``name`` is the model name
    recorded in the metadata (TensorFlow Serving's ``--model_name``; default: the export
    folder's name).
    ``version`` defaults to the next free integer. The folder is written under a
    temporary name and renamed into place, so TensorFlow Serving never sees a partial one.

    With ``verify`` the SavedModel is loaded, before it is renamed into place, in a
    subprocess that imports only TensorFlow; probe texts (empty, very long, out of
    vocabulary ...) must give the in-memory model's probabilities within 1e-5, else
    ExportError and no version folder. The report includes a TensorFlow Serving ``curl``
    example with the response this model gives.
    """
    info = artifacts.read_run_info(model_dir)
    export_dir = Path(export_dir)
    num_labels = len(info.labels)
    k = min(DEFAULT_TOP_K, num_labels) if top_k is None else top_k
    if not 1 <= k <= num_labels:
        raise ExportError(
            f"invalid --top-k; {describe(f'an integer from 1 to {num_labels} (the number of labels)', k)}"
        )
    name = artifacts.export_name(export_dir, name)
    target, version = artifacts.export_target(export_dir, version)
    model = artifacts.load_text_model(info.path)
    labels = tf.constant(info.labels)
    multi_label = bool(info.config.data.multi_label)
    # Compared in float64, as predict and the metrics do: a float32 threshold such as 0.3
    # is not 0.3, and a probability between the two would be labelled differently.
    thresholds = tf.constant(info.thresholds or [], tf.float64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(text: Any) -> dict[str, Any]:
        # The same outputs-from-probabilities code as `textlstm serve`'s fast path.
        return signature_outputs(model(text, training=False), labels, k, thresholds if multi_label else None)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve)
    with artifacts.atomic_directory(target) as tmp:
        archive.write_out(str(tmp), verbose=False)
        assets = tmp / artifacts.EXPORT_ASSETS_DIR
        assets.mkdir(exist_ok=True)
        for asset in (artifacts.LABELS_FILE, artifacts.VOCAB_FILE):
            shutil.copyfile(info.path / asset, assets / asset)
        artifacts.write_json(
            assets / artifacts.EXPORT_METADATA_FILE,
            {
                "config": info.config.to_dict(),
                "labels": info.labels,
                "metrics": info.metrics,
                "training": info.manifest,
                "versions": library_versions(),
                "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "name": name,
                "version": version,
                "top_k": k,
                "signature": {
                    "name": SIGNATURE,
                    "inputs": {INPUT_NAME: "string [None]"},
                    "outputs": {
                        "probabilities": "float32 [None, num_labels]",
                        "label": "string [None]",
                        "score": "float32 [None]",
                        "top_k_labels": f"string [None, {k}]",
                        "top_k_scores": f"float32 [None, {k}]",
                        **({"labels_multi_hot": "int32 [None, num_labels]"} if multi_label else {}),
                    },
                    **({"thresholds": dict(zip(info.labels, info.thresholds or []))} if multi_label else {}),
                },
            },
        )
        _check_signature(tmp)
        report = None
        if verify:
            texts = probe_texts(read_vocabulary(info.path / artifacts.VOCAB_FILE)) + SAMPLE_TEXTS
            report = verify_saved_model(
                tmp,
                texts,
                lambda t: model(tf.constant(t), training=False).numpy(),
                SIGNATURE,
                INPUT_NAME,
                thresholds=info.thresholds,
            )
            report.update(curl_example(name, report.pop("sample_outputs")))
            log.info("verified: %d texts, max difference %.1e", report["texts"], report["max_abs_diff"])
    log.info("exported %s to %s", info.path, target)
    return ExportResult(path=target, name=name, version=version, top_k=k, verification=report)


def _check_signature(path: Path) -> None:
    """Reload the SavedModel and make sure its input is still a string tensor."""
    loaded = tf.saved_model.load(str(path))
    spec = loaded.signatures[SIGNATURE].structured_input_signature[1]
    got = spec.get(INPUT_NAME)
    if got is None or got.dtype != tf.string or got.shape.as_list() != [None]:
        raise ExportError(f"exported signature input is wrong; {describe('text: tf.string [None]', str(got))}")
