"""Real-data accuracy runs on ../shared/data (opt-in: ``python -m pytest -m realdata``).

Floors sit a little under measured values so that regressions are caught without flaking.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMDB_ARCHIVE, REALDATA_MARKS

pytestmark = REALDATA_MARKS


@pytest.fixture(scope="module")
def imdb_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not IMDB_ARCHIVE.is_file():
        pytest.skip(f"IMDB archive not found at {IMDB_ARCHIVE}")
    import textlstm

    out = tmp_path_factory.mktemp("imdb") / "run"
    # As scripts/accuracy.py trains IMDB: the defaults with the preset for long documents
    # (the plain defaults' one-epoch run is .ci/run's smoke).
    textlstm.train(str(IMDB_ARCHIVE), out, textlstm.load_config(None, preset="long-documents"), verbose=0)
    return out


def test_realdata_imdb_defaults_reach_the_floor(imdb_run: Path) -> None:
    import textlstm

    report = textlstm.evaluate(imdb_run, str(IMDB_ARCHIVE), split="test")
    assert report["examples"] == 25000
    # 2.7 points under the 0.9170 of `python scripts/accuracy.py --only imdb` (2026-12-05,
    # eight epochs, the long-documents preset; 0.9128 on the plain defaults).
    assert report["accuracy"] >= 0.89, report["accuracy"]


def test_realdata_imdb_predicts_obvious_reviews(imdb_run: Path) -> None:
    import textlstm

    rows = textlstm.predict(
        imdb_run, ["an absolute masterpiece, I loved every minute of it", "a dull, lifeless waste of two hours"]
    )
    assert [row["label"] for row in rows] == ["pos", "neg"]


def test_realdata_imdb_export_matches_predict(imdb_run: Path, tmp_path: Path) -> None:
    import textlstm

    texts = ["an absolute masterpiece", "a dull, lifeless waste of two hours", "", "zxq " * 1000]
    export = textlstm.export(imdb_run, tmp_path / "exports")
    code = (
        "import json, sys; import tensorflow as tf\n"
        "sig = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "print(json.dumps(sig(text=tf.constant(json.loads(sys.argv[2])))['probabilities'].numpy().tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(export), json.dumps(texts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    for row, probs in zip(textlstm.predict(imdb_run, texts), served):
        assert list(row["probabilities"].values()) == pytest.approx(probs, abs=1e-5)


def _one_epoch(data: str, tmp_path: Path, name: str, *, test: str | None = None, **read) -> float:
    import textlstm
    from textlstm.config import load_config
    from textlstm.file_sources import ReadOptions

    options = ReadOptions(**read)
    # The formats are the question, not the refit, which would double each training.
    config = load_config(None, ["training.epochs=1", "training.refit=false"])
    run = textlstm.train(data, tmp_path / "runs" / name, config, verbose=0, read_options=options)
    return textlstm.evaluate(run.output_dir, test or data, split="test", read_options=options)["accuracy"]


@pytest.mark.timeout(3600)  # five one-epoch IMDB trainings
def test_realdata_imdb_in_other_formats_matches_the_archive(tmp_path: Path) -> None:
    if not IMDB_ARCHIVE.is_file():
        pytest.skip(f"IMDB archive not found at {IMDB_ARCHIVE}")
    import tarfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    folder = tmp_path / "folder"
    with tarfile.open(IMDB_ARCHIVE) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[2] in ("pos", "neg"):
                text = tar.extractfile(member).read().decode("utf-8")
                rows[parts[1]].append((text, parts[2]))
                target = folder.joinpath(*parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    for split, items in rows.items():
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in items)
        pq.write_table(
            pa.table({"text": [t for t, _ in items], "label": [lab for _, lab in items]}), tmp_path / f"{split}.parquet"
        )
        with open(tmp_path / f"{split}.ft", "w", encoding="utf-8") as handle:
            handle.writelines(f"__label__{lab} {' '.join(t.split())}\n" for t, lab in items)
    reference = _one_epoch(str(IMDB_ARCHIVE), tmp_path, "archive")
    results = {
        "folder": _one_epoch(str(folder), tmp_path, "folder"),
        "jsonl": _one_epoch(str(tmp_path / "train.jsonl"), tmp_path, "jsonl", test=str(tmp_path / "test.jsonl")),
        "parquet": _one_epoch(
            str(tmp_path / "train.parquet"), tmp_path, "parquet", test=str(tmp_path / "test.parquet")
        ),
        "fasttext": _one_epoch(
            str(tmp_path / "train.ft"), tmp_path, "ft", test=str(tmp_path / "test.ft"), format="fasttext"
        ),
    }
    print(json.dumps({"archive": reference, **results}))
    for name, accuracy in results.items():
        # Row keys differ between formats, so the hold-out and order differ: noise, not bias.
        assert abs(accuracy - reference) <= 0.02, (name, accuracy, reference)


@pytest.mark.parametrize(
    ("name", "train", "test", "read", "labels"),
    [
        ("sst2", "sst2/train.tsv", "sst2/dev.tsv", {"text_columns": ("sentence",), "label_column": "label"}, 2),
        (
            "trec",
            "trec/TREC.train",
            "trec/TREC.test",
            {"format": "lines", "encoding": "latin-1", "label_regex": r"^([A-Z]+):"},
            6,
        ),
    ],
)
def test_realdata_file_corpora_train_and_evaluate(
    tmp_path: Path, name: str, train: str, test: str, read: dict, labels: int
) -> None:
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / train).is_file():
        pytest.skip(f"{SHARED_DATA / train} not found")
    accuracy = _one_epoch(str(SHARED_DATA / train), tmp_path, name, test=str(SHARED_DATA / test), **read)
    assert len(json.loads((tmp_path / "runs" / name / "labels.json").read_text())) == labels
    assert accuracy > 1.0 / labels  # one epoch: better than chance, not a tuned number


@pytest.mark.timeout(1800)
def test_realdata_tflite_matches_textvectorization_and_the_saved_model(tmp_path: Path) -> None:
    """Issue 4's TFLite parity: the bundled IMDB model on 1,000 IMDB test reviews."""
    if not IMDB_ARCHIVE.is_file():
        pytest.skip(f"IMDB archive not found at {IMDB_ARCHIVE}")
    import numpy as np
    import tensorflow as tf

    import textlstm
    from textlstm.artifacts import BUNDLED_MODEL_DIR, load_text_model
    from textlstm.source_spec import open_source
    from textlstm.tokenizer import Tokenizer

    reviews = [text for i, (_, text, _) in enumerate(open_source(str(IMDB_ARCHIVE)).examples("test")) if i % 25 == 0]
    assert len(reviews) == 1000
    tflite = textlstm.export(BUNDLED_MODEL_DIR, tmp_path / "tflite", format="tflite")
    saved = textlstm.export(BUNDLED_MODEL_DIR, tmp_path / "saved")

    model = load_text_model(BUNDLED_MODEL_DIR)
    tokenizer = Tokenizer.from_files(tflite / "vocab.txt", tflite / "tokenizer.json")
    for start in range(0, len(reviews), 100):
        batch = reviews[start : start + 100]
        rows = model.get_layer("window")(model.get_layer("vectorizer")(tf.constant(batch))).numpy()
        want = [[int(x) for x in row if x != 0] for row in rows]
        assert [tokenizer.ids(text) for text in batch] == want

    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    expected = np.concatenate(
        [serve(text=tf.constant(reviews[s : s + 100]))["probabilities"].numpy() for s in range(0, 1000, 100)]
    )
    got = np.array([list(r["probabilities"].values()) for r in textlstm.predict(tflite, reviews)])
    assert float(np.abs(got - expected).max()) <= 1e-4


SST2 = IMDB_ARCHIVE.parents[1] / "sst2"
SMS = IMDB_ARCHIVE.parents[1] / "sms_spam" / "SMSSpamCollection"


@pytest.mark.timeout(1800)
def test_realdata_sst2_sample_finetuned_from_imdb_beats_scratch(tmp_path: Path) -> None:
    """Issue 5: on a 5,000-phrase sample of SST-2's training file (a small custom corpus),
    the bundled IMDB model fine-tuned with its vocabulary extended beats the same two
    epochs from scratch on the GLUE dev set (measured 0.7844 against 0.7729). On the whole
    67,349-phrase file it no longer does with today's defaults (0.8119 against 0.8303)."""
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"SST-2 not found at {SST2}")
    import random

    import textlstm
    from textlstm.artifacts import BUNDLED_MODEL_DIR
    from textlstm.config import load_config
    from textlstm.file_sources import ReadOptions

    header, *rows = (SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(rows)
    sample = tmp_path / "train_5k.tsv"
    sample.write_text("\n".join([header, *rows[:5000]]) + "\n", encoding="utf-8")
    options = ReadOptions(text_columns=("sentence",), label_column="label", label_map={"0": "neg", "1": "pos"})
    dev = {}
    for name, extra in (
        ("scratch", []),
        ("finetuned", [f"finetune.init_from={BUNDLED_MODEL_DIR}", "finetune.extend_vocab=5000"]),
    ):
        config = load_config(None, ["training.epochs=2", *extra])
        run = textlstm.train(str(sample), tmp_path / name, config, verbose=0, read_options=options)
        dev[name] = textlstm.evaluate(run.output_dir, str(SST2 / "dev.tsv"), read_options=options)["accuracy"]
    assert dev["finetuned"] > dev["scratch"], dev
    assert dev["finetuned"] >= 0.76, dev


@pytest.mark.timeout(1800)
def test_realdata_sms_balanced_class_weight_raises_spam_recall(tmp_path: Path) -> None:
    """Issue 5: after one epoch the unweighted plain BiLSTM (model.ngram_order=0) still
    predicts ham for every message, the balanced one finds most spam (hold-out spam
    recall 0.0 against 0.986, measured 2026-12-06); the defaults' ensemble, whose bags
    find spam within an epoch, gains less but still gains (0.731 against 0.910)."""
    if not SMS.is_file():
        pytest.skip(f"SMS spam collection not found at {SMS}")
    import textlstm
    from textlstm.config import load_config
    from textlstm.file_sources import ReadOptions

    options = ReadOptions(format="tsv", header=False, label_column="0", text_columns=("1",))
    recall: dict[tuple[str, str], float] = {}
    for model in ("plain", "defaults"):
        for weight in ("none", "balanced"):
            config = load_config(
                None,
                [
                    # One pass (not the repeated epoch a corpus this small gets by default).
                    "training.epochs=1",
                    "training.min_epoch_steps=0",
                    "data.val_fraction=0.2",
                    "training.seed=0",
                    f"training.class_weight={weight}",
                    # The figure is the hold-out's, which a refit would not change.
                    "training.refit=false",
                    *(["model.ngram_order=0"] if model == "plain" else []),
                ],
            )
            run = textlstm.train(str(SMS), tmp_path / f"{model}-{weight}", config, verbose=0, read_options=options)
            recall[model, weight] = run.metrics["per_label"]["spam"]["recall"]
    assert recall["plain", "balanced"] >= recall["plain", "none"] + 0.5, recall
    assert recall["defaults", "balanced"] > recall["defaults", "none"], recall
