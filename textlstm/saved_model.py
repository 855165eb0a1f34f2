"""`export`: write a TensorFlow-Serving-ready SavedModel that takes raw text."""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
from pathlib import Path
from typing import Any

import keras

from textlstm import artifacts
from textlstm.errors import ExportError, OutputExistsError, describe
from textlstm.metrics import DEFAULT_THRESHOLD
from textlstm.runtime import library_versions, tensorflow

tf = tensorflow()
log = logging.getLogger(__name__)
SIGNATURE = "serving_default"
INPUT_NAME = "text"


def export(model_dir: str | Path, export_dir: str | Path, version: int | None = None) -> Path:
    """Export a run directory to ``export_dir/<version>/`` and return that folder.

    ``serving_default`` takes ``text`` (tf.string, shape [None]) and returns
    ``probabilities`` (float32 [None, num_labels]), ``label`` (string [None], the label
    with the highest probability) and ``score`` (float32 [None], that probability); a
    multi-label model also returns ``labels_multi_hot`` (int32 [None, num_labels], 1 where
    the probability reaches the threshold).
    ``version`` defaults to the next free integer. The folder is written under a
    temporary name and renamed into place, so TensorFlow Serving never sees a partial one.
    """
    info = artifacts.read_run_info(model_dir)
    export_dir = Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise OutputExistsError(f"export path {export_dir} is a file; expected a directory")
    if version is None:
        version = artifacts.next_version(export_dir)
    if version < 1:
        raise ExportError(f"invalid export version; {describe('an integer >= 1', version)}")
    target = export_dir / str(version)
    if target.exists():
        raise OutputExistsError(f"export version {target} already exists; choose another --version or leave it out")
    model = artifacts.load_text_model(info.path)
    labels = tf.constant(info.labels)
    multi_label = bool(info.config.data.multi_label)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)])
    def serve(text: Any) -> dict[str, Any]:
        probabilities = model(text, training=False)
        best = tf.argmax(probabilities, axis=-1)
        outputs = {
            "probabilities": probabilities,
            "label": tf.gather(labels, best),
            "score": tf.reduce_max(probabilities, axis=-1),
        }
        if multi_label:
            outputs["labels_multi_hot"] = tf.cast(probabilities >= DEFAULT_THRESHOLD, tf.int32)
        return outputs

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve)
    with artifacts.atomic_directory(target) as tmp:
        archive.write_out(str(tmp), verbose=False)
        assets = tmp / artifacts.EXPORT_ASSETS_DIR
        assets.mkdir(exist_ok=True)
        for name in (artifacts.LABELS_FILE, artifacts.VOCAB_FILE):
            shutil.copyfile(info.path / name, assets / name)
        artifacts.write_json(
            assets / artifacts.EXPORT_METADATA_FILE,
            {
                "config": info.config.to_dict(),
                "labels": info.labels,
                "metrics": info.metrics,
                "training": info.manifest,
                "versions": library_versions(),
                "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "signature": {
                    "name": SIGNATURE,
                    "inputs": {INPUT_NAME: "string [None]"},
                    "outputs": {
                        "probabilities": "float32 [None, num_labels]",
                        "label": "string [None]",
                        "score": "float32 [None]",
                        **({"labels_multi_hot": "int32 [None, num_labels]"} if multi_label else {}),
                    },
                    **({"threshold": DEFAULT_THRESHOLD} if multi_label else {}),
                },
            },
        )
        _check_signature(tmp)
    log.info("exported %s to %s", info.path, target)
    return target


def _check_signature(path: Path) -> None:
    """Reload the SavedModel and make sure its input is still a string tensor."""
    loaded = tf.saved_model.load(str(path))
    spec = loaded.signatures[SIGNATURE].structured_input_signature[1]
    got = spec.get(INPUT_NAME)
    if got is None or got.dtype != tf.string or got.shape.as_list() != [None]:
        raise ExportError(f"exported signature input is wrong; {describe('text: tf.string [None]', str(got))}")
