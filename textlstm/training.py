"""`train`: from a data source to a complete model directory."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from textlstm import artifacts
from textlstm.config import Config
from textlstm.errors import ConfigError, DataError, describe
from textlstm.evaluation import predict_batches, score_dataset
from textlstm.file_sources import ReadOptions
from textlstm.inspection import summarize_parts
from textlstm.metrics import DEFAULT_THRESHOLD, headline, tuned_multilabel_metrics
from textlstm.model import build_classifier, build_text_model
from textlstm.pipeline import (
    batched,
    bucket_boundaries,
    id_dataset,
    labelled_examples,
    source_errors,
    text_dataset,
    texts_only,
)
from textlstm.runtime import library_versions, seed_everything, tensorflow
from textlstm.source_spec import open_source
from textlstm.vectorizer import make_vectorizer, read_vocabulary, write_vocabulary

tf = tensorflow()
log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What `train` produced."""

    output_dir: Path
    # Validation metrics of the kept weights (empty when data.val_fraction is 0).
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    train_examples: int
    val_examples: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for the CLI."""
        keep = ("accuracy", "loss", "macro_f1", "micro_f1", "subset_accuracy", "hamming_loss", "thresholds", "examples")
        return {
            "output_dir": str(self.output_dir),
            "validation": {k: self.metrics[k] for k in keep if k in self.metrics},
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "train_examples": self.train_examples,
            "val_examples": self.val_examples,
            "seconds": round(self.seconds, 1),
        }


class _EpochLog(keras.callbacks.Callback):
    """One log line per epoch, for logs that outlive the progress bar."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if k != "learning_rate")
        log.info("epoch %d: %s", epoch + 1, shown)


def train(
    data: str,
    output_dir: str | Path,
    config: Config | None = None,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    verbose: int | str = "auto",
    read_options: ReadOptions | None = None,
) -> TrainResult:
    """Train a classifier on the training split of ``data`` and write a model directory.

    Args:
        data: a source spec (see `textlstm.sources`), e.g. ``tfds:imdb_reviews`` or a
            path to an aclImdb folder or archive.
        output_dir: where the model directory is written; it is built in a temporary
            sibling and moved into place only when complete.
        config: the configuration (defaults when None).
        overwrite: replace an existing run in ``output_dir``.
        command: the command line to record in the manifest.
        verbose: Keras ``fit`` verbosity (progress goes to stderr).
        read_options: columns, format and label rules for file sources (CSV, JSONL ...).

    Returns:
        A TrainResult with validation metrics, history and timings.
    """
    started = time.time()
    config = (config or Config()).validate()
    output_dir = artifacts.prepare_output_dir(output_dir, overwrite)
    read_options = read_options or ReadOptions()
    source = open_source(data, read_options)
    split = config.data.train_split
    source.check_split(split)
    label_names = source.label_names()
    multi_label = _multi_label(config, source, data)
    if config.training.tune_thresholds and not multi_label:
        raise ConfigError(
            "training.tune_thresholds (--tune-thresholds) applies to multi-label models; "
            f"{describe('a multi-label corpus or data.multi_label=true', f'single-label data in {data}')}"
        )
    needed = 1 if multi_label else 2
    if len(label_names) < needed:
        raise DataError(f"{data} has {len(label_names)} label(s) {label_names}; expected at least {needed} to classify")
    # The saved config records the decision, so evaluate/predict/export read targets the same way.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, multi_label=multi_label))
    seed = config.training.seed
    seed_everything(seed)

    with source_errors():
        streams = {
            part: text_dataset(
                source,
                split,
                label_names,
                part=part,
                seed=seed,
                val_fraction=config.data.val_fraction,
                limit=config.data.limit,
                multi_label=multi_label,
            )
            for part in ("train", "val")
        }
        # The `data inspect` summary of both parts, in one read; its counts also size the
        # learning-rate schedule.
        parts = labelled_examples(
            source,
            split,
            label_names,
            parts=("train", "val"),
            seed=seed,
            val_fraction=config.data.val_fraction,
            limit=config.data.limit,
            multi_label=multi_label,
        )
        summaries = summarize_parts(parts, config.vectorizer, ("train", "val"))
        for part, name in (("train", "training"), ("val", "validation")):
            log.info("%s data: %s", name, json.dumps(summaries[part], ensure_ascii=False))
        vectorizer = _fit_vectorizer(config, streams["train"])
        vocabulary = vectorizer.get_vocabulary()
        max_length = config.vectorizer.max_length
        ids = {
            part: id_dataset(stream, vectorizer, max_length, config.vectorizer.keep) for part, stream in streams.items()
        }
        if config.data.cache:
            # Filled during the first epoch.
            ids = {part: ds.cache() for part, ds in ids.items()}
    n_train, n_val = summaries["train"]["examples"], summaries["val"]["examples"]
    if n_train == 0:
        raise DataError(f"no training examples left in split {split!r} of {data}; expected at least one")
    if config.data.val_fraction > 0 and n_val == 0:
        raise DataError(
            f"the validation hold-out of {data} is empty; expected data.val_fraction={config.data.val_fraction} "
            "to select at least one example (raise it or use more data)"
        )

    batch_size = config.training.batch_size
    train_batches = batched(ids["train"], batch_size, max_length, shuffle_buffer=config.data.shuffle_buffer, seed=seed)
    val_batches = batched(ids["val"], batch_size, max_length) if n_val else None
    classifier = build_classifier(
        config.model, vocab_size=len(vocabulary), num_labels=len(label_names), multi_label=multi_label
    )
    if multi_label:
        loss, fit_metrics = (
            "binary_crossentropy",
            [keras.metrics.F1Score(average="micro", threshold=DEFAULT_THRESHOLD, name="micro_f1")],
        )
    else:
        loss, fit_metrics = "sparse_categorical_crossentropy", ["accuracy"]
    classifier.compile(optimizer=_optimizer(config, n_train), loss=loss, metrics=fit_metrics)
    callbacks: list[keras.callbacks.Callback] = [_EpochLog()]
    if val_batches is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.training.patience, restore_best_weights=True
            )
        )
    with source_errors(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # Keras prints its progress bar to stdout; stdout is kept for results.
        # The first epoch over a stream of unknown length ends with a harmless
        # "input ran out of data" warning.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        steps = config.training.steps_per_epoch
        fit = classifier.fit(
            train_batches.repeat() if steps else train_batches,
            validation_data=val_batches,
            epochs=config.training.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, with the seed
            verbose=verbose,
        )
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else epochs_run
    metrics: dict[str, Any] = {}
    thresholds = None  # multi-label decision thresholds; None: DEFAULT_THRESHOLD for every label
    if val_batches is not None:
        if config.training.tune_thresholds:
            thresholds, metrics = tuned_multilabel_metrics(*predict_batches(classifier, val_batches), label_names)
            log.info(
                "thresholds tuned on validation: %s (micro_f1 %.4f at %g)",
                dict(zip(label_names, thresholds.tolist())),
                metrics["at_default_threshold"]["micro_f1"],
                DEFAULT_THRESHOLD,
            )
        else:
            metrics = score_dataset(classifier, val_batches, label_names, multi_label)
        log.info("validation %s %.4f at best epoch %d", *headline(metrics), best_epoch)

    serving_vectorizer = make_vectorizer(config.vectorizer, vocabulary=vocabulary)
    text_model = build_text_model(serving_vectorizer, classifier, config)
    manifest = {
        "textlstm_run": 1,
        "command": list(command) if command is not None else None,
        "data": {
            "source": data,
            "split": split,
            "read_options": read_options.to_dict(),
            "fingerprint": source.fingerprint(),
            "multi_label": multi_label,
            "train_examples": n_train,
            "val_examples": n_val,
            "train_summary": summaries["train"],
            "val_summary": summaries["val"],
        },
        "seed": seed,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(time.time() - started, 1),
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
    }
    with artifacts.atomic_directory(output_dir, overwrite=overwrite) as tmp:
        text_model.save(tmp / artifacts.MODEL_FILE)
        artifacts.write_json(tmp / artifacts.CONFIG_FILE, config.to_dict())
        write_vocabulary(vocabulary, tmp / artifacts.VOCAB_FILE)
        artifacts.write_json(tmp / artifacts.LABELS_FILE, label_names)
        artifacts.write_json(tmp / artifacts.HISTORY_FILE, history)
        artifacts.write_json(tmp / artifacts.METRICS_FILE, metrics)
        artifacts.write_json(tmp / artifacts.MANIFEST_FILE, manifest)
        if multi_label:
            artifacts.write_thresholds(tmp, label_names, thresholds)
    log.info("model directory written to %s", output_dir)
    return TrainResult(
        output_dir=output_dir,
        metrics=metrics,
        history=history,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        train_examples=n_train,
        val_examples=n_val,
        seconds=time.time() - started,
    )


def _multi_label(config: Config, source: Any, data: str) -> bool:
    """The configured label mode, or the data's when data.multi_label is null."""
    found = source.multi_label()
    if config.data.multi_label is None:
        if found:
            log.info("%s holds label sets: training a multi-label model (one sigmoid per label)", data)
        return found
    # With data.multi_label=false, one-element label lists are single labels; an example
    # with several labels is reported, with its key, when it is read.
    return config.data.multi_label


def _optimizer(config: Config, n_train: int) -> keras.optimizers.Optimizer:
    """Adam with the configured schedule and gradient clipping."""
    training = config.training
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = training.learning_rate
    if training.lr_schedule == "cosine":
        # Bucketing leaves one partial batch per length bucket, hence the extra steps.
        steps = training.steps_per_epoch or (
            n_train // training.batch_size + len(bucket_boundaries(config.vectorizer.max_length)) + 1
        )
        learning_rate = keras.optimizers.schedules.CosineDecay(
            training.learning_rate, decay_steps=steps * training.epochs
        )
    return keras.optimizers.Adam(learning_rate, clipnorm=training.clipnorm)


def _fit_vectorizer(config: Config, train_texts: Any) -> Any:
    """A ragged TextVectorization with a fixed vocabulary or adapted on the training part."""
    if config.vectorizer.vocab_file:
        tokens = read_vocabulary(config.vectorizer.vocab_file, config.vectorizer.max_tokens)
        log.info("using the fixed vocabulary %s (%d tokens)", config.vectorizer.vocab_file, len(tokens))
        return make_vectorizer(config.vectorizer, vocabulary=tokens, ragged=True)
    vectorizer = make_vectorizer(config.vectorizer, ragged=True)
    started = time.time()
    if config.data.vocab_sample:
        train_texts = train_texts.take(config.data.vocab_sample)
    vectorizer.adapt(texts_only(train_texts))
    size = vectorizer.vocabulary_size()
    log.info("vocabulary adapted on the training part: %d tokens in %.1f s", size, time.time() - started)
    if size <= 2:
        raise DataError("the training texts hold no tokens; expected non-empty texts")
    return vectorizer
