"""`train` through the API: the model directory, the hold-out, determinism, overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import textlstm
from tests.conftest import NEGATIVE, POSITIVE, held_out
from textlstm import artifacts
from textlstm.config import Config
from textlstm.errors import DataError, OutputExistsError


def test_training_writes_complete_model_dir(trained_run, tiny_config: Config, corpus_tar: Path) -> None:
    out = trained_run.output_dir
    names = {p.name for p in out.iterdir()}
    assert names >= {*artifacts.RUN_FILES, artifacts.BEST_DIR, artifacts.LAST_DIR}
    assert artifacts.CHECKPOINT_DIR not in names
    assert names == {*artifacts.RUN_FILES, artifacts.BEST_DIR, artifacts.LAST_DIR, artifacts.LEARNING_CURVES_FILE}
    assert (out / artifacts.LEARNING_CURVES_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for sub in (artifacts.BEST_DIR, artifacts.LAST_DIR):
        assert sorted(p.name for p in (out / sub).iterdir()) == sorted(artifacts.RUN_FILES)
    best = json.loads((out / artifacts.BEST_DIR / artifacts.MANIFEST_FILE).read_text())
    last = json.loads((out / artifacts.LAST_DIR / artifacts.MANIFEST_FILE).read_text())
    assert best["epoch"] == trained_run.best_epoch and last["epoch"] == trained_run.epochs_run
    assert json.loads((out / artifacts.BEST_DIR / artifacts.METRICS_FILE).read_text()) == trained_run.metrics
    saved = Config.from_dict(json.loads((out / artifacts.CONFIG_FILE).read_text()))
    # The label mode left to the data (null) is saved as decided.
    assert tiny_config.data.multi_label is None and saved.data.multi_label is False
    saved.data.multi_label = None
    assert saved == tiny_config
    assert json.loads((out / artifacts.LABELS_FILE).read_text()) == ["neg", "pos"]
    vocab = (out / artifacts.VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    assert vocab[0] == "" and vocab[1] == "[UNK]" and "great" in vocab
    manifest = json.loads((out / artifacts.MANIFEST_FILE).read_text())
    assert manifest["seed"] == tiny_config.training.seed
    assert manifest["data"]["fingerprint"].startswith("sha256:")
    assert manifest["data"]["train_examples"] + manifest["data"]["val_examples"] == 200
    assert set(manifest["versions"]) >= {"tensorflow", "keras", "textlstm", "python"}
    history = json.loads((out / artifacts.HISTORY_FILE).read_text())
    assert set(history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    metrics = json.loads((out / artifacts.METRICS_FILE).read_text())
    assert metrics["examples"] == trained_run.val_examples


def test_training_config_json_reproduces_the_run(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    from textlstm.cli import main

    out = trained_run.output_dir
    config = out / artifacts.CONFIG_FILE
    result = cli.invoke(
        main,
        ["train", "--config", str(config), "--data", str(corpus_tar), "--output-dir", str(tmp_path / "again"), "-q"],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "again" / artifacts.HISTORY_FILE).read_text()) == trained_run.history
    first = json.loads((out / artifacts.MANIFEST_FILE).read_text())
    second = json.loads((tmp_path / "again" / artifacts.MANIFEST_FILE).read_text())
    assert first["data"]["fingerprint"] == second["data"]["fingerprint"]
    assert first["data"]["bytes"] == corpus_tar.stat().st_size


def test_training_learns_the_tiny_task(trained_run, corpus_tar: Path) -> None:
    report = textlstm.evaluate(trained_run.output_dir, str(corpus_tar))
    assert report["accuracy"] >= 0.8, report


def test_training_naive_bayes_bag_counts_its_ratios_on_the_training_part(
    cli, corpus_tar: Path, tiny_config: Config, tmp_path: Path
) -> None:
    from textlstm.cli import main

    config = tiny_config.with_overrides(["model.ngram_weighting=naive_bayes", "training.epochs=2"])
    result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    out = result.output_dir
    counted = json.loads((out / artifacts.MANIFEST_FILE).read_text())["ngram_ratios"]
    assert counted["texts"] == result.train_examples
    classifier = artifacts.load_text_model(out).get_layer("classifier")
    bag = classifier.get_layer("ngram_bag")
    assert bag.naive_bayes and tuple(bag.table.shape) == (bag.vocab_size + 1024, 2)
    vocabulary = (out / artifacts.VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    ratio = np.asarray(bag.ratio)
    pos = artifacts.read_run_info(out).labels.index("pos")
    # The word lists of the tiny corpus: positive words lean to pos, negative ones away.
    assert all(ratio[vocabulary.index(word), pos] > 0.5 for word in ("great", "superb"))
    assert all(ratio[vocabulary.index(word), pos] < -0.5 for word in ("awful", "boring"))
    assert textlstm.evaluate(out, str(corpus_tar))["accuracy"] >= 0.8
    # Fine-tuning continues the bag with the base's ratios.
    command = ["train", "--init-from", str(out), "--data", str(corpus_tar), "--output-dir", str(tmp_path / "ft")]
    finetuned = cli.invoke(main, [*command, "--epochs", "1"])
    assert finetuned.exit_code == 0, finetuned.stderr
    tuned = artifacts.load_text_model(tmp_path / "ft").get_layer("classifier").get_layer("ngram_bag")
    np.testing.assert_allclose(np.asarray(tuned.ratio), ratio)
    assert json.loads((tmp_path / "ft" / artifacts.MANIFEST_FILE).read_text())["ngram_ratios"]["base_rows_kept"]
    # New labels: the bag starts afresh on the new data's ratios, and --freeze embedding
    # leaves it trainable (frozen at 0 it would add only its bias).
    rows = ["text,label"] + [f"{w} film {w},yes" for w in POSITIVE] * 4 + [f"{w} film {w},no" for w in NEGATIVE] * 4
    (tmp_path / "new.csv").write_text("\n".join(rows) + "\n")
    command = [
        "train",
        "--init-from",
        str(out),
        "--data",
        str(tmp_path / "new.csv"),
        "--output-dir",
        str(tmp_path / "nl"),
    ]
    # --no-refit: one training, whose freezing the log shows once.
    relabelled = cli.invoke(main, [*command, "--epochs", "1", "--freeze", "embedding", "--no-refit"])
    assert relabelled.exit_code == 0, relabelled.stderr
    frozen = [line for line in relabelled.stderr.splitlines() if "freezing embedding" in line]
    assert len(frozen) == 1 and "ngram_bag" not in frozen[0], frozen
    fresh = artifacts.load_text_model(tmp_path / "nl").get_layer("classifier").get_layer("ngram_bag")
    assert np.abs(np.asarray(fresh.table)).max() > 0


def assert_exports_answer_as_the_run(run: Path, folder: Path) -> None:
    """Export ``run`` as a SavedModel and as TFLite under ``folder``; both must give the
    run directory's probabilities on a few texts, an empty one among them."""
    from textlstm import prediction

    texts = ["great superb film", "awful boring waste", "", "the plot of this movie was dull and it was a waste"]
    want = prediction.load_predictor(run).probabilities(texts)
    for fmt, tolerance in (("savedmodel", 1e-5), ("tflite", 1e-4)):
        exported = textlstm.export(run, folder / fmt, format=fmt)
        np.testing.assert_allclose(prediction.load_predictor(exported).probabilities(texts), want, atol=tolerance)


@pytest.mark.slow
def test_training_tunes_the_ensemble_mix_on_validation(
    cli, corpus_tar: Path, tiny_config: Config, tmp_path: Path
) -> None:
    from textlstm import prediction
    from textlstm.cli import main

    result = textlstm.train(
        str(corpus_tar), tmp_path / "run", tiny_config.with_overrides(["model.ngram_mix=tuned"]), verbose=0
    )
    out = result.output_dir
    mix = json.loads((out / artifacts.MANIFEST_FILE).read_text())["ngram_mix"]
    # On the tiny task the bag alone separates the classes, so tuning moves off the mean.
    assert mix["lstm_weight"] != 0.5 and mix["val_loss"] < mix["val_loss_at_mean"]
    # The saved validation figures are those of the tuned mix, and the saved model holds it.
    assert result.metrics["loss"] == pytest.approx(mix["val_loss"], abs=1e-4)
    # Training mixes the figures from the members' outputs; the saved model gives them too.
    from textlstm.metrics import cross_entropy

    texts, labels = held_out(corpus_tar, out, tiny_config)
    probabilities = prediction.load_predictor(out).probabilities(list(texts))
    assert len(texts) == result.val_examples
    assert cross_entropy(np.array(labels), probabilities) == pytest.approx(result.metrics["loss"], abs=1e-5)
    assert np.mean(np.argmax(probabilities, axis=1) == np.array(labels)) == pytest.approx(result.metrics["accuracy"])

    def head_mix(run: Path) -> float:
        head = artifacts.load_text_model(run).get_layer("classifier").get_layer("probabilities")
        return float(head.mix.numpy())

    assert head_mix(out) == pytest.approx(mix["lstm_weight"])
    # The SavedModel and TFLite exports answer as the run directory does.
    assert_exports_answer_as_the_run(out, tmp_path)
    # A fine-tuning run continuing the output layers starts from the mean, not the base's
    # mix: without a hold-out to tune on, it keeps 0.5.
    command = ["train", "--init-from", str(out), "--data", str(corpus_tar), "--output-dir", str(tmp_path / "ft")]
    command += ["--epochs", "1", "--set", "data.val_fraction=0"]
    finetuned = cli.invoke(main, command)
    assert finetuned.exit_code == 0, finetuned.stderr
    assert "its output layer continues" in finetuned.stderr
    assert head_mix(tmp_path / "ft") == 0.5


def test_training_member_epochs_own_keeps_each_member_from_its_epoch(
    corpus_dir: Path, tiny_config: Config, tmp_path: Path
) -> None:
    import tensorflow as tf

    from textlstm.metrics import cross_entropy
    from textlstm.model import MEMBER_HEADS, training_model

    # A bag that learns 10 times faster than the tiny config's overshoots (its validation
    # loss rises after an epoch or two) while the LSTM still improves: their epochs differ.
    # (On this hold-out; on the one drawn by text both happen to peak at the last epoch.)
    sets = [
        *("model.ngram_mix=tuned", "model.ngram_scale=500", "training.epochs=6", "training.patience=10"),
        "data.holdout_by=key",
    ]
    shared = textlstm.train(
        str(corpus_dir),
        tmp_path / "shared",
        tiny_config.with_overrides([*sets, "training.member_epochs=shared"]),
        verbose=0,
    )
    own = textlstm.train(
        str(corpus_dir), tmp_path / "own", tiny_config.with_overrides([*sets, "training.member_epochs=own"]), verbose=0
    )
    manifest = json.loads((own.output_dir / artifacts.MANIFEST_FILE).read_text())
    epochs = manifest["member_best_epochs"]
    assert sorted(epochs) == sorted(MEMBER_HEADS[:2]) and own.best_epoch == max(epochs.values())
    assert epochs[MEMBER_HEADS[0]] != epochs[MEMBER_HEADS[1]]
    assert "member_best_epochs" not in json.loads((shared.output_dir / artifacts.MANIFEST_FILE).read_text())
    # Training is the same; only the choice differs. Own epochs include every epoch's pair,
    # so the kept mix is at least as good on validation as the shared epoch's, and as any
    # epoch's mean mix.
    assert own.history["val_loss"] == pytest.approx(shared.history["val_loss"], abs=1e-6)
    assert own.metrics["loss"] <= shared.metrics["loss"] + 1e-6
    assert own.metrics["loss"] <= min(own.history["val_loss"]) + 1e-6
    # Each kept member answers the hold-out as it did in the epoch the manifest names.
    texts, labels = held_out(corpus_dir, own.output_dir, tiny_config.with_overrides(sets))
    model = artifacts.load_text_model(own.output_dir)
    ids = model.get_layer("window")(model.get_layer("vectorizer")(tf.constant(texts)))
    outputs = training_model(model.get_layer("classifier"))(ids)
    for name, probabilities in zip(MEMBER_HEADS[:2], outputs[1:], strict=True):
        loss = cross_entropy(np.array(labels), np.asarray(probabilities))
        assert loss == pytest.approx(own.history[f"val_{name}_loss"][epochs[name] - 1], abs=1e-5), name


def test_training_naive_bayes_bag_beside_the_bag_is_a_third_member(
    cli, corpus_tar: Path, tiny_config: Config, tmp_path: Path
) -> None:
    from textlstm import prediction
    from textlstm.cli import main
    from textlstm.metrics import cross_entropy
    from textlstm.model import MEMBER_HEADS

    sets = ["model.naive_bayes_bag=true", "model.naive_bayes_buckets=512", "model.ngram_mix=tuned"]
    config = tiny_config.with_overrides([*sets, "training.epochs=3"])
    result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    out = result.output_dir
    manifest = json.loads((out / artifacts.MANIFEST_FILE).read_text())
    # The naive Bayes bag counted its ratios, and each member kept an epoch of its own.
    assert manifest["ngram_ratios"]["texts"] == result.train_examples
    assert sorted(manifest["member_best_epochs"]) == sorted(MEMBER_HEADS)
    assert len(result.history["val_naive_bayes_probabilities_loss"]) == result.epochs_run
    # Three weights on the simplex, chosen on the hold-out: no worse there than the mean.
    mix = manifest["ngram_mix"]
    weights = mix["weights"]
    assert set(weights) == {"LSTM", "n-gram bag", "naive Bayes bag"}
    assert sum(weights.values()) == pytest.approx(1.0) and mix["lstm_weight"] == weights["LSTM"]
    assert mix["val_loss"] <= mix["val_loss_at_mean"] + 1e-9
    assert result.metrics["loss"] == pytest.approx(mix["val_loss"], abs=1e-4)
    classifier = artifacts.load_text_model(out).get_layer("classifier")
    np.testing.assert_allclose(classifier.get_layer("probabilities").mix.numpy(), list(weights.values()), atol=1e-7)
    bag = classifier.get_layer("naive_bayes_bag")
    assert bag.naive_bayes and tuple(bag.table.shape) == (bag.vocab_size + 512, 2)
    assert not classifier.get_layer("ngram_bag").naive_bayes
    # The saved model answers the hold-out with the figures training recorded.
    texts, labels = held_out(corpus_tar, out, config)
    probabilities = prediction.load_predictor(out).probabilities(list(texts))
    assert cross_entropy(np.array(labels), probabilities) == pytest.approx(result.metrics["loss"], abs=1e-5)
    # The exports answer as the run directory does.
    assert_exports_answer_as_the_run(out, tmp_path)
    # Fine-tuning continues both bags, the naive Bayes one with the base's ratios.
    command = ["train", "--init-from", str(out), "--data", str(corpus_tar), "--output-dir", str(tmp_path / "ft")]
    finetuned = cli.invoke(main, [*command, "--epochs", "1"])
    assert finetuned.exit_code == 0, finetuned.stderr
    tuned = artifacts.load_text_model(tmp_path / "ft").get_layer("classifier").get_layer("naive_bayes_bag")
    np.testing.assert_allclose(np.asarray(tuned.ratio), np.asarray(bag.ratio))
    # A third member needs the tuned mix of member paths.
    bad = cli.invoke(
        main,
        ["train", "--data", str(corpus_tar), "--output-dir", str(tmp_path / "bad")]
        + [arg for item in ("model.naive_bayes_bag=true", "model.ngram_mix=mean") for arg in ("--set", item)],
    )
    assert bad.exit_code == 2
    assert (
        "model.ngram_mix; expected tuned with model.naive_bayes_bag (three members), or that set to false" in bad.stderr
    )
    assert not (tmp_path / "bad").exists()


def test_training_text_dataset_streams_blocks_in_order_and_raises_source_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textlstm import pipeline
    from textlstm.source_spec import open_source

    # Blocks of 3 instead of 256, so that the tiny corpus spans many full blocks and a last partial one.
    monkeypatch.setattr(pipeline, "_GENERATOR_BLOCK", 3)
    for label in ("neg", "pos"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "train" / label / f"{i}.txt").write_text(f"{label} café\x00 document {i}")
    source = open_source(str(tmp_path))
    expected = [(text, target) for _, text, _, target in pipeline.labelled_examples(source, "train", ["neg", "pos"])]
    ds = pipeline.text_dataset(source, "train", ["neg", "pos"])
    assert ds.element_spec[0].shape == () and ds.element_spec[1].shape == ()
    got = [(t.numpy().decode("utf-8"), int(y.numpy())) for t, y in ds]
    assert got == expected and len(got) == 20
    # A label missing from the names: the DataError comes out as itself, after full blocks were read.
    with pytest.raises(DataError, match="expected one of"):
        with pipeline.source_errors():
            list(pipeline.text_dataset(source, "train", ["neg"]))


def test_training_holdout_is_seeded_and_disjoint(tmp_path: Path) -> None:
    from textlstm.pipeline import text_dataset
    from textlstm.source_spec import open_source

    for label in ("neg", "pos"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(100):
            (tmp_path / "train" / label / f"{i}.txt").write_text(f"{label} document {i}")
    source = open_source(str(tmp_path))

    def texts(part: str, seed: int) -> set[bytes]:
        ds = text_dataset(source, "train", ["neg", "pos"], part=part, seed=seed, val_fraction=0.25)
        return {t.numpy() for t, _ in ds}

    train, val = texts("train", 1), texts("val", 1)
    assert not train & val
    assert len(train | val) == 200
    assert 20 <= len(val) <= 80
    assert texts("val", 1) == val
    assert texts("val", 2) != val


def test_training_holdout_keeps_copies_of_a_text_on_one_side(tmp_path: Path, tiny_config: Config) -> None:
    from textlstm.pipeline import text_dataset
    from textlstm.source_spec import open_source

    # Each text four times, under other file names and with other case and spacing, as a
    # scraped corpus repeats messages: with data.holdout_by=text (the default) no copy of a
    # held-out text may train, which the hold-out would otherwise reward as memorisation.
    copies = 4
    for label, word in (("neg", "awful"), ("pos", "great")):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(60):
            for c in range(copies):
                text = f"{word} film number {i}" if c % 2 else f"  {word.upper()} Film\tnumber {i} "
                (tmp_path / "train" / label / f"{i}_{c}.txt").write_text(text)
    source = open_source(str(tmp_path))

    def identities(part: str, holdout_by: str) -> list[str]:
        ds = text_dataset(source, "train", ["neg", "pos"], part=part, seed=7, val_fraction=0.25, holdout_by=holdout_by)
        return [" ".join(t.numpy().decode().lower().split()) for t, _ in ds]

    train, val = identities("train", "text"), identities("val", "text")
    assert val and not set(train) & set(val)
    assert all(val.count(text) == copies for text in val) and len(train) + len(val) == 480
    # By file name, as before the option, copies straddle the two sides.
    assert set(identities("train", "key")) & set(identities("val", "key"))

    # `train` splits as its config says (shown with the non-default, which the pipeline
    # would not pick by itself), and records the choice in the run's config.
    assert Config().data.holdout_by == "text"
    sets = ["training.epochs=1", "data.val_fraction=0.25", "training.seed=7", "data.holdout_by=key"]
    result = textlstm.train(str(tmp_path), tmp_path / "run", tiny_config.with_overrides(sets), verbose=0)
    assert result.val_examples == len(identities("val", "key")) != len(val)
    # ... and validates on that hold-out, not only counts it (the summary is a pass of its own).
    metrics = json.loads((result.output_dir / artifacts.METRICS_FILE).read_text())
    assert metrics["examples"] == result.val_examples
    saved = json.loads((result.output_dir / artifacts.CONFIG_FILE).read_text())
    assert saved["data"]["holdout_by"] == "key"


@pytest.mark.slow
def test_training_same_seed_same_result(corpus_tar: Path, tiny_config: Config, tmp_path: Path) -> None:
    config = tiny_config.with_overrides(["training.epochs=2"])
    first = textlstm.train(str(corpus_tar), tmp_path / "a", config, verbose=0)
    second = textlstm.train(str(corpus_tar), tmp_path / "b", config, verbose=0)
    assert first.history == second.history
    texts = ["great film", "awful plot", "the story of a scene"]
    p1 = [r["probabilities"] for r in textlstm.predict(first.output_dir, texts)]
    p2 = [r["probabilities"] for r in textlstm.predict(second.output_dir, texts)]
    assert p1 == p2


def test_training_limit_and_fixed_vocabulary(corpus_tar: Path, tiny_config: Config, tmp_path: Path) -> None:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("great\nawful\nfilm\n")
    config = tiny_config.with_overrides(["data.limit=50", "training.epochs=1", f"vectorizer.vocab_file={vocab}"])
    result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    assert result.train_examples + result.val_examples <= 50
    assert (result.output_dir / artifacts.VOCAB_FILE).read_text() == "\n[UNK]\ngreat\nawful\nfilm\n"


def test_training_streaming_options(corpus_tar: Path, tiny_config: Config, tmp_path: Path, trained_run) -> None:
    config = tiny_config.with_overrides(
        ["data.cache=false", "data.vocab_sample=5", "training.steps_per_epoch=3", "training.epochs=2"]
    )
    result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    assert len(result.history["loss"]) == 2
    assert result.train_examples + result.val_examples == 200
    sampled = (tmp_path / "run" / artifacts.VOCAB_FILE).read_text().split("\n")
    full = (trained_run.output_dir / artifacts.VOCAB_FILE).read_text().split("\n")
    # Five short documents hold fewer distinct words than the whole training part.
    assert len(sampled) < len(full)


@pytest.mark.slow
def test_training_overwrite_replaces_the_run(corpus_tar: Path, tiny_config: Config, tmp_path: Path) -> None:
    config = tiny_config.with_overrides(["training.epochs=1", "data.limit=40"])
    out = tmp_path / "run"
    textlstm.train(str(corpus_tar), out, config, verbose=0)
    (out / "note.txt").write_text("left in the run folder")
    with pytest.raises(OutputExistsError, match="already holds a different textlstm run"):
        textlstm.train(str(corpus_tar), out, config, verbose=0)
    assert (out / "note.txt").exists()
    # The old run goes when the new one finishes: a file of the user's beside it would too.
    with pytest.raises(OutputExistsError, match=r"holds files textlstm did not write \(note\.txt\)"):
        textlstm.train(str(corpus_tar), out, config, overwrite=True, verbose=0)
    assert (out / "note.txt").read_text() == "left in the run folder"
    (out / "note.txt").unlink()
    textlstm.train(str(corpus_tar), out, config.with_overrides(["training.seed=3"]), overwrite=True, verbose=0)
    assert json.loads((out / artifacts.MANIFEST_FILE).read_text())["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.slow
def test_training_failed_save_keeps_the_previous_run(
    corpus_tar: Path, tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    config = tiny_config.with_overrides(["training.epochs=1", "data.limit=40"])
    out = tmp_path / "run"
    textlstm.train(str(corpus_tar), out, config, verbose=0)

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    before = files()

    def broken_save(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        textlstm.train(str(corpus_tar), out, config.with_overrides(["training.seed=5"]), overwrite=True, verbose=0)
    assert files() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_training_overwrite_never_deletes_other_files(corpus_tar: Path, tiny_config: Config, tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="is not empty and holds no textlstm run"):
        textlstm.train(str(corpus_tar), tmp_path / "project", tiny_config, overwrite=True, verbose=0)
    assert (tmp_path / "project" / "notes.txt").read_text() == "mine"


def test_training_failure_leaves_no_output(tmp_path: Path, tiny_config: Config) -> None:
    for label in ("a", "b"):
        (tmp_path / "data" / "train" / label).mkdir(parents=True)
    (tmp_path / "data" / "train" / "a" / "1.txt").write_text("one")
    (tmp_path / "data" / "train" / "b" / "2.txt").write_text("two")
    config = tiny_config.with_overrides(["data.val_fraction=0.01"])
    with pytest.raises(DataError, match="validation hold-out .* is empty"):
        textlstm.train(str(tmp_path / "data"), tmp_path / "run", config, verbose=0)
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_training_needs_two_labels(tmp_path: Path, tiny_config: Config) -> None:
    (tmp_path / "train" / "only").mkdir(parents=True)
    (tmp_path / "train" / "only" / "1.txt").write_text("one")
    with pytest.raises(DataError, match=r"has 1 label\(s\) \['only'\]; expected at least 2"):
        textlstm.train(str(tmp_path), tmp_path / "run", tiny_config, verbose=0)


def test_training_caps_a_batch_larger_than_the_training_part(
    corpus_tar: Path, tiny_config: Config, tmp_path: Path, caplog
) -> None:
    # The training stream repeats: an uncapped batch of 5,000 would hold each of the
    # examples about thirty times (10**6 reached 23 GiB and was killed).
    config = tiny_config.with_overrides(["training.epochs=1", "training.batch_size=5000"])
    with caplog.at_level("INFO", logger="textlstm"):
        result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    n_train = result.train_examples
    saved = json.loads((result.output_dir / artifacts.CONFIG_FILE).read_text())
    manifest = json.loads((result.output_dir / artifacts.MANIFEST_FILE).read_text())
    assert saved["training"]["batch_size"] == n_train
    assert manifest["distribution"]["global_batch_size"] == n_train
    assert f"training.batch_size=5000 is more than the {n_train} training examples" in caplog.text


@pytest.mark.parametrize("minimum, expected", [(20, 20), (5, None)])
def test_training_min_epoch_steps_repeats_small_corpora(
    corpus_tar: Path, tiny_config: Config, tmp_path: Path, minimum: int, expected: int | None
) -> None:
    # 160 training examples in batches of 16 make about 10 batches a pass: an epoch of at
    # least 20 batches repeats the data; one of at least 5 is a plain pass.
    config = tiny_config.with_overrides(["training.epochs=2", f"training.min_epoch_steps={minimum}"])
    result = textlstm.train(str(corpus_tar), tmp_path / "run", config, verbose=0)
    saved = json.loads((result.output_dir / artifacts.CONFIG_FILE).read_text())
    assert saved["training"]["steps_per_epoch"] == expected
    assert saved["training"]["min_epoch_steps"] == minimum
    assert len(result.history["loss"]) == 2
