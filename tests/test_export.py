"""`export`: a string-in SavedModel that loads without textlstm and matches `predict`."""

from __future__ import annotations

import errno
import json
import shutil
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
    assert served["outputs"] == ["label", "probabilities", "score", "top_k_labels", "top_k_scores"]
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


@pytest.mark.slow
def test_export_verify_top_k_and_curl_example(cli, trained_run, tmp_path: Path) -> None:
    from textlstm.cli import main

    args = ["export", str(trained_run.output_dir), "--export-dir", str(tmp_path / "exp"), "-q"]
    result = cli.invoke(main, [*args, "--name", "sentiment", "--verify", "--top-k", "1"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["export"] == str(tmp_path / "exp" / "1") and report["version"] == 1 and report["top_k"] == 1
    verify = report["verify"]
    assert verify["passed"] is True and verify["max_abs_diff"] <= 1e-5 and verify["texts"] >= 40
    assert verify["input"] == {"text": "DT_STRING [None]"}
    assert "http://localhost:8501/v1/models/sentiment:predict" in verify["curl"]
    assert json.loads(verify["curl"].split("-d '", 1)[1].rstrip("'")) == verify["request"]
    predictions = verify["expected_response"]["predictions"]
    texts = verify["request"]["instances"]
    assert len(predictions) == len(texts) == 2
    for prediction, row in zip(predictions, textlstm.predict(trained_run.output_dir, texts), strict=True):
        assert prediction["label"] == row["label"] and prediction["top_k_labels"] == [row["label"]]
        assert prediction["probabilities"] == pytest.approx(list(row["probabilities"].values()), abs=1e-5)
        assert prediction["top_k_scores"] == pytest.approx([row["score"]], abs=1e-5)

    result = cli.invoke(main, [*args, "--version", "auto"])
    assert result.exit_code == 0 and json.loads(result.stdout)["version"] == 2
    metadata = json.loads((tmp_path / "exp" / "2" / "assets" / "metadata.json").read_text())
    assert metadata["name"] == "exp" and metadata["top_k"] == 2 and metadata["version"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--top-k", "3"], "invalid --top-k; expected an integer from 1 to 2 (the number of labels); received 3"),
        (["--top-k", "0"], "invalid --top-k; expected an integer from 1 to 2 (the number of labels); received 0"),
        (
            ["--version", "latest"],
            "invalid --version; expected auto or an integer from 1 to 9223372036854775807; received 'latest'",
        ),
        (
            ["--version", "0"],
            "invalid --version; expected auto or an integer from 1 to 9223372036854775807; received '0'",
        ),
        (
            ["--version", "9223372036854775808"],
            "invalid --version; expected auto or an integer from 1 to 9223372036854775807; received '9223372036854775808'",
        ),
        (
            ["--version", "0" * 5000 + "9" * 5000],
            f"invalid --version; expected auto or an integer from 1 to 9223372036854775807; received '{'0' * 5000 + '9' * 5000}'",
        ),
        (
            ["--version", "\u00b2"],
            "invalid --version; expected auto or an integer from 1 to 9223372036854775807; received '\u00b2'",
        ),
        (
            ["--name", "a:b"],
            "invalid --name; expected a model name of letters, digits and . _ ~ - (it goes into URLs); received 'a:b'",
        ),
        (
            ["--name", "a b?c"],
            "invalid --name; expected a model name of letters, digits and . _ ~ - (it goes into URLs); received 'a b?c'",
        ),
    ],
)
def test_export_bad_options(cli, trained_run, tmp_path: Path, extra: list[str], message: str) -> None:
    from textlstm.cli import main

    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(tmp_path / "exp"), *extra])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())


def test_export_auto_after_the_largest_version_is_refused(cli, trained_run, tmp_path: Path) -> None:
    from textlstm.cli import main

    (tmp_path / "exp" / "9223372036854775807").mkdir(parents=True)
    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(tmp_path / "exp")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no next export version in {tmp_path / 'exp'}: its highest is 9223372036854775807, the largest TF "
        "Serving reads; expected --version N for a free N, or another --export-dir"
    ]
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["9223372036854775807"]
    # A folder beyond int64 is no version TF Serving reads: it does not block the next one.
    other = tmp_path / "exp2"
    (other / "99999999999999999999").mkdir(parents=True)
    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(other)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 1


@pytest.mark.slow
def test_export_interrupted_or_unverified_leaves_no_version(
    trained_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textlstm import saved_model, verification
    from textlstm.errors import ExportError

    def killed_midway(path: Path) -> None:
        assert (path / "saved_model.pb").is_file()  # written, but not yet moved into place
        raise KeyboardInterrupt  # what SIGINT does; SIGKILL leaves only a hidden .N.tmp-* folder

    export_dir = tmp_path / "exp"
    monkeypatch.setattr(saved_model, "_check_signature", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        textlstm.export(trained_run.output_dir, export_dir)
    assert not export_dir.exists()  # the export made the folder, and removed it again
    monkeypatch.undo()

    monkeypatch.setattr(verification, "TOLERANCE", -1.0)  # any difference, even 0, now fails
    export_dir.mkdir()  # the user's own folder stays
    with pytest.raises(ExportError, match=r"verification: the SavedModel differs from the model by 0\.00e\+00"):
        textlstm.export(trained_run.output_dir, export_dir, verify=True)
    assert list(export_dir.iterdir()) == []
    assert textlstm.export(trained_run.output_dir, export_dir).name == "1"


def test_export_to_a_full_disk_is_one_line_and_leaves_nothing(
    cli, trained_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras
    import tensorflow as tf

    from textlstm.cli import main

    def full(self, path: str, **kwargs) -> None:
        # What TensorFlow's SaveV2 raised on a full tmpfs: the errno is only in the text.
        raise tf.errors.ResourceExhaustedError(None, None, f"{path}/variables/variables_temp; No space left on device")

    # keras.export.ExportArchive() makes an instance of its backend's subclass.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", full)
    export_dir = tmp_path / "new" / "exp"
    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(export_dir)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: cannot write {export_dir / '1'}: No space left on device; expected a writable location with free space"
    )
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()

    def failed_copy(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")  # a write() names no file

    monkeypatch.setattr(shutil, "copyfile", failed_copy)
    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(export_dir)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().startswith(f"error: cannot write {export_dir / '1'}: No space left on device;")


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["none", "naive_bayes"])
def test_export_of_a_bag_of_ngrams_model_verifies_in_a_relative_folder(
    cli, corpus_tar: Path, tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weighting: str
) -> None:
    from textlstm.cli import main

    config = tiny_config.with_overrides(
        [
            "model.ngram_order=2",
            "model.ngram_buckets=512",
            "model.ngram_join=average",
            f"model.ngram_weighting={weighting}",
            "training.epochs=1",
        ]
    )
    textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    monkeypatch.chdir(tmp_path)
    # --verify compares the reloaded export with the in-memory model in a TensorFlow-only
    # process (SavedModel) or the TFLite interpreter, on empty, long and unknown texts.
    for fmt in ("savedmodel", "tflite"):
        result = cli.invoke(main, ["export", "run", "--export-dir", f"exp-{fmt}", "--format", fmt, "--verify", "-q"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["verify"]["passed"] is True


def test_export_under_a_file_is_one_line_error(cli, trained_run, tmp_path: Path) -> None:
    from textlstm.cli import main

    (tmp_path / "afile").write_text("keep me")
    result = cli.invoke(main, ["export", str(trained_run.output_dir), "--export-dir", str(tmp_path / "afile" / "sub")])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tmp_path / 'afile'} is a file; expected a directory" in lines[0], result.stderr
    assert (tmp_path / "afile").read_text() == "keep me"


def test_export_with_edited_labels_names_the_file(cli, exported: Path, tmp_path: Path) -> None:
    from textlstm.cli import main

    broken = tmp_path / "broken" / "1"
    shutil.copytree(exported, broken)
    labels = broken / "assets" / "labels.json"
    for content, message in (
        ('["neg", "pos", "extra"]', "names 3 labels but the model outputs 2 probabilities"),
        ('{"x": 1}', "is invalid; expected a JSON list of at least 2 label names"),
    ):
        labels.write_text(content)
        result = cli.invoke(main, ["predict", str(broken.parent), "great film"])
        assert result.exit_code == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {labels} {message}"), result.stderr
