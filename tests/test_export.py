"""`export`: a string-in SavedModel that loads without textlstm and matches `predict`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import textlstm
from textlstm.errors import ModelDirError, OutputExistsError

TEXTS = ["great superb film", "awful boring waste", "", "zzz unknownword qqq", "the " * 500]

# Runs in a fresh interpreter that must never import textlstm: what TF Serving users do.
LOADER = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
sig = loaded.signatures["serving_default"]
spec = sig.structured_input_signature[1]["text"]
out = sig(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({
    "input_dtype": spec.dtype.name,
    "input_shape": spec.shape.as_list(),
    "outputs": sorted(sig.structured_outputs),
    "probabilities": out["probabilities"].numpy().tolist(),
    "probabilities_dtype": out["probabilities"].dtype.name,
    "label": [x.decode() for x in out["label"].numpy()],
    "score": out["score"].numpy().tolist(),
    "textlstm_imported": any(m.startswith("textlstm") for m in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return textlstm.export(trained_run.output_dir, tmp_path_factory.mktemp("exports") / "tiny")


def test_export_loads_without_textlstm_and_matches_predict(exported: Path, trained_run) -> None:
    assert exported.name == "1"
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(exported), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=exported.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["textlstm_imported"] is False
    assert served["input_dtype"] == "string" and served["input_shape"] == [None]
    assert served["outputs"] == ["label", "probabilities", "score"]
    assert served["probabilities_dtype"] == "float32"
    expected = textlstm.predict(trained_run.output_dir, TEXTS)
    for row, probs, label, score in zip(
        expected, served["probabilities"], served["label"], served["score"], strict=False
    ):
        assert list(row["probabilities"].values()) == pytest.approx(probs, abs=1e-5)
        assert row["label"] == label
        assert row["score"] == pytest.approx(score, abs=1e-5)


def test_export_predict_accepts_export_and_its_parent(exported: Path, trained_run) -> None:
    from_run = textlstm.predict(trained_run.output_dir, TEXTS[:2])
    for path in (exported, exported.parent):
        rows = textlstm.predict(path, TEXTS[:2])
        assert [r["label"] for r in rows] == [r["label"] for r in from_run]
        for a, b in zip(rows, from_run, strict=False):
            assert list(a["probabilities"].values()) == pytest.approx(list(b["probabilities"].values()), abs=1e-5)


def test_export_assets_and_next_version(exported: Path, trained_run) -> None:
    assets = exported / "assets"
    assert json.loads((assets / "labels.json").read_text()) == ["neg", "pos"]
    assert (assets / "vocab.txt").read_text() == (trained_run.output_dir / "vocab.txt").read_text()
    metadata = json.loads((assets / "metadata.json").read_text())
    assert metadata["labels"] == ["neg", "pos"] and "tensorflow" in metadata["versions"]
    second = textlstm.export(trained_run.output_dir, exported.parent)
    assert second.name == "2"
    with pytest.raises(OutputExistsError, match=r"export version .*1 already exists"):
        textlstm.export(trained_run.output_dir, exported.parent, version=1)
    assert sorted(p.name for p in exported.parent.iterdir()) == ["1", "2"]


def test_export_refuses_incomplete_model_dir(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(ModelDirError, match=r"missing model\.keras, vocab\.txt, labels\.json"):
        textlstm.export(tmp_path / "run", tmp_path / "exports")
    assert not (tmp_path / "exports").exists()


def test_export_keep_end_window_matches_predict(corpus_tar: Path, tiny_config, tmp_path: Path) -> None:
    import tensorflow as tf

    config = tiny_config.with_overrides(["vectorizer.keep=end", "vectorizer.max_length=8", "training.epochs=1"])
    run = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0).output_dir
    path = textlstm.export(run, tmp_path / "exports")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = serve(text=tf.constant(TEXTS))["probabilities"].numpy()
    for row, probs in zip(textlstm.predict(run, TEXTS), served):
        assert list(row["probabilities"].values()) == pytest.approx(probs.tolist(), abs=1e-5)
