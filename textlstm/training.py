"""`train`: from a data source to a complete model directory, epoch by epoch, with
checkpoints that `train --resume` continues from exactly."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import itertools
import json
import logging
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import keras
import numpy as np

from textlstm import artifacts
from textlstm.checkpoints import (
    Checkpoint,
    abandon_run_dir,
    begin_run_dir,
    discard_old_run,
    load_checkpoint,
    remove_checkpoint,
    replaced_runs,
    save_checkpoint,
    write_model_dir,
)
from textlstm.config import Config, ModelConfig, TrainingConfig, saved_config
from textlstm.distribution import (
    Cluster,
    connect,
    discard_worker_dir,
    dtype_policy,
    lost_peers,
    mixed_precision_policy,
    patch_keras_for_workers,
    read_tf_config,
    worker_dir,
)
from textlstm.embeddings import apply_pretrained_embeddings, check_embeddings_file
from textlstm.errors import (
    ConfigError,
    DataError,
    DistributedError,
    InputError,
    ModelDirError,
    TextlstmError,
    TrainingError,
    describe,
)
from textlstm.evaluation import predict_batches, predict_members, score_dataset, score_probabilities
from textlstm.file_sources import ReadOptions
from textlstm.finetune import (
    extend_vocabulary,
    finetune_config,
    freeze_layers,
    holdout_mismatch,
    label_plan,
    load_base,
    transfer_weights,
)
from textlstm.inspection import summarize_parts
from textlstm.layers import MemberMix, NgramBag
from textlstm.metrics import (
    DEFAULT_THRESHOLD,
    Mix,
    best_mix,
    cross_entropy,
    headline,
    mean_mix,
    mixed,
    tuned_multilabel_metrics,
)
from textlstm.model import (
    CLASSIFIER_NAME,
    EMBEDDING_NAME,
    HEAD_NAME,
    MEMBER_HEADS,
    MEMBER_NAMES,
    build_classifier,
    build_text_model,
    member_heads,
    member_weight_slots,
    training_model,
)
from textlstm.optimization import (
    PositiveWeightedBinaryCrossentropy,
    class_weights,
    current_learning_rate,
    make_optimizer,
)
from textlstm.pipeline import (
    batched,
    bucket_boundaries,
    count_batches,
    id_dataset,
    labelled_examples,
    source_errors,
    text_dataset,
    texts_only,
)
from textlstm.presets import LONG_DOCUMENTS
from textlstm.pretraining import pretrain_embedding
from textlstm.refit import finish_refit, refit_plan, refit_stage
from textlstm.report import plot_learning_curves
from textlstm.runtime import library_versions, seed_everything, tensorflow
from textlstm.source_spec import data_spec, open_source, reading_options
from textlstm.sources import FileShard, Source
from textlstm.vectorizer import make_vectorizer, read_vocabulary

tf = tensorflow()
log = logging.getLogger(__name__)
# Batch size of the pass that counts a naive Bayes bag's ratios: its [batch, grams, labels]
# counts are 160 MB for 100 labels of 400-token texts with bigrams, and up to 3.75 times that
# for a batch of texts padded to the default 1,500 (batches are bucketed by the LSTM's 400).
_ADAPT_BATCH = 128


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
    # training.refit: the epochs, mix and held-out figures the refit reused (the manifest's
    # "refit"); None for a run without one.
    refit: dict[str, Any] | None = None

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
            **({"refit": self.refit} if self.refit is not None else {}),
        }


class _OneEpoch(keras.callbacks.Callback):
    """Ends `fit` after one epoch: the trainer runs the epochs itself (validation,
    checkpoints, early stopping), while Keras' progress bar still counts the whole run."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.model.stop_training = True


class _RawWeights(keras.callbacks.Callback):
    """With Polyak averaging (training.ema_momentum), `fit` ends by writing the average
    over the weights (`Optimizer.finalize_variable_values`): this keeps the weights of the
    epoch's last step, from which the next epoch trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.values = [v.numpy() for v in self.model.trainable_variables]

    def restore(self, model: keras.Model) -> None:
        """Put the kept weights back into ``model`` (the one `fit` trained)."""
        if self.values is not None:
            for variable, value in zip(model.trainable_variables, self.values, strict=True):
                variable.assign(value)


@dataclass
class _Run:
    """Everything the epoch loop needs, built the same way for a new and a resumed run."""

    run_dir: Path
    request: dict[str, Any]
    config: Config
    label_names: list[str]
    multi_label: bool
    vocabulary: list[str]
    train_ids: Any
    val_batches: Any
    classifier: keras.Model
    text_model: keras.Model
    loss: Any
    # Peak learning rate (training's, or fine-tuning's with --init-from).
    learning_rate: float
    steps_per_epoch: int
    weights: np.ndarray | None
    cluster: Cluster
    # Examples per batch of the training pipeline: training.batch_size * replicas, or
    # with `by_file` * this worker's replicas.
    batch_size: int
    # Multi-worker, sharded by file: each worker reads and batches its own files.
    by_file: bool
    # What `fit` trains: the classifier, or with member paths (model.ngram_join=average)
    # a model sharing its layers that also outputs each member's probabilities.
    trainer: keras.Model | None = None
    # Set by `_set_phase`: the optimizer of the current freeze phase, and that phase.
    optimizer: keras.optimizers.Optimizer | None = None
    frozen: bool | None = None
    # With member paths: (labels, each member's probabilities) on the validation hold-out,
    # from the latest epoch's validation and from the best epoch's, so that tuning the mix
    # needs no pass of its own (not checkpointed: a resumed run makes the pass).
    latest_members: tuple[np.ndarray, list[np.ndarray]] | None = None
    best_members: tuple[np.ndarray, list[np.ndarray]] | None = None

    @property
    def members(self) -> int:
        """Member outputs beside the classifier's own (0 for a single network)."""
        return len(self.trainer.outputs) - 1 if self.trainer is not self.classifier else 0


def train(
    data: str | None = None,
    output_dir: str | Path | None = None,
    config: Config | None = None,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    verbose: int | str = "auto",
    read_options: ReadOptions | None = None,
    resume: str | Path | None = None,
) -> TrainResult:
    """Train a classifier on the training split of ``data`` and write a model directory,
    or continue an interrupted run with ``resume``.

    Args:
        data: a source spec (see `textlstm.sources`), e.g. ``tfds:imdb_reviews`` or a
            path to an aclImdb folder or archive.
        output_dir: the run directory. It is created once the data has been read and
            checked; after every epoch it holds ``model-best/``, ``model-last/`` and the
            ``checkpoint/`` that ``resume`` continues from; the finished model is written
            at its top level, manifest last.
        config: the configuration (defaults when None).
        overwrite: replace an existing run in ``output_dir`` (kept aside until the new
            run finishes, and put back if it fails).
        command: the command line to record in the manifest.
        verbose: Keras ``fit`` verbosity (progress goes to stderr).
        read_options: columns, format and label rules for file sources (CSV, JSONL ...).
        resume: an interrupted run directory to continue exactly where its last completed
            epoch left it (same data, config and seed; ``data``, ``output_dir`` and
            ``config`` must then be None).

    With ``training.refit`` (by default whenever the run has a hold-out) the finished run
    trains once more on the whole training split for the epochs and with the mix its
    hold-out chose; that model is written at the top level of ``output_dir`` and the
    held-out run's in ``output_dir/heldout/``.

    Under ``training.strategy=multi-worker`` every worker calls this with the same
    arguments (and its own ``TF_CONFIG``): the chief plans and writes the run, the others
    train in step in a temporary sibling of ``output_dir`` that is removed at the end.
    The strategy is created first, so this must be the process's first TensorFlow work.

    Returns:
        A TrainResult with validation metrics, history and timings.
    """
    if resume is not None:
        if data is not None or output_dir is not None or config is not None or overwrite:
            raise InputError(
                "--resume continues a run with its own data, config and directory; "
                "expected no --data, --output-dir, --config, --set or --overwrite beside it"
            )
        return _resume_any(Path(resume), command, verbose)
    if data is None or output_dir is None:
        raise InputError(
            f"train needs a data source and an output directory; {describe('--data and --output-dir, or --resume DIR', None)}"
        )
    started = time.time()
    data = data_spec(data)
    output_dir = artifacts.path_argument(output_dir, "output_dir", "a directory to create")
    read_options = reading_options(read_options)
    if config is not None and not isinstance(config, Config):
        raise InputError(
            f"bad config; {describe('a textlstm.Config (textlstm.load_config(path) reads a file)', type(config).__name__)}"
        )
    config = (config or Config()).validate()
    # Before any other TensorFlow call: a multi-worker strategy configures the runtime.
    cluster = connect(config.training.strategy, config.training.worker_timeout)
    if not cluster.is_chief:
        with _peers_watched(cluster):
            return _join_as_worker(cluster, data, output_dir, verbose, started)
    with _plan_for(cluster), _peers_watched(cluster):
        result = _train_new(cluster, data, output_dir, config, overwrite, command, verbose, read_options, started)
        if not config.refits():
            return result
        return _refit(cluster, result.output_dir, command, verbose, started)


def _refit(
    cluster: Cluster, run_dir: Path, command: Sequence[str] | None, verbose: int | str, started: float
) -> TrainResult:
    """training.refit: train the finished held-out run's config again on the whole
    training split in ``run_dir/refit/`` for the epochs it kept, then make that model the
    run's (`textlstm.refit.finish_refit`)."""
    plan = refit_plan(run_dir)
    config = saved_config(plan["config"])
    manifest = artifacts.read_json(run_dir / artifacts.MANIFEST_FILE)
    request = manifest["data"]
    # The hold-out joins the training part: nothing is left to validate on, so nothing is
    # chosen; the thresholds come from the plan, and TensorBoard logs stay the held-out run's.
    training = dataclasses.replace(config.training, refit=False, tune_thresholds=False, tensorboard=False)
    whole = dataclasses.replace(config, data=dataclasses.replace(config.data, val_fraction=0.0), training=training)
    log.info(
        "refit: training again on the whole training split, hold-out included, for %d epoch(s)%s",
        plan["epochs"],
        ""
        if plan["member_epochs"] is None
        else " ("
        + ", ".join(
            f"{MEMBER_NAMES[h]} from epoch {plan['member_epochs'][h]}"
            for h in MEMBER_HEADS
            if h in plan["member_epochs"]
        )
        + ")",
    )
    # A refit killed before its first epoch was checkpointed leaves a folder that cannot be
    # resumed: it starts again.
    shutil.rmtree(run_dir / artifacts.REFIT_RUN_DIR, ignore_errors=True)
    try:
        _train_new(
            cluster,
            request.get("source_resolved") or request["source"],
            run_dir / artifacts.REFIT_RUN_DIR,
            whole,
            True,
            command,
            verbose,
            ReadOptions.from_dict(request["read_options"]),
            time.time(),
            refit=plan,
        )
    except BaseException:
        log.warning(
            "the refit stopped; %s holds the held-out run's model meanwhile, and `textlstm train --resume %s` "
            "runs the refit",
            run_dir,
            run_dir,
        )
        raise
    return _refit_done(run_dir, started)


def _warn_base_holdout(base: Any, config: Config, fingerprint: str, data: str) -> None:
    """Warn when fine-tuning on the base model's own data would validate on texts the base
    trained on: the base was refit on all of it, or this hold-out is drawn otherwise."""
    if base.config.refits() and base.data_fingerprint == fingerprint:
        log.warning(
            "%s is what the base model trained on, and the base was refit (training.refit) on all of it, "
            "hold-out included: this run validates on texts the base trained on",
            data,
        )
        return
    mismatch = holdout_mismatch(base, config, fingerprint)
    if mismatch:
        # Its hold-out must be drawn as the base's was, or the run validates (stops early,
        # mixes) on texts the base trained on.
        log.warning(
            "%s is what the base model trained on, with its hold-out drawn by %s: this run's "
            "hold-out holds texts the base trained on; set those values (--set) to validate on what it held out",
            data,
            mismatch,
        )


def _refit_done(run_dir: Path, started: float) -> TrainResult:
    """Move the refit's model up and describe the finished run."""
    finish_refit(run_dir)
    info = artifacts.read_run_info(run_dir)
    manifest = info.manifest
    log.info("refit model written to %s (the held-out run's in %s)", run_dir, run_dir / artifacts.HELDOUT_DIR)
    return TrainResult(
        output_dir=run_dir,
        metrics=info.metrics,
        history=artifacts.read_json(run_dir / artifacts.HISTORY_FILE),
        best_epoch=manifest["best_epoch"],
        epochs_run=manifest["epochs_run"],
        train_examples=manifest["data"]["train_examples"],
        val_examples=manifest["data"]["val_examples"],
        seconds=time.time() - started,
        refit=manifest.get("refit"),
    )


def _resume_any(run_dir: Path, command: Sequence[str] | None, verbose: int | str) -> TrainResult:
    """--resume: continue an interrupted run, or the refit that follows a finished
    held-out run (training.refit), wherever it stopped."""
    started = time.time()
    if run_dir.name == artifacts.REFIT_RUN_DIR and artifacts.is_run_dir(run_dir.parent):
        # The refit's own folder, as a stopped refit's warning names it: resume the run.
        run_dir = run_dir.parent
    stage = refit_stage(run_dir)
    if stage == "training":
        _resume(run_dir / artifacts.REFIT_RUN_DIR, command, verbose)
        return _refit_done(run_dir, started)
    if stage == "trained":
        return _refit_done(run_dir, started)
    if stage is None and _refit_pending(run_dir):
        # Stopped before the refit's first epoch was checkpointed: start it again.
        return _refit_resumed(run_dir, command, verbose, started)
    result = _resume(run_dir, command, verbose)
    return _refit_resumed(run_dir, command, verbose, started) if _refit_pending(run_dir) else result


def _refit_pending(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished held-out run whose config asks for a refit."""
    return artifacts.is_run_dir(run_dir) and artifacts.read_run_info(run_dir).config.refits()


def _refit_resumed(run_dir: Path, command: Sequence[str] | None, verbose: int | str, started: float) -> TrainResult:
    # The held-out run's strategy (never multi-worker: refits() is false for it).
    training = artifacts.read_run_info(run_dir).config.training
    cluster = connect(training.strategy, training.worker_timeout)
    return _refit(cluster, run_dir, command, verbose, started)


def _train_new(
    cluster: Cluster,
    data: str,
    output_dir: str | Path,
    config: Config,
    overwrite: bool,
    command: Sequence[str] | None,
    verbose: int | str,
    read_options: ReadOptions | None,
    started: float,
    refit: dict[str, Any] | None = None,
) -> TrainResult:
    """The chief's part of a new run: plan it, share the plan, train. ``refit`` is the
    held-out run's plan (`textlstm.refit.refit_plan`) when this run is its refit."""
    output_dir = artifacts.prepare_output_dir(output_dir, overwrite)
    base = load_base(config.finetune.init_from) if config.finetune.init_from else None
    if base is not None:
        config = finetune_config(config, base)
    check_embeddings_file(config.model)  # a wrong vectors file fails before the data is read
    if config.vectorizer.vocab_file:  # and so does a bad vocabulary file (read again later)
        read_vocabulary(config.vectorizer.vocab_file, config.vectorizer.max_tokens)
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
    fingerprint = source.fingerprint()
    finetune: dict[str, Any] = {}
    if base is not None:
        if refit is None:  # a refit has no hold-out to warn about: its held-out run warned
            _warn_base_holdout(base, config, fingerprint, data)
        label_names, finetune = label_plan(base, label_names, multi_label)
        finetune["init_from"] = str(base.path)
        log.info(
            "fine-tuning %s: labels %s, %d shared with the base model; %s",
            base.path,
            finetune["new_labels"],
            len(finetune["shared_labels"]),
            "its output layer continues"
            if finetune["head"] == "continued"
            else "a new output layer is trained on its encoder",
        )
    # The saved config records the decision, so evaluate/predict/export read targets the same way.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, multi_label=multi_label))
    _check_monitor(config, multi_label)
    window = config.model.lstm_length
    if window is not None and config.lstm_steps() > window:
        # lstm_length windows the LSTM only beside a bag (saved models are rebuilt that way;
        # Config.lstm_steps holds the rule), so a plain BiLSTM under the defaults reads 1,500
        # tokens: slower than its user may expect.
        log.info(
            "model.lstm_length=%d has no effect without the n-gram bag (model.ngram_order=0): the LSTM reads "
            "up to vectorizer.max_length=%d tokens",
            window,
            config.vectorizer.max_length,
        )
    seed = config.training.seed
    seed_everything(seed)

    with source_errors():
        # The `data inspect` summary of both parts, in one read; its counts also size the
        # learning-rate schedule and the class weights. Under a base model it also gives
        # the new corpus's out-of-vocabulary rate.
        parts = labelled_examples(
            source,
            split,
            label_names,
            parts=("train", "val"),
            seed=seed,
            val_fraction=config.data.val_fraction,
            limit=config.data.limit,
            multi_label=multi_label,
            holdout_by=config.data.holdout_by,
        )
        summaries = summarize_parts(
            parts, config.vectorizer, ("train", "val"), vocabulary=base.vocabulary if base is not None else None
        )
        log.info("training data: %s", json.dumps(summaries["train"], ensure_ascii=False))
        if summaries["val"]["examples"] or (refit is None and config.data.val_fraction > 0):
            # (An empty hold-out that was asked for is an error, raised below.)
            log.info("validation data: %s", json.dumps(summaries["val"], ensure_ascii=False))
        else:
            # A summary of zero examples says nothing; say why there is none.
            log.info(
                "validation data: none (%s)",
                "the refit trains on the whole split, hold-out included"
                if refit is not None
                else f"data.val_fraction={config.data.val_fraction}: no epoch or mix is chosen on held-out data",
            )
        if base is None:
            _suggest_long_documents(config, summaries["train"])
        skipped = _skipped_rows(source, split)
        if skipped:
            log.info("%d rows of %s have an empty text and were skipped (--strict makes them an error)", skipped, data)
        n_train, n_val = summaries["train"]["examples"], summaries["val"]["examples"]
        absent = [name for name in label_names if n_train and not summaries["train"]["labels"].get(name)]
        if absent:
            log.warning(
                "no training example has the label(s) %s (data.limit and the validation hold-out left none); "
                "the model will hardly ever predict them",
                absent,
            )
        if n_train == 0:
            raise DataError(f"no training examples left in split {split!r} of {data}; expected at least one")
        if config.data.val_fraction > 0 and n_val == 0:
            raise DataError(
                f"the validation hold-out of {data} is empty; expected data.val_fraction={config.data.val_fraction} "
                "to select at least one example (raise it or use more data)"
            )
        train_texts = _text_part(source, config, label_names, multi_label, "train")
        if base is None:
            vocabulary = _fit_vectorizer(config, train_texts).get_vocabulary()
        else:
            finetune["oov_token_rate"] = summaries["train"]["oov_token_rate"]
            log.info(
                "the new corpus has %.2f %% out-of-vocabulary tokens under the base vocabulary",
                100 * finetune["oov_token_rate"],
            )
            vocabulary = base.vocabulary
            if config.finetune.extend_vocab:
                vocabulary = extend_vocabulary(vocabulary, train_texts, config.vectorizer, config.finetune.extend_vocab)
                # The saved config must admit the grown vocabulary.
                vectorizer_config = dataclasses.replace(config.vectorizer, max_tokens=len(vocabulary))
                config = dataclasses.replace(config, vectorizer=vectorizer_config)
            finetune["vocabulary"] = {
                "base_tokens": len(base.vocabulary),
                "tokens": len(vocabulary),
                # Where tokens appended to the base vocabulary start in the LSTM's capped one.
                "lstm_offset": None if base.vocabulary_cap is None else base.vocabulary_cap[1],
            }
    weights = class_weights(
        config.training.class_weight, label_names, summaries["train"]["labels"], n_train, multi_label
    )
    request = {
        "data": data,
        # Resuming from another working directory must find the same data.
        "data_resolved": _resolved(data),
        "split": split,
        "read_options": read_options.to_dict(),
        "fingerprint": fingerprint,
        "bytes": _data_bytes(data),
        "config": config.to_dict(),
        "label_names": label_names,
        "multi_label": multi_label,
        "command": list(command) if command is not None else None,
        "train_examples": n_train,
        "val_examples": n_val,
        "skipped_empty_rows": skipped,
        "summaries": summaries,
        "finetune": finetune,
        "class_weights": None if weights is None else dict(zip(label_names, weights.tolist(), strict=True)),
        "distribution": _distribution(cluster, config.training, source.file_count(split)),
    }
    if refit is not None:
        request["refit"] = refit
    if weights is not None:
        log.info("class weights: %s", json.dumps(request["class_weights"]))
    run_dir = begin_run_dir(output_dir, overwrite)
    try:
        # A run that --overwrite replaces is deleted when this one finishes, even after a resume.
        request["replaces"] = replaced_runs(run_dir.aside)
        _share_plan(cluster, request, vocabulary, None)
        run = _assemble(output_dir, request, source, vocabulary, cluster)
        # Before a base model's weights: they replace the counted ratios of the rows they keep.
        counted = _adapt_bag(run)
        if counted is not None:
            request["ngram_ratios"] = counted
        # Pretrained vectors first: a base model's rows then win over them, and only rows
        # new to its vocabulary take the file's vectors.
        request["embeddings"] = apply_pretrained_embeddings(run.classifier, vocabulary, run.config.model)
        if base is not None:
            transfer_weights(base, run.classifier, continue_head=finetune["head"] == "continued")
            if counted is not None and finetune["head"] == "continued":
                # The base's ratios replaced the counted ones, but for tokens --extend-vocab added.
                request["ngram_ratios"]["base_rows_kept"] = True
            if request["embeddings"] is not None:
                request["embeddings"]["base_rows_kept"] = True
                log.info(
                    "the base model's embedding rows replace the vectors: only tokens --extend-vocab added keep them"
                )
        if run.config.pretrain.epochs:
            policy = request.get("distribution", {}).get("dtype_policy")
            with source_errors(), run.cluster.scope(), dtype_policy(policy):
                # Not checkpointed: a run stopped here is removed, as one stopped in epoch 1.
                request["pretraining"] = pretrain_embedding(
                    run.classifier, run.train_ids, run.config, run.steps_per_epoch, verbose, batch_size=run.batch_size
                )
        state = _initial_state(run)
        _set_phase(run, state, _frozen_at(run, 0))
        _sync_variables(run)
        # From here on a killed or interrupted run can be resumed, even inside epoch 1.
        _save_state(run, state)
        return _train_epochs(run, state, verbose, started)
    except BaseException:
        abandon_run_dir(run_dir)
        raise


def _resume(run_dir: Path, command: Sequence[str] | None, verbose: int | str) -> TrainResult:
    """Continue an interrupted run from its last completed epoch."""
    started = time.time()
    # A run started without multi-worker resumes alone, whatever TF_CONFIG says.
    task = read_tf_config() if _checkpoint_strategy(run_dir) in (None, "multi-worker") else None
    if task is not None and not task.is_chief:
        # A worker joins the chief's resume; the run directory is the chief's alone.
        cluster = connect("multi-worker", TrainingConfig.worker_timeout, task)
        with _peers_watched(cluster):
            return _join_as_worker(cluster, None, run_dir, verbose, started)
    checkpoint = load_checkpoint(run_dir)
    config = saved_config(checkpoint.request["config"], origin=str(run_dir / artifacts.CHECKPOINT_DIR))
    cluster = connect(config.training.strategy, config.training.worker_timeout)
    with _plan_for(cluster), _peers_watched(cluster):
        return _resume_chief(cluster, run_dir, checkpoint, config, command, verbose, started)


def _resume_chief(
    cluster: Cluster,
    run_dir: Path,
    checkpoint: Checkpoint,
    config: Config,
    command: Sequence[str] | None,
    verbose: int | str,
    started: float,
) -> TrainResult:
    request = checkpoint.request
    read_options = ReadOptions.from_dict(request["read_options"])
    source = open_source(request.get("data_resolved") or request["data"], read_options)
    fingerprint = source.fingerprint()
    if fingerprint != request["fingerprint"]:
        raise DataError(
            f"cannot resume {run_dir}: the data {request['data']} changed since the run started; "
            f"{describe(request['fingerprint'], fingerprint)}"
        )
    replicas = request.get("distribution", {}).get("replicas", 1)
    if replicas != cluster.replicas:
        raise DistributedError(
            f"cannot resume {run_dir} on {cluster.replicas} replica(s): its batches and schedule are "
            f"those of {replicas}; expected the same number of GPUs or workers as when it started"
        )
    seed_everything(config.training.seed)
    state = checkpoint.state
    log.info("resuming %s after epoch %d of %d", run_dir, state["epoch"], config.training.epochs)
    if command is not None:
        state.setdefault("resumed", []).append({"after_epoch": state["epoch"], "command": list(command)})
    _share_plan(cluster, request, checkpoint.vocabulary, state)
    run = _assemble(run_dir, request, source, checkpoint.vocabulary, cluster)
    # The optimizer of the phase the checkpoint was written in; the loop switches phase
    # (freezing) itself when the next epoch needs it.
    _set_phase(run, state, state["frozen"])
    optimizer = run.optimizer
    if optimizer is None:  # pragma: no cover - _set_phase always makes one
        raise RuntimeError("no optimizer after _set_phase")
    expected = len(run.classifier.weights) + len(optimizer.variables)
    if len(checkpoint.variables) != expected or len(checkpoint.best) != len(run.classifier.weights):
        raise ModelDirError(
            f"cannot resume {run_dir}: its checkpoint holds {len(checkpoint.variables)} variables; "
            f"expected {expected} for this model (was it written by another textlstm version?)"
        )
    for variable, value in zip([*run.classifier.weights, *optimizer.variables], checkpoint.variables, strict=True):
        if tuple(variable.shape) != tuple(value.shape):
            # The model is rebuilt from the checkpoint's request.json and vocab.txt.
            raise ModelDirError(
                f"cannot resume {run_dir}: its checkpoint's {variable.path} has shape {tuple(value.shape)}, "
                f"the model built from {artifacts.CHECKPOINT_DIR}/{artifacts.VOCAB_FILE} "
                f"({len(checkpoint.vocabulary) - 2} tokens) and {artifacts.CHECKPOINT_REQUEST_FILE} "
                f"{tuple(variable.shape)}; expected the checkpoint as textlstm wrote it"
            )
        variable.assign(value)
    state["best_weights"] = checkpoint.best
    _sync_variables(run)
    return _train_epochs(run, state, verbose, started)


def _checkpoint_strategy(run_dir: Path) -> str | None:
    """training.strategy of the interrupted run in ``run_dir``, or None when this machine
    holds no readable checkpoint of it (a worker's)."""
    folder = artifacts.checkpoint_folder(run_dir) if run_dir.is_dir() else None
    try:
        request = artifacts.read_json(folder / artifacts.CHECKPOINT_REQUEST_FILE) if folder else None
    except ModelDirError:
        return None
    return request["config"].get("training", {}).get("strategy", "auto") if isinstance(request, dict) else None


@contextlib.contextmanager
def _plan_for(cluster: Cluster) -> Iterator[None]:
    """Until the chief shares its plan the workers wait for it; a failure on the way is
    shared instead, so that every worker stops with the chief's error."""
    try:
        yield
    except BaseException as exc:
        if cluster.workers > 1 and not cluster.shared:
            message = str(exc) if isinstance(exc, TextlstmError) else f"{type(exc).__name__}: {exc}"
            message = (message.splitlines() or [""])[0]
            with contextlib.suppress(Exception):
                cluster.share({"error": message})
        raise


def _share_plan(cluster: Cluster, request: dict[str, Any], vocabulary: list[str], state: dict[str, Any] | None) -> None:
    """The chief's half of `_join_as_worker`: the run as planned (and, resuming, the loop's
    state). Collectives must come in the same order on every worker, so this precedes the
    model, whose variables the strategy broadcasts as they are created."""
    if cluster.workers == 1:
        return
    saved = None if state is None else {k: v for k, v in state.items() if k != "best_weights"}
    cluster.share({"request": request, "vocabulary": vocabulary, "state": saved})
    cluster.shared = True
    checks = cluster.gather(1)
    failed = [rank for rank, ok in enumerate(checks) if not ok]
    if failed:
        raise DistributedError(
            f"worker(s) {failed} could not read the data {request['data']} or hold another copy of it (see their "
            "error); expected the same data on every machine"
        )


def _sync_variables(run: _Run) -> None:
    """Give every worker the chief's weights and optimizer state (what was loaded or
    transferred after the variables were created lives on the chief only)."""
    if run.optimizer is None:  # pragma: no cover - _set_phase always makes one
        raise RuntimeError("no optimizer after _set_phase")
    run.cluster.sync_variables([*run.classifier.variables, *run.optimizer.variables])


def _join_as_worker(
    cluster: Cluster, data: str | None, output_dir: str | Path | None, verbose: int | str, started: float
) -> TrainResult:
    """A non-chief worker of a multi-worker run: take the chief's plan and variables,
    train in step with it in a temporary copy of the run directory, then remove that."""
    if output_dir is None:
        raise InputError(f"a worker needs the run's --output-dir; {describe('--output-dir DIR', None)}")
    plan = cluster.share(None)
    if "error" in plan:
        raise DistributedError(f"the chief stopped before training: {plan['error']}")
    request, vocabulary, state = plan["request"], plan["vocabulary"], plan["state"]
    # The replaced run (--overwrite) is the chief's to delete once its run is written.
    request["replaces"] = None
    read_options = ReadOptions.from_dict(request["read_options"])
    try:
        source = open_source(data or request.get("data_resolved") or request["data"], read_options)
        fingerprint = source.fingerprint()
        if fingerprint != request["fingerprint"]:
            raise DataError(
                f"{cluster.task.name if cluster.task else 'worker'}: its copy of the data differs from the chief's; "
                f"{describe(request['fingerprint'], fingerprint)}"
            )
    except TextlstmError:
        cluster.gather(0)  # tell the chief, which waits for every worker's data check
        raise
    cluster.gather(1)
    seed_everything(saved_config(request["config"]).training.seed)
    folder = worker_dir(output_dir, cluster.task) if cluster.task is not None else Path(output_dir)
    discard_worker_dir(folder)
    folder.mkdir(parents=True)
    try:
        run = _assemble(folder, request, source, vocabulary, cluster)
        if state is None:  # a new run
            state = _initial_state(run)
            _set_phase(run, state, _frozen_at(run, 0))
        else:
            _set_phase(run, state, state["frozen"])
        _sync_variables(run)
        state["best_weights"] = [w.numpy() for w in run.classifier.weights]
        result = _train_epochs(run, state, verbose, started)
        result.output_dir = Path(output_dir)
        return result
    finally:
        discard_worker_dir(folder)


def _text_part(source: Any, config: Config, label_names: list[str], multi_label: bool, part: str) -> Any:
    return text_dataset(
        source,
        config.data.train_split,
        label_names,
        part=part,  # type: ignore[arg-type]
        seed=config.training.seed,
        val_fraction=config.data.val_fraction,
        limit=config.data.limit,
        multi_label=multi_label,
        holdout_by=config.data.holdout_by,
    )


def _assemble(run_dir: Path, request: dict[str, Any], source: Any, vocabulary: list[str], cluster: Cluster) -> _Run:
    """Datasets, classifier and optimizer of a run, from its request and vocabulary."""
    config = saved_config(request["config"])
    label_names, multi_label = request["label_names"], request["multi_label"]
    max_length = config.vectorizer.max_length
    by_file = request.get("distribution", {}).get("sharding") == "file"
    local_replicas = cluster.replicas // cluster.workers
    n_train, n_val = request["train_examples"], request["val_examples"]
    most = max(1, n_train // cluster.replicas)
    if config.training.batch_size > most:
        # The training stream repeats, so a larger batch would hold copies of the same
        # examples: training.batch_size=1000000 on 181 examples reached 23 GiB and was killed.
        # (Sharded by file, a replica's batch is drawn from its worker's files, about as many.)
        log.info(
            "training.batch_size=%d is more than the %d training examples%s: batches of %d",
            config.training.batch_size,
            n_train,
            f" for {cluster.replicas} replicas" if cluster.replicas > 1 else "",
            most,
        )
        # Recorded in the request, so that a resumed run and the saved config keep it.
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, batch_size=most))
        request["config"] = config.to_dict()
        if "distribution" in request:
            request["distribution"]["global_batch_size"] = most * cluster.replicas
    # Sharded by file, a worker batches its own files one replica's batch at a time;
    # otherwise batches are global and tf.distribute splits them.
    batch_size = config.training.batch_size * (1 if by_file else cluster.replicas)
    vectorizer = make_vectorizer(config.vectorizer, vocabulary=vocabulary, ragged=True)
    ids = {}
    with source_errors():
        for part in ("train", "val"):
            shard = by_file and part == "train"
            part_source = FileShard(source, cluster.rank, cluster.workers) if shard else source
            texts = _text_part(part_source, config, label_names, multi_label, part)
            ids[part] = id_dataset(texts, vectorizer, max_length, config.vectorizer.keep)
            if config.data.cache:
                ids[part] = ids[part].cache()  # filled during the first epoch
    if by_file and not config.training.steps_per_epoch and "batches_per_epoch" not in request:
        # Each worker's files make a different number of batches; all take as many steps
        # as the smallest share gives (the others' extra batches are left out that epoch,
        # a different few each epoch).
        with source_errors():
            counts = cluster.gather(count_batches(ids["train"], batch_size, config.lstm_steps()))
        if min(counts) < local_replicas:
            raise DistributedError(
                f"sharded by file, the workers' training files make {counts} batches; expected at least "
                f"{local_replicas} on every worker (use more data, fewer workers or a smaller training.batch_size)"
            )
        request["batches_per_epoch"] = min(counts) // local_replicas
        log.info("batches of each worker's files: %s; %d steps an epoch", counts, request["batches_per_epoch"])
    elif not config.training.steps_per_epoch and "batches_per_epoch" not in request:
        # The schedule needs the real number of batches an epoch (warm-up length, decay
        # to 0). With the cache on, counting them is the pass that fills the cache; without
        # it an upper bound saves reading the data once more (bucketing leaves at most one
        # partial batch per length bucket).
        with source_errors():
            request["batches_per_epoch"] = (
                count_batches(ids["train"], batch_size, config.lstm_steps())
                if config.data.cache
                else n_train // batch_size + len(bucket_boundaries(config.lstm_steps())) + 1
            )
    minimum = config.training.min_epoch_steps
    if not (by_file or config.training.steps_per_epoch) and request["batches_per_epoch"] < minimum:
        log.info(
            "one pass over the training part is %d batches, fewer than training.min_epoch_steps=%d: "
            "an epoch is %d batches (about %.1f passes)",
            request["batches_per_epoch"],
            minimum,
            minimum,
            minimum / request["batches_per_epoch"],
        )
        # Recorded in the request, so that a resumed run and the saved config keep it.
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, steps_per_epoch=minimum))
        request["config"] = config.to_dict()
    weights = (
        None if request["class_weights"] is None else np.array(list(request["class_weights"].values()), np.float32)
    )

    lstm_offset = ((request.get("finetune") or {}).get("vocabulary") or {}).get("lstm_offset")

    def build() -> keras.Model:
        return build_classifier(
            config.model,
            vocab_size=len(vocabulary),
            num_labels=len(label_names),
            multi_label=multi_label,
            base_vocab_size=lstm_offset,
            keep=config.vectorizer.keep,
        )

    with cluster.scope(), dtype_policy(request.get("distribution", {}).get("dtype_policy")):
        classifier = build()
        trainer = training_model(classifier)
    patch_keras_for_workers(trainer, cluster)
    if multi_label:
        loss: Any = "binary_crossentropy" if weights is None else PositiveWeightedBinaryCrossentropy(weights)
    else:
        loss = "sparse_categorical_crossentropy"
    finetuning = config.finetune.init_from is not None
    # Saved models wrap an uncompiled twin of the classifier that takes its weights before
    # each save: a compiled one would drag its optimizer state into every model.keras (two
    # thirds of the file; the checkpoint keeps it once).
    text_model = build_text_model(make_vectorizer(config.vectorizer, vocabulary=vocabulary), build(), config)
    return _Run(
        run_dir=run_dir,
        request=request,
        config=config,
        label_names=label_names,
        multi_label=multi_label,
        vocabulary=vocabulary,
        train_ids=ids["train"],
        val_batches=batched(ids["val"], config.training.batch_size, config.lstm_steps()) if n_val else None,
        classifier=classifier,
        trainer=trainer,
        text_model=text_model,
        loss=loss,
        learning_rate=config.finetune.learning_rate if finetuning else config.training.learning_rate,
        steps_per_epoch=config.training.steps_per_epoch or request["batches_per_epoch"],
        weights=weights,
        cluster=cluster,
        batch_size=batch_size,
        by_file=by_file,
    )


def _adapt_bag(run: _Run) -> dict[str, Any] | None:
    """Count a naive Bayes n-gram bag's ratios on the training part (one pass over it;
    sharded by file, the chief's files, whose ratios every worker then takes); None for
    any other model."""
    # One at most: the bag itself (model.ngram_weighting) or the second bag beside it.
    bag = next((layer for layer in run.classifier.layers if isinstance(layer, NgramBag) and layer.naive_bayes), None)
    if bag is None:
        return None
    started = time.time()
    with source_errors():
        counts = bag.adapt(batched(run.train_ids, _ADAPT_BATCH, run.config.lstm_steps()), run.multi_label)
    log.info(
        "%s: naive Bayes ratios from %d training texts (%d of %d rows seen) in %.1f s",
        bag.name,
        counts["texts"],
        counts["grams_seen"],
        counts["rows"],
        time.time() - started,
    )
    return counts


def _initial_state(run: _Run) -> dict[str, Any]:
    return {
        "epoch": 0,
        "history": {},
        "best": None,
        "best_epoch": 0,
        "best_metrics": {},
        "wait": 0,
        "plateau_wait": 0,
        "learning_rate": run.learning_rate,
        # The freeze phase of the saved optimizer, the step it started at, and all steps.
        "frozen": None,
        "phase_start_step": 0,
        "steps": 0,
        "seconds": 0.0,
        "best_weights": [w.numpy() for w in run.classifier.weights],
    }


def _frozen_at(run: _Run, epoch: int) -> bool:
    """Whether the fine-tuning freeze applies in ``epoch``."""
    finetune = run.config.finetune
    return finetune.freeze != "none" and (finetune.unfreeze_after is None or epoch < finetune.unfreeze_after)


def _set_phase(run: _Run, state: dict[str, Any], frozen: bool) -> None:
    """Freeze or unfreeze the fine-tuning layers and, when that changes, start a new
    optimizer for the trainable weights and compile.

    A phase's optimizer counts its steps from 0, so that Adam's bias correction matches
    the fresh moments of layers that were frozen until now (with the old counter their
    first updates would be several times the learning rate); its schedule is shifted by
    the steps already taken, so the learning rate carries on where it was.
    """
    if run.frozen == frozen:
        return
    new_head = (run.request.get("finetune") or {}).get("head") == "new"
    names = freeze_layers(run.classifier, run.config.finetune.freeze, frozen, new_head=new_head)
    if run.config.model.freeze_embeddings:
        run.classifier.get_layer(EMBEDDING_NAME).trainable = False
    if state["frozen"] != frozen:  # a phase begins (not the saved one being restored)
        state.update(frozen=frozen, phase_start_step=state["steps"])
        if names:
            log.info("%s %s", "freezing" if frozen else "unfreezing", ", ".join(names))
    training = run.config.training
    with run.cluster.scope():
        run.optimizer = make_optimizer(
            training, run.learning_rate, run.steps_per_epoch, start_step=state["phase_start_step"]
        )
        if training.lr_schedule != "cosine":
            run.optimizer.learning_rate = state["learning_rate"]
        # The trainer's order, the one `fit` hands `finalize_variable_values`, which pairs
        # variables with their averages by position (the classifier's is the same order).
        run.optimizer.build(run.trainer.trainable_variables)
        # Fresh metric objects: a metric carried across compiles reports a wrong first epoch.
        metrics: list[Any] = (
            [keras.metrics.F1Score(average="micro", threshold=DEFAULT_THRESHOLD, name="micro_f1")]
            if run.multi_label
            else ["accuracy"]
        )
        if run.members:
            # The average is scored, not trained: each member learns from its own loss.
            # Keras' "loss" is then the members' sum; the average's own cross-entropy is
            # tracked so that the logged loss is the one val_loss measures.
            average_loss = (
                keras.metrics.BinaryCrossentropy(name=_AVERAGE_LOSS)
                if run.multi_label
                else keras.metrics.SparseCategoricalCrossentropy(name=_AVERAGE_LOSS)
            )
            run.trainer.compile(
                optimizer=run.optimizer,
                loss=[None, *[run.loss] * run.members],
                metrics=[[*metrics, average_loss], *[[] for _ in range(run.members)]],
            )
        else:
            run.classifier.compile(optimizer=run.optimizer, loss=run.loss, metrics=metrics)
        _build_compiled_state(run, state["epoch"])
    run.frozen = frozen


def _build_compiled_state(run: _Run, epoch: int) -> None:
    """Create the compiled loss trackers and metrics now, eagerly, from one one-token batch.

    Without a distribution strategy Keras creates them while tracing the first training
    step, and a tf.function that creates variables is traced twice. Tracing the step (the
    LSTM's loop and its gradient) takes seconds: sparing the second trace took a tiny test
    run from 16.1 s to 11.0 s. Under a strategy Keras builds them before tracing itself.
    """
    if run.cluster.kind != "default":
        return
    spec = _epoch_batches(run, epoch).element_spec
    # Ones: a valid token id ([UNK]), a valid class and a unit weight for every part.
    batch = tf.nest.map_structure(lambda s: tf.ones([1 if d is None else d for d in s.shape], s.dtype), spec)
    x, y, weight = keras.utils.unpack_x_y_sample_weight(batch)
    predicted = run.trainer(x, training=False)
    run.trainer.compute_loss(x=x, y=y, y_pred=predicted, sample_weight=weight, training=False)
    run.trainer.compute_metrics(x, y, predicted, sample_weight=weight)
    run.trainer.reset_metrics()


def _epoch_batches(run: _Run, epoch: int) -> Any:
    """The training batches of ``epoch``, in an order fixed by the run's seed and the epoch,
    so that a resumed run sees the same batches as an uninterrupted one.

    One pass an epoch: the training part shuffled with a seed of its own for each epoch.
    With ``steps_per_epoch``: one endless stream of batches, each pass over the data
    reshuffled, which epoch e enters ``e * steps_per_epoch`` batches in; the batches are
    the ones a single stream across all epochs would give, so no example waiting in a
    length bucket at an epoch's end is lost. Entering the stream reads (and skips) the
    batches before it: on corpora read from disk each epoch starts a little later.
    """
    training, data = run.config.training, run.config.data
    ids = run.train_ids
    if training.steps_per_epoch:
        # Shuffle before repeat, so the buffer never holds more than one pass.
        ids = ids.shuffle(data.shuffle_buffer, seed=training.seed, reshuffle_each_iteration=True).repeat()
    else:
        ids = ids.shuffle(data.shuffle_buffer, seed=training.seed * 1_000 + epoch, reshuffle_each_iteration=False)
    if run.weights is not None and not run.multi_label:
        table = tf.constant(run.weights)
        ids = ids.map(lambda x, y: (x, y, tf.gather(table, y)))
    batches = batched(ids, run.batch_size, run.config.lstm_steps())
    if run.members:
        outputs = 1 + run.members
        batches = batches.map(lambda x, y, *w: (x, (y,) * outputs, *[(v,) * outputs for v in w]))
    if run.by_file:
        return _worker_batches(run, batches, epoch)
    if run.cluster.workers > 1:
        # A source read as one stream (a file, an archive, TFDS through its iterator) has
        # no files to split: every worker reads it and keeps its replicas' share of each
        # global batch, so the steps match those of one process with that global batch.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        batches = batches.with_options(options)
    if training.steps_per_epoch:
        return batches.skip(epoch * training.steps_per_epoch)
    if data.cache:
        # The count is exact (see `count_batches`). Known, it gives Keras' progress bar its
        # total, and spares the extra step counter increment Keras makes when a dataset of
        # unknown length runs out, which would shift the schedule by a step every epoch.
        return batches.apply(tf.data.experimental.assert_cardinality(run.steps_per_epoch))
    return batches


def _worker_batches(run: _Run, batches: Any, epoch: int) -> Any:
    """A worker's own batches (sharded by file) as the strategy's distributed dataset:
    the same number of steps on every worker, or the collectives of the longer ones
    would wait for ever."""
    steps = run.config.training.steps_per_epoch or run.steps_per_epoch
    local = run.cluster.replicas // run.cluster.workers
    if run.config.training.steps_per_epoch:
        batches = batches.skip(epoch * steps * local)
    batches = batches.take(steps * local)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    batches = batches.with_options(options)
    return run.cluster.strategy.distribute_datasets_from_function(lambda context: batches)


def _saveable(run: _Run, weights: Sequence[np.ndarray] | None = None) -> keras.Model:
    """The string-in model, holding the classifier's current weights, or ``weights`` in
    their order (and the classifier's frozen layers)."""
    twin = run.text_model.get_layer(CLASSIFIER_NAME)
    twin.set_weights(run.classifier.get_weights() if weights is None else list(weights))
    for layer in twin.layers:
        layer.trainable = run.classifier.get_layer(layer.name).trainable
    return run.text_model


def _reseed_dropout(classifier: keras.Model, seed: int, epoch: int) -> None:
    # Dropout draws from per-layer seed states that Keras does not save; fixing them per
    # epoch makes the masks of an epoch the same whether or not the run was resumed.
    # The values are drawn from a generator seeded by (seed, epoch): arithmetic ones such as
    # seed + epoch + layer index gave neighbouring seeds whose masks hampered learning (a
    # tiny run stuck at chance with them trained to 100 % with drawn ones).
    generators = [v for v in classifier.variables if v.path.endswith("seed_generator_state")]
    draws = np.random.default_rng([seed, epoch]).integers(0, 2**31 - 1, size=len(generators))
    for state, value in zip(generators, draws, strict=True):
        state.assign(np.array([value, 0], dtype=state.dtype))


def _train_epochs(run: _Run, state: dict[str, Any], verbose: int | str, started: float) -> TrainResult:
    """Run the remaining epochs of ``run``; after each one write model-best/ (when
    better), model-last/ and the checkpoint; then write the finished model directory."""
    training = run.config.training
    history: dict[str, list[float]] = state["history"]
    writers = _tensorboard_writers(run) if training.tensorboard else None
    # A refit stops at the held-out run's last kept epoch, on the same schedule.
    last = run.request["refit"]["epochs"] if "refit" in run.request else training.epochs
    while state["epoch"] < last and not state.get("stopped_early"):
        epoch = state["epoch"]
        _set_phase(run, state, _frozen_at(run, epoch))
        _reseed_dropout(run.classifier, training.seed, epoch)
        tick = time.time()
        raw = _RawWeights()
        with source_errors(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # Keras prints its progress bar to stdout; stdout is kept for results. The
            # first epoch over a stream of unknown length ends with a harmless "input ran
            # out of data" warning.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit = run.trainer.fit(
                _epoch_batches(run, epoch),
                initial_epoch=epoch,
                epochs=training.epochs,
                steps_per_epoch=training.steps_per_epoch or (run.steps_per_epoch if run.by_file else None),
                callbacks=[_OneEpoch(), *([raw] if training.ema_momentum > 0 else [])],
                shuffle=False,  # the pipeline shuffles, with the seed
                verbose=verbose,
            )
            metrics = _validation_metrics(run) if run.val_batches is not None and run.cluster.is_chief else {}
            selection = _member_selection(run, state) if metrics else None
            # The workers decide on the chief's figures: best epoch, early stop, plateau.
            metrics, selection = run.cluster.share([metrics, selection])
        _check_finite(epoch + 1, {**{k: v[-1] for k, v in fit.history.items()}, **metrics})
        for key, values in fit.history.items():
            if run.members:
                # Keras prefixes the scored output's metrics with its name, and its "loss"
                # is the members' summed objective.
                key = key.removeprefix(f"{run.classifier.output_names[0]}_")
                key = {"loss": "objective", _AVERAGE_LOSS: "loss"}.get(key, key)
            history.setdefault(key, []).append(float(values[-1]))
        for key in _VAL_KEYS:
            if key in metrics:
                history.setdefault(f"val_{key}", []).append(float(metrics[key]))
        for name, loss in zip(member_heads(run.classifier), selection["losses"] if selection else (), strict=False):
            # A run resumed from a checkpoint written before these were logged leaves them
            # out rather than start them at a later epoch than the other figures.
            if len(history.get(f"val_{name}_loss", [])) == len(history["val_loss"]) - 1:
                history.setdefault(f"val_{name}_loss", []).append(loss)
        history.setdefault("learning_rate", []).append(current_learning_rate(run.optimizer))
        state["steps"] = state["phase_start_step"] + int(run.optimizer.iterations.numpy())
        state["epoch"] = epoch + 1
        state["seconds"] += time.time() - tick
        improved = _update_best(run, state, metrics, selection)
        _log_epoch(epoch + 1, training.epochs, history, _epoch_note(run, epoch + 1, improved))
        if writers is not None:
            _write_scalars(writers, epoch + 1, history)
        stop = _early_stop(run, state, metrics)
        files = _model_files(run, state, history, metrics, epoch=epoch + 1)
        if improved and "member_best_epoch" in state:
            # Members kept from different epochs: model-best/ is their assembly, not this
            # epoch's weights.
            best_files = _model_files(run, state, history, state["best_metrics"], epoch=state["best_epoch"])
            assembly = _saveable(run, state["best_weights"])
            head = assembly.get_layer(CLASSIFIER_NAME).get_layer(HEAD_NAME)
            if isinstance(head, MemberMix):
                head.mix.assign(state["best_mix"])
            write_model_dir(run.run_dir / artifacts.BEST_DIR, assembly, best_files, run.vocabulary)
        saveable = _saveable(run)  # one weight copy serves both folders
        if improved and "member_best_epoch" not in state:
            write_model_dir(run.run_dir / artifacts.BEST_DIR, saveable, files, run.vocabulary)
        write_model_dir(run.run_dir / artifacts.LAST_DIR, saveable, files, run.vocabulary)
        state["stopped_early"] = stop
        # Validated, kept and saved: the average (now in the weights); checkpointed, to
        # train on from: the raw weights, beside the average in the optimizer's variables.
        raw.restore(run.trainer)
        _save_state(run, state)
        if stop:
            break
    return _finish(run, state, started)


def _skipped_rows(source: Source, split: str) -> int | None:
    """Rows of ``split`` of a file source skipped for an empty text (counted by its label
    scan); None for a source that does not count them (class folders, TFDS)."""
    skipped = getattr(source, "skipped", None)
    return skipped(split) if skipped is not None else None


def _check_finite(epoch: int, figures: dict[str, Any]) -> None:
    """Stop a run whose loss or metrics stopped being finite numbers (diverged): its
    weights are no longer usable, and NaN in its JSON files is not JSON."""
    bad = sorted(
        key for key, value in figures.items() if isinstance(value, (int, float, np.floating)) and not np.isfinite(value)
    )
    if bad:
        shown = "loss" if "loss" in bad else bad[0]
        raise TrainingError(
            f"training diverged in epoch {epoch} ({shown} = {figures[shown]}); expected a finite loss "
            "(lower training.learning_rate, or set training.clipnorm)"
        )


@contextlib.contextmanager
def _peers_watched(cluster: Cluster) -> Iterator[None]:
    """Turn the error of a collective whose peer died (in `fit`, or while variables are
    created and broadcast) into a one-line DistributedError."""
    if cluster.workers == 1:
        yield
        return
    try:
        yield
    except tf.errors.OpError as exc:
        raise lost_peers(exc) from None


def _distribution(cluster: Cluster, training: TrainingConfig, files: int) -> dict[str, Any]:
    """How a run is spread over devices, for the manifest and for resuming. Workers shard
    the training data by file when the source has a file for each of them at least, and
    by data otherwise."""
    sharding = None
    if cluster.workers > 1:
        sharding = "file" if files >= cluster.workers else "data"
        log.info(
            "sharding by %s: %s",
            sharding,
            f"each of the {cluster.workers} workers reads its own share of the {files} files"
            if sharding == "file"
            else "every worker reads the stream and keeps its share of each global batch",
        )
    return {
        "strategy": cluster.kind,
        "replicas": cluster.replicas,
        "workers": cluster.workers,
        "global_batch_size": training.batch_size * cluster.replicas,
        "dtype_policy": mixed_precision_policy(training.mixed_precision),
        "sharding": sharding,
    }


# With member outputs: the training cross-entropy of the mixed probabilities.
_AVERAGE_LOSS = "average_loss"
_VAL_KEYS = ("loss", "accuracy", "macro_f1", "micro_f1", "subset_accuracy", "hamming_loss")


def _monitor_value(monitor: str, metrics: dict[str, Any]) -> float:
    return float(metrics[monitor.removeprefix("val_")])


def _validation_metrics(run: _Run) -> dict[str, Any]:
    """Score the classifier on the validation hold-out. With member paths one pass of the
    trainer gives each member's probabilities, kept for tuning the mix, and the
    classifier's own are mixed from them as its head mixes them."""
    if not run.members:
        return score_dataset(run.classifier, run.val_batches, run.label_names, run.multi_label)
    labels, members = predict_members(run.trainer, run.val_batches)
    run.latest_members = labels, members
    return score_probabilities(labels, mixed(_mix_weight(run), *members), run.label_names, run.multi_label)


def _member_selection(run: _Run, state: dict[str, Any]) -> dict[str, Any] | None:
    """On the chief, for an ensemble: each member's validation loss this epoch and, under
    training.member_epochs=own, which members' new weights to keep (``take``): this epoch's
    members together, or either one beside the other's kept weights, whichever mix scores
    best on ``monitor`` (at its tuned weight under model.ngram_mix=tuned), and whether that
    beats the kept ensemble. Sets ``run.best_members`` to the kept members' validation
    probabilities. None for a single network."""
    if not run.members or run.latest_members is None:
        return None
    labels, members = run.latest_members
    selection: dict[str, Any] = {"losses": [cross_entropy(labels, member, run.multi_label) for member in members]}
    training = run.config.training
    if training.member_epochs != "own":
        return selection
    kept = run.best_members
    if kept is None and state.get("member_best_epoch"):
        # A resumed run: the kept members' probabilities come from a pass with their weights.
        kept = run.best_members = _predict_with(run, state["best_weights"])
    # Every member's new weights together, then (with kept ones) each other choice of
    # which members take theirs: for two, (new, new), (new, kept), (kept, new).
    candidates = [take for take in itertools.product((True, False), repeat=len(members)) if any(take)]
    if kept is None:
        candidates = candidates[:1]
    best: tuple[float, tuple[bool, ...], list[np.ndarray], Mix, dict[str, Any]] | None = None
    for take in candidates:
        chosen = [
            new if fresh else old for new, old, fresh in zip(members, kept[1] if kept else members, take, strict=True)
        ]
        weight, scores = _mix_scores(run, labels, chosen)
        value = _monitor_value(training.monitor, scores)
        if best is None or _better(training.monitor, value, best[0]):
            best = value, take, chosen, weight, scores
    value, take, chosen, weight, scores = best
    improved = state["best"] is None or _better(training.monitor, value, state["best"])
    selection.update(take=list(take), improved=improved)
    if improved:
        run.best_members = labels, chosen
        # model-best/ mixes the pair at this weight, and these are its figures.
        selection.update(best=value, mix=weight, best_metrics=scores)
    return selection


def _mix_scores(run: _Run, labels: np.ndarray, members: list[np.ndarray]) -> tuple[Mix, dict[str, Any]]:
    """The members' mix (the one tuning would give it under model.ngram_mix=tuned, else
    the head's own) and the mix's validation figures."""
    if isinstance(run.classifier.get_layer(HEAD_NAME), MemberMix):
        weight, _ = best_mix(labels, members, run.multi_label)
    else:
        weight = _mix_weight(run)
    return weight, score_probabilities(labels, mixed(weight, *members), run.label_names, run.multi_label)


def _better(monitor: str, value: float, best: float) -> bool:
    return value < best if monitor == "val_loss" else value > best


def _mix_weight(run: _Run) -> Mix:
    # MemberMix, or for model.ngram_mix=mean (two members only) Keras' Average: (a + b) / 2
    # equals 0.5 a + 0.5 b exactly in floating point, halving being exact.
    head = run.classifier.get_layer(HEAD_NAME)
    if not isinstance(head, MemberMix):
        return 0.5
    values = head.mix.numpy()
    return float(values) if values.ndim == 0 else tuple(float(v) for v in values)


def _predict_with(run: _Run, weights: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The members' validation probabilities with ``weights`` in place of the current ones,
    which are put back afterwards."""
    current = [variable.numpy() for variable in run.classifier.weights]
    for variable, value in zip(run.classifier.weights, weights, strict=True):
        variable.assign(value)
    try:
        return predict_members(run.trainer, run.val_batches)
    finally:
        for variable, value in zip(run.classifier.weights, current, strict=True):
            variable.assign(value)


def _update_member_bests(run: _Run, state: dict[str, Any], selection: dict[str, Any]) -> bool:
    """training.member_epochs=own: when the selection beats the kept ensemble, keep the
    new weights of the members it takes beside the others' kept ones."""
    if not selection["improved"]:
        state["wait"] += 1
        state["plateau_wait"] += 1
        return False
    epochs = state.get("member_best_epoch") or [0] * len(selection["take"])
    kept = list(state["best_weights"])
    for member, slots in enumerate(member_weight_slots(run.classifier)):
        if selection["take"][member]:
            epochs[member] = state["epoch"]
            for index in slots:
                kept[index] = run.classifier.weights[index].numpy()
    state.update(
        best=selection["best"],
        best_epoch=max(epochs),
        best_metrics=selection["best_metrics"],
        best_weights=kept,
        best_mix=selection["mix"],
        member_best_epoch=epochs,
        wait=0,
        plateau_wait=0,
    )
    return True


def _update_refit_members(run: _Run, state: dict[str, Any], member_epochs: dict[str, int]) -> bool:
    """A refit of an ensemble: keep each path's weights of the epoch the held-out run
    kept it from (``member_epochs``: head name -> epoch)."""
    epochs = [member_epochs[head] for head in member_heads(run.classifier)]
    kept = list(state["best_weights"])
    for member, slots in enumerate(member_weight_slots(run.classifier)):
        if epochs[member] == state["epoch"]:
            for index in slots:
                kept[index] = run.classifier.weights[index].numpy()
    state.update(best_epoch=state["epoch"], best_weights=kept, member_best_epoch=epochs)
    if run.request["refit"]["ngram_mix"] is not None:
        state["best_mix"] = _planned_mix(run, run.request["refit"]["ngram_mix"])
    return True


def _planned_mix(run: _Run, ngram_mix: dict[str, Any]) -> Mix:
    """The MemberMix value of a manifest's tuned ``ngram_mix``: the LSTM's share of two
    members, or each member's weight, in the members' order (the manifest's keys are
    sorted, so they are looked up by name)."""
    weights = [float(ngram_mix["weights"][MEMBER_NAMES[head]]) for head in member_heads(run.classifier)]
    return weights[0] if len(weights) == 2 else tuple(weights)


def _update_best(
    run: _Run, state: dict[str, Any], metrics: dict[str, Any], selection: dict[str, Any] | None = None
) -> bool:
    """Record the epoch as the best one when it improves the monitored figure (every
    epoch counts as the best without validation: the last one is kept); under
    training.member_epochs=own, record each member's best epoch instead."""
    if selection and "improved" in selection:
        return _update_member_bests(run, state, selection)
    plan = run.request.get("refit")
    if plan is not None and plan["member_epochs"] is not None:
        return _update_refit_members(run, state, plan["member_epochs"])
    monitor = run.config.training.monitor
    if metrics:
        value = _monitor_value(monitor, metrics)
        best = state["best"]
        better = best is None or _better(monitor, value, best)
    else:
        value, better = None, True
    if better:
        state.update(best=value, best_epoch=state["epoch"], best_metrics=metrics, wait=0, plateau_wait=0)
        state["best_weights"] = [w.numpy() for w in run.classifier.weights]
        run.best_members = run.latest_members
    else:
        state["wait"] += 1
        state["plateau_wait"] += 1
    return better


def _early_stop(run: _Run, state: dict[str, Any], metrics: dict[str, Any]) -> bool:
    """Whether patience is used up; lowers the plateau schedule's rate when due."""
    training = run.config.training
    if not metrics:
        return False
    if training.lr_schedule == "plateau" and state["plateau_wait"] > 0:
        if state["plateau_wait"] >= training.plateau_patience:
            rate = current_learning_rate(run.optimizer) * training.plateau_factor
            run.optimizer.learning_rate = rate
            state["plateau_wait"] = 0
            log.info("%s did not improve: learning rate lowered to %.3g", training.monitor, rate)
    state["learning_rate"] = current_learning_rate(run.optimizer)
    return state["wait"] > 0 and state["wait"] >= training.patience


def _model_files(
    run: _Run,
    state: dict[str, Any],
    history: dict[str, list[float]],
    metrics: dict[str, Any],
    epoch: int,
    thresholds: np.ndarray | None = None,
) -> dict[str, Any]:
    """The JSON files of a model directory holding the classifier's current weights
    (with ``thresholds.json`` for a multi-label model: ``thresholds``, or 0.5 each)."""
    request = run.request
    manifest = {
        "textlstm_run": 1,
        "command": request["command"],
        "data": {
            "source": request["data"],
            "split": request["split"],
            "read_options": request["read_options"],
            "fingerprint": request["fingerprint"],
            "bytes": request.get("bytes"),
            "multi_label": run.multi_label,
            "train_examples": request["train_examples"],
            "val_examples": request["val_examples"],
            "skipped_empty_rows": request.get("skipped_empty_rows"),
            # Where the data was found, so that a refit resumed elsewhere finds it too.
            "source_resolved": request.get("data_resolved"),
            "train_summary": request["summaries"]["train"],
            "val_summary": request["summaries"]["val"],
        },
        "seed": run.config.training.seed,
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "epoch": epoch,
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "train_seconds": round(state["seconds"], 1),
    }
    if request["finetune"]:
        manifest["finetune"] = request["finetune"]
    if request["class_weights"] is not None:
        manifest["class_weights"] = request["class_weights"]
    if "distribution" in request:
        manifest["distribution"] = request["distribution"]
    manifest["embeddings"] = request.get("embeddings")
    if "pretraining" in request:
        manifest["pretraining"] = request["pretraining"]
    if "ngram_ratios" in request:
        manifest["ngram_ratios"] = request["ngram_ratios"]
    if "ngram_mix" in state:
        manifest["ngram_mix"] = state["ngram_mix"]
    if "member_best_epoch" in state:
        manifest["member_best_epochs"] = dict(
            zip(member_heads(run.classifier), state["member_best_epoch"], strict=True)
        )
    if state.get("resumed"):
        manifest["resumed"] = state["resumed"]
    config = run.config.to_dict()
    if "refit" in request:
        plan = request["refit"]
        manifest["refit"] = {
            "epochs": plan["epochs"],
            "heldout_dir": artifacts.HELDOUT_DIR,
            "heldout": {k: v for k, v in plan["heldout"].items() if k != "metrics"},
        }
        # The config that trains the whole run again, held-out run and refit: the refit
        # itself ran it without the hold-out. The vectorizer's is the refit's own: a
        # fine-tuning refit extends the base vocabulary on the hold-out too, and the saved
        # max_tokens must admit what it appended.
        config = {**plan["config"], "vectorizer": config["vectorizer"]}
    files: dict[str, Any] = {}
    if run.multi_label:
        values = [DEFAULT_THRESHOLD] * len(run.label_names) if thresholds is None else thresholds.tolist()
        files[artifacts.THRESHOLDS_FILE] = dict(zip(run.label_names, map(float, values), strict=True))
    return files | {
        artifacts.CONFIG_FILE: config,
        artifacts.LABELS_FILE: run.label_names,
        artifacts.HISTORY_FILE: history,
        artifacts.METRICS_FILE: metrics,
        artifacts.MANIFEST_FILE: manifest,
    }


def _save_state(run: _Run, state: dict[str, Any]) -> None:
    saved = {k: v for k, v in state.items() if k != "best_weights"}
    variables = [v.numpy() for v in [*run.classifier.weights, *run.optimizer.variables]]
    save_checkpoint(
        run.run_dir,
        Checkpoint(
            request=run.request,
            vocabulary=run.vocabulary,
            state=saved,
            variables=variables,
            best=state["best_weights"],
        ),
    )


def _finish(run: _Run, state: dict[str, Any], started: float) -> TrainResult:
    """Put the best weights back and write the finished model directory."""
    history = state["history"]
    for variable, value in zip(run.classifier.weights, state["best_weights"], strict=True):
        variable.assign(value)
    metrics = state["best_metrics"]
    if metrics and isinstance(run.classifier.get_layer(HEAD_NAME), MemberMix):
        metrics = _tune_mix(run, state)
    thresholds = None  # multi-label decision thresholds; None: DEFAULT_THRESHOLD for every label
    plan = run.request.get("refit")
    if plan is not None:
        # The held-out run's choices and figures: a refit has nothing to validate on.
        if plan["ngram_mix"] is not None and isinstance(run.classifier.get_layer(HEAD_NAME), MemberMix):
            run.classifier.get_layer(HEAD_NAME).mix.assign(_planned_mix(run, plan["ngram_mix"]))
            state["ngram_mix"] = plan["ngram_mix"]
        if plan["thresholds"] is not None:
            thresholds = np.array(plan["thresholds"], np.float32)
        metrics = plan["heldout"]["metrics"]
    if metrics and run.config.training.tune_thresholds:
        thresholds, metrics = tuned_multilabel_metrics(
            *predict_batches(run.classifier, run.val_batches), run.label_names
        )
        log.info(
            "thresholds tuned on validation: %s (micro_f1 %.4f at %g)",
            dict(zip(run.label_names, thresholds.tolist(), strict=True)),
            metrics["at_default_threshold"]["micro_f1"],
            DEFAULT_THRESHOLD,
        )
    if metrics and plan is None:
        log.info("validation %s %.4f at best epoch %d", *headline(metrics), state["best_epoch"])
    if "member_best_epoch" in state:
        kept_from = zip(member_heads(run.classifier), state["member_best_epoch"], strict=True)
        log.info("ensemble members kept from epochs: %s", ", ".join(f"{MEMBER_NAMES[h]} {e}" for h, e in kept_from))
    files = _model_files(run, state, history, metrics, epoch=state["best_epoch"], thresholds=thresholds)
    saveable = _saveable(run)
    write_model_dir(run.run_dir / artifacts.BEST_DIR, saveable, files, run.vocabulary)
    if run.cluster.is_chief:
        heads = member_heads(run.classifier)
        kept = dict(zip((f"{name}_loss" for name in heads), state.get("member_best_epoch", ()), strict=False))
        plot_learning_curves(
            history, run.run_dir / artifacts.LEARNING_CURVES_FILE, best_epoch=state["best_epoch"], panel_epochs=kept
        )
    write_model_dir(run.run_dir, saveable, files, run.vocabulary, atomic=False)
    remove_checkpoint(run.run_dir)
    discard_old_run(run.request.get("replaces"))
    log.info("model directory written to %s", run.run_dir)
    return TrainResult(
        output_dir=run.run_dir,
        metrics=metrics,
        history=history,
        best_epoch=state["best_epoch"],
        epochs_run=state["epoch"],
        train_examples=run.request["train_examples"],
        val_examples=run.request["val_examples"],
        seconds=time.time() - started,
    )


def _tune_mix(run: _Run, state: dict[str, Any]) -> dict[str, Any]:
    """Set the ensemble's mix (model.ngram_mix=tuned: the LSTM's share of two members, or
    each member's weight) to the grid point with the lowest validation loss; record it in
    the state for the manifest and return the validation metrics at it."""
    # The best epoch's validation pass gave the members' probabilities (the weights are
    # that epoch's again); a resumed run whose best epoch came before it makes the pass.
    labels, members = run.best_members or predict_members(run.trainer, run.val_batches)
    weight, losses = best_mix(labels, members, run.multi_label)
    at_mean = cross_entropy(labels, mixed(mean_mix(len(members)), *members), run.multi_label)
    # The workers keep the chief's choice, as they do its figures.
    weight, best, at_mean = run.cluster.share([weight, min(losses.values()), at_mean])
    weights = [weight, 1 - weight] if isinstance(weight, (int, float)) else list(weight)
    run.classifier.get_layer(HEAD_NAME).mix.assign(weight)
    names = [MEMBER_NAMES[head] for head in member_heads(run.classifier)]
    state["ngram_mix"] = {
        "lstm_weight": weights[0],
        "weights": dict(zip(names, weights, strict=True)),
        "val_loss": round(best, 6),
        "val_loss_at_mean": round(at_mean, 6),
    }
    log.info(
        "ensemble mix tuned on validation: %s (validation loss %.4f, %.4f at the mean)",
        ", ".join(f"{name} {w:.2f}" for name, w in zip(names, weights, strict=True)),
        best,
        at_mean,
    )
    tuned = score_probabilities(labels, mixed(weight, *members), run.label_names, run.multi_label)
    return run.cluster.share(tuned)


def _epoch_note(run: _Run, epoch: int, improved: bool) -> str:
    """What the epoch's log line adds: " (best so far)" when it improved; in a refit,
    which nothing is chosen in, the paths the plan keeps from this epoch instead."""
    plan = run.request.get("refit")
    if plan is None:
        return " (best so far)" if improved else ""
    if plan["member_epochs"] is None:
        kept = ["the model"] if epoch == plan["epochs"] else []
    else:
        kept = [MEMBER_NAMES[head] for head in member_heads(run.classifier) if plan["member_epochs"][head] == epoch]
    return f" (refit: keeps {', '.join(kept)})" if kept else ""


def _log_epoch(epoch: int, epochs: int, history: dict[str, list[float]], note: str) -> None:
    shown = ", ".join(f"{k}={v[-1]:.4g}" for k, v in sorted(history.items()))
    log.info("epoch %d/%d: %s%s", epoch, epochs, shown, note)


def _tensorboard_writers(run: _Run) -> dict[str, Any]:
    folder = run.run_dir / artifacts.TENSORBOARD_DIR
    return {name: tf.summary.create_file_writer(str(folder / name)) for name in ("train", "validation")}


def _write_scalars(writers: dict[str, Any], step: int, history: dict[str, list[float]]) -> None:
    for key, values in history.items():
        name, writer = (key[4:], writers["validation"]) if key.startswith("val_") else (key, writers["train"])
        with writer.as_default():
            tf.summary.scalar(name, values[-1], step=step)
    for writer in writers.values():
        writer.flush()


def _resolved(data: str) -> str:
    """``data`` with a local path made absolute (TFDS names stay as they are)."""
    prefix = "hf:" if data.startswith("hf:") else ""
    path = Path(data.removeprefix(prefix))
    return prefix + str(path.resolve()) if path.exists() else data


def _data_bytes(data: str) -> int | None:
    """The size on disk of a local data source (a file, or a folder's files), for the
    manifest; None for TFDS and other remote sources."""
    path = Path(data.removeprefix("hf:"))
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def _suggest_long_documents(config: Config, summary: dict[str, Any]) -> None:
    """Log the long-documents preset when a tenth of the training texts run past the LSTM's
    window and the naive Bayes bag's buckets are still the default's: the README's sign
    for it, told where a user sees it."""
    p90 = (summary.get("length_tokens") or {}).get("p90")
    unchanged = config.model.naive_bayes_buckets == ModelConfig().naive_bayes_buckets
    if config.model.has_naive_bayes_bag() and unchanged and p90 is not None and p90 > config.lstm_steps():
        log.info(
            "a tenth of the training texts are longer than the LSTM's %d tokens (p90 %d): "
            "the preset %s may suit them (train --preset, load_config(preset=...); README, Presets)",
            config.lstm_steps(),
            p90,
            LONG_DOCUMENTS.name,
        )


def _check_monitor(config: Config, multi_label: bool) -> None:
    training = config.training
    wrong = "val_accuracy" if multi_label else "val_micro_f1"
    if training.monitor == wrong:
        kind = "multi-label" if multi_label else "single-label"
        allowed = ["val_loss", "val_macro_f1", "val_micro_f1" if multi_label else "val_accuracy"]
        raise ConfigError(
            f"training.monitor {wrong} does not exist for a {kind} model; {describe(f'one of {allowed}', wrong)}"
        )
    if training.lr_schedule == "plateau" and config.data.val_fraction == 0:
        raise ConfigError(
            "training.lr_schedule=plateau watches the validation hold-out; expected data.val_fraction > 0 "
            "or another schedule; received data.val_fraction=0"
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
