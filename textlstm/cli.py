"""The `textlstm` command line: parse options, call one library function, print its result.

Results go to stdout (JSON); logs and progress go to stderr. Nothing here imports
TensorFlow at module level, so ``textlstm --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

import click

from textlstm import __version__
from textlstm.config import INT_LIMIT
from textlstm.errors import UNWRITABLE_ERRNOS, TextlstmError
from textlstm.presets import PRESETS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# Batch sizes and other counts: at least 1, and within int32, where TensorFlow keeps them.
_COUNT = click.IntRange(min=1, max=INT_LIMIT)


_PYBIND_INTERRUPT = "REPLACED BY KeyboardInterrupt"


class _Group(click.Group):
    """Turns textlstm errors (and a denied permission) into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _terminate_as_interrupt():
                return super().invoke(ctx)
        except TextlstmError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except PermissionError as exc:
            # Checking a path the user may not look into raises this before any of ours.
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: permission denied:{where}; expected a path this user may read and write", err=True)
            ctx.exit(2)
        except OSError as exc:
            if exc.errno not in UNWRITABLE_ERRNOS:
                raise
            # A full or read-only disk under train or export: what was there is kept.
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(
                f"error: cannot write{where}: {exc.strerror}; expected a writable location with free space", err=True
            )
            ctx.exit(2)
        except RuntimeError as exc:
            # SIGTERM's KeyboardInterrupt raised while TensorFlow turns a C++ error into a
            # Python one comes out as pybind11's RuntimeError ("... REPLACED BY
            # KeyboardInterrupt"); it is the same stop as Ctrl-C, and ends as one.
            if _PYBIND_INTERRUPT not in str(exc):
                raise
            raise KeyboardInterrupt from exc


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, timeout, docker stop) unwinds like Ctrl-C: a run stopped in its first
    epoch is removed and the run it was replacing put back, a server closes its socket, and
    no temporary file is left. By default SIGTERM ends the process on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _verbosity(func: Callable) -> Callable:
    func = click.option("-v", "--verbose", count=True, help="More log output on stderr (repeatable).")(func)
    return click.option("-q", "--quiet", count=True, help="Less log output on stderr (repeatable).")(func)


def _reading(func: Callable) -> Callable:
    """Options that say how to read a file source; collected into ``read_options``."""
    options = [
        click.option(
            "--format",
            "fmt",
            metavar="FORMAT",
            help="File format: csv, tsv, jsonl, json, parquet, lines or fasttext (default: by extension).",
        ),
        click.option(
            "--text-column",
            "text_columns",
            multiple=True,
            metavar="COL",
            help="Text column name or 0-based index (repeatable; joined with a space). Default: text.",
        ),
        click.option("--label-column", metavar="COL", help="Label column name or 0-based index. Default: label."),
        click.option("--no-header", is_flag=True, help="The CSV/TSV file has no header row."),
        click.option("--delimiter", metavar="CHAR", help="CSV/TSV field separator (default , or tab)."),
        click.option(
            "--encoding",
            default="utf-8",
            show_default=True,
            help="Text encoding of the file or the class folders' documents, e.g. latin-1.",
        ),
        click.option("--label-regex", metavar="REGEX", help="Regular expression whose first group extracts the label."),
        click.option(
            "--label-map", metavar="OLD=NEW,...", help="Rename labels (or class folders), e.g. 1=World,2=Sports."
        ),
        click.option(
            "--label-sep",
            metavar="SEP",
            help="Split the label field into several labels (multi-label), e.g. '|'.",
        ),
        click.option("--strict", is_flag=True, help="An empty text is an error (default: skipped and counted)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_options(kwargs: dict[str, Any], none_if_absent: bool = False) -> Any:
    """Pop the reading options from a command's keyword arguments into a ReadOptions;
    with ``none_if_absent``, None when the command line gave none of them."""
    from textlstm.file_sources import ReadOptions, parse_label_map

    ctx = click.get_current_context()
    names = ("fmt", "text_columns", "label_column", "no_header", "delimiter", "encoding")
    names += ("label_regex", "label_map", "label_sep", "strict")
    if none_if_absent and all(ctx.get_parameter_source(n) is click.core.ParameterSource.DEFAULT for n in names):
        for name in names:
            kwargs.pop(name)
        return None

    return ReadOptions(
        format=kwargs.pop("fmt"),
        text_columns=tuple(kwargs.pop("text_columns")),
        label_column=kwargs.pop("label_column"),
        header=not kwargs.pop("no_header"),
        delimiter=kwargs.pop("delimiter"),
        encoding=kwargs.pop("encoding"),
        label_regex=kwargs.pop("label_regex"),
        label_map=parse_label_map(kwargs.pop("label_map")),
        label_sep=kwargs.pop("label_sep"),
        strict=kwargs.pop("strict"),
    )


def _setup_logging(verbose: int, quiet: int) -> int:
    level = max(logging.DEBUG, logging.INFO - 10 * verbose + 10 * quiet)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("textlstm: %(message)s"))
    logger = logging.getLogger("textlstm")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return level


def _start_tensorflow(level: int) -> None:
    """Import TensorFlow before the command's library does: without -v, its start-up
    notices are dropped. Called after the command's argument checks (`textlstm.preflight`),
    so that a mistyped path fails without the seconds of the import."""
    if level >= logging.INFO:
        from textlstm.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()


def _print_json(data: Any) -> None:
    click.echo(json.dumps(_strict(data), indent=2, ensure_ascii=False, allow_nan=False))


def _strict(data: Any) -> Any:
    """``data`` with NaN and infinities as null: JSON has no such numbers, and jq or a
    strict parser would refuse the whole result."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strict(value) for value in data]
    return data


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="textlstm")
def main() -> None:
    """Train, evaluate, predict with, export and serve LSTM text classifiers.

    \b
    Quick start:
      textlstm train --data ../shared/data/imdb/aclImdb_labeled.tar.gz --output-dir runs/imdb
      textlstm evaluate runs/imdb --data ../shared/data/imdb/aclImdb_labeled.tar.gz
      textlstm predict runs/imdb "an absolute masterpiece"
      textlstm predict "loved it"            (the bundled IMDB model)
      textlstm export runs/imdb --export-dir exports/imdb --verify
      textlstm serve exports/imdb            (TensorFlow Serving's REST API)

    \b
    Data sources (--data):
      tfds:NAME[/CONFIG][:SPLIT]   a TensorFlow Datasets dataset, e.g. tfds:imdb_reviews
      hf:PATH                      a Hugging Face dataset saved with datasets.save_to_disk
      FOLDER                       [ROOT/]SPLIT/LABEL/<one document per file> (aclImdb layout),
                                   or LABEL/<file> without split folders (one split)
      ARCHIVE                      the same inside .tar.gz, .tgz, .tar or .zip, read in place
      FILE                         .csv, .tsv, .jsonl, .json, .parquet (optionally .gz), or any
                                   file with --format (lines: "LABEL text" per line;
                                   fasttext: "__label__LABEL text")

    \b
    Multi-label corpora (labels that are not mutually exclusive) are found by themselves: a
    JSON list of labels, several __label__ tags on a fastText line, or --label-sep for a
    label column such as "sports|politics". They train one sigmoid per label.
    """


@main.command(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm train --data ../shared/data/imdb/aclImdb_labeled.tar.gz --output-dir runs/imdb
  textlstm train --data tfds:imdb_reviews --output-dir runs/imdb --epochs 3 --seed 7
  textlstm train --data ../shared/data/imdb/aclImdb_labeled.tar.gz --output-dir runs/imdb-long \\
      --preset long-documents
  textlstm train --data ../shared/data/sst2/train.tsv --text-column sentence \\
      --label-column label --output-dir runs/sst2
  textlstm train --data ../shared/data/trec/TREC.train --format lines --encoding latin-1 \\
      --label-regex '^([A-Z]+):' --output-dir runs/trec
  textlstm train --data corpus/ --output-dir runs/x --config my.yaml \\
      --set model.lstm_units=32 --set data.limit=2000
  textlstm train --resume runs/imdb                    (continue a killed run)
  textlstm train --init-from runs/imdb --data ../shared/data/sst2/train.tsv \\
      --text-column sentence --label-column label --output-dir runs/sst2-ft --extend-vocab 2000
  textlstm train --data ../shared/data/sms_spam/SMSSpamCollection --format tsv --no-header \\
      --label-column 0 --text-column 1 --class-weight balanced --output-dir runs/sms
  textlstm train --data ../shared/data/sst2/train.tsv --text-column sentence \\
      --output-dir runs/sst2-glove --embeddings glove.6B.100d.txt.gz \\
      --set model.embedding_dim=100 --freeze-embeddings
  textlstm train --data tagged.jsonl --output-dir runs/tags --tune-thresholds
  TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' \\
      textlstm train --data corpus.csv --output-dir runs/x --strategy multi-worker
                                         (on each host, with its own task index)
""",
)
@click.option("--data", "data", metavar="SRC", help="Training data source (see `textlstm --help`). Required.")
@click.option("--output-dir", metavar="DIR", help="Model directory to write. Required.")
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help="Start from a named preset instead of the plain defaults; --config and --set apply on top. "
    + " ".join(f"{p.name}: {p.summary}." for p in PRESETS.values()),
)
@click.option("--config", "config_file", metavar="FILE", help="Config file (.json, .yaml or .toml).")
@click.option(
    "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config key (repeatable)."
)
@click.option("--epochs", type=int, help="Maximum epochs (training.epochs).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Random seed (training.seed).")
@click.option("--vocab", metavar="FILE", help="Fixed vocabulary, one token per line (vectorizer.vocab_file).")
@click.option("--split", metavar="NAME", help="Training split of the source (data.train_split, default train).")
@click.option("--val-split", type=float, metavar="FRACTION", help="Share held out for validation (data.val_fraction).")
@click.option("--limit", type=int, metavar="N", help="Train on at most N examples (data.limit).")
@click.option(
    "--vocab-sample", type=int, metavar="N", help="Adapt the vocabulary on at most N examples (data.vocab_sample)."
)
@click.option(
    "--embeddings",
    metavar="FILE",
    help="Pretrained word vectors (GloVe, word2vec text or fastText .vec, optionally gzipped) that "
    "initialise the Embedding rows of the tokens they cover (model.embeddings_file); their dimension must "
    "be model.embedding_dim.",
)
@click.option(
    "--freeze-embeddings",
    is_flag=True,
    help="Keep the pretrained vectors fixed during training (model.freeze_embeddings).",
)
@click.option(
    "--tune-thresholds",
    is_flag=True,
    default=None,
    help="Multi-label: pick each label's threshold for best F1 on validation (training.tune_thresholds).",
)
@click.option(
    "--refit/--no-refit",
    default=None,
    help="After training, train again on the whole training split, hold-out included, for the epochs "
    "and with the mix chosen on the hold-out (training.refit; up to twice the time). By default a run "
    "refits whenever it has a hold-out; --no-refit keeps the held-out run's model.",
)
@click.option("--overwrite", is_flag=True, help="Replace a run already in --output-dir.")
@click.option(
    "--resume",
    metavar="DIR",
    help="Continue the interrupted run in DIR after its last completed epoch, or its interrupted refit "
    "(no other options).",
)
@click.option("--init-from", metavar="MODEL_DIR", help="Fine-tune: start from this trained run (finetune.init_from).")
@click.option(
    "--extend-vocab",
    type=int,
    metavar="N",
    help="Fine-tune: add up to N new tokens of the new corpus (finetune.extend_vocab).",
)
@click.option(
    "--freeze",
    type=click.Choice(["none", "embedding", "encoder"]),
    help="Fine-tune: freeze these layers at first (finetune.freeze).",
)
@click.option(
    "--unfreeze-after", type=int, metavar="EPOCHS", help="Fine-tune: unfreeze after EPOCHS (finetune.unfreeze_after)."
)
@click.option(
    "--class-weight",
    metavar="none|balanced|FILE",
    help="Weight classes: none, balanced, or a JSON file {label: weight} (training.class_weight).",
)
@click.option("--tensorboard", is_flag=True, default=None, help="Write TensorBoard logs to DIR/tensorboard.")
@click.option(
    "--strategy",
    type=click.Choice(["auto", "default", "mirrored", "multi-worker"]),
    help="tf.distribute strategy (training.strategy): auto is mirrored with several GPUs, else default; "
    "multi-worker reads the cluster from TF_CONFIG. training.batch_size is per replica.",
)
@click.option(
    "--pretrain-epochs",
    type=int,
    metavar="N",
    help="Epochs of language-model pretraining of the embedding on the training texts first (pretrain.epochs).",
)
@click.option(
    "--mixed-precision",
    is_flag=True,
    default=None,
    help="Compute in mixed_float16 on GPUs, mixed_bfloat16 on CPUs (training.mixed_precision).",
)
@_reading
@_verbosity
def train(
    data: str,
    output_dir: str,
    preset: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
    epochs: int | None,
    seed: int | None,
    vocab: str | None,
    split: str | None,
    val_split: float | None,
    limit: int | None,
    vocab_sample: int | None,
    embeddings: str | None,
    freeze_embeddings: bool,
    tune_thresholds: bool | None,
    refit: bool | None,
    overwrite: bool,
    resume: str | None,
    init_from: str | None,
    extend_vocab: int | None,
    freeze: str | None,
    unfreeze_after: int | None,
    class_weight: str | None,
    tensorboard: bool | None,
    strategy: str | None,
    pretrain_epochs: int | None,
    mixed_precision: bool | None,
    verbose: int,
    quiet: int,
    **reading: Any,
) -> None:
    """Train a classifier on the training split of SRC; write a model directory.

    A share of the training split (data.val_fraction, 10 % by default) is held out for
    validation and early stopping; the test split is never used. A single file (CSV,
    TSV, JSONL, parquet, lines) is one split. After every epoch DIR holds model-best/,
    model-last/ and a checkpoint, so a killed run continues with --resume DIR.
    --preset long-documents suits texts of hundreds of words (reviews, articles).
    --embeddings FILE starts the embedding from pretrained word vectors (the coverage of
    the vocabulary is logged and saved in manifest.json). A multi-label model predicts
    each label at probability 0.5, or with --tune-thresholds at the per-label threshold
    that gives that label's best F1 on the validation hold-out (saved in thresholds.json,
    used by evaluate, predict and export). Prints a JSON summary.
    """
    level = _setup_logging(verbose, quiet)
    keras_verbose = 0 if level > logging.INFO else "auto"
    if resume is not None:
        # The run continues with the options it was started with; any other is a mistake.
        ctx = click.get_current_context()
        given = [
            param.opts[0]
            for param in ctx.command.params
            if param.name not in ("resume", "verbose", "quiet")
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise click.UsageError(f"--resume takes no other run options; received {', '.join(given)}")
        _start_tensorflow(level)
        from textlstm.training import train as run

        _print_json(run(resume=resume, command=sys.argv, verbose=keras_verbose).summary())
        return
    if data is None or output_dir is None:
        raise click.UsageError(
            "Missing option '--data' or '--output-dir' (both are required unless --resume is given)."
        )
    read_options = _read_options(reading)
    from textlstm.config import load_config

    shortcuts = {
        "training.epochs": epochs,
        "training.seed": seed,
        "vectorizer.vocab_file": vocab,
        "data.train_split": split,
        "data.val_fraction": val_split,
        "data.limit": limit,
        "data.vocab_sample": vocab_sample,
        "finetune.init_from": init_from,
        "finetune.extend_vocab": extend_vocab,
        "finetune.freeze": freeze,
        "finetune.unfreeze_after": unfreeze_after,
        "training.class_weight": class_weight,
        "training.tensorboard": tensorboard,
        "model.embeddings_file": embeddings,
        # Only a given flag overrides: an absent one leaves a config file's value alone.
        "model.freeze_embeddings": freeze_embeddings or None,
        "training.tune_thresholds": tune_thresholds,
        "training.refit": refit,
        "training.strategy": strategy,
        "training.mixed_precision": mixed_precision,
        "pretrain.epochs": pretrain_epochs,
    }
    extra = [f"{key}={json.dumps(value)}" for key, value in shortcuts.items() if value is not None]
    config = load_config(config_file, [*overrides, *extra], preset=preset)
    from textlstm.preflight import check_train

    check_train(data, output_dir, overwrite, config)
    _start_tensorflow(level)
    from textlstm.training import train as run

    result = run(
        data,
        output_dir,
        config,
        overwrite=overwrite,
        command=sys.argv,
        verbose=keras_verbose,
        read_options=read_options,
    )
    _print_json(result.summary())


@main.command(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm evaluate runs/imdb --data ../shared/data/imdb/aclImdb_labeled.tar.gz
  textlstm evaluate runs/imdb --data tfds:imdb_reviews --split test --output test.json
  textlstm evaluate runs/imdb --data ../shared/data/imdb/aclImdb_labeled.tar.gz --report reports/imdb-test
  textlstm evaluate runs/sst2 --data ../shared/data/sst2/dev.tsv --text-column sentence --label-column label
""",
)
@click.argument("model_dir", metavar="DIR")
@click.option("--data", "data", required=True, metavar="SRC", help="Data source to evaluate on.")
@click.option("--split", metavar="NAME", help="Split to evaluate (default: data.eval_split, i.e. test).")
@click.option("--output", metavar="FILE", help="Also write the JSON report to FILE (a new file).")
@click.option(
    "--report",
    "report_dir",
    metavar="RDIR",
    help="Also write a report folder: metrics.json, report.md and PNG pictures (RDIR must be new or empty).",
)
@click.option("--batch-size", type=_COUNT, default=256, show_default=True, help="Examples per batch.")
@_reading
@_verbosity
def evaluate(
    model_dir: str,
    data: str,
    split: str | None,
    output: str | None,
    report_dir: str | None,
    batch_size: int,
    verbose: int,
    quiet: int,
    **reading: Any,
) -> None:
    """Score the model in DIR on a split of SRC and print a JSON report.

    Without reading options, SRC is read as the run read its training data (the same
    columns, format, encoding and label map) when both are files of one format or both
    class folders; given any reading option, the command line says how to read SRC.

    The report holds accuracy, loss, macro_f1, weighted_f1, expected_calibration_error
    (15 confidence bins), per-label precision/recall/f1/support, the confusion matrix
    (rows: true label, columns: predicted) and the label names, plus roc_auc and
    average_precision for two labels (positive class: the second label); for a
    multi-label model micro_f1, macro_f1, subset_accuracy, hamming_loss,
    expected_calibration_error (over every example-label decision) and per-label scores
    instead, at the model's per-label thresholds (thresholds.json, listed as thresholds).

    \b
    --report RDIR writes a folder (all at once, when complete):
      metrics.json                     the JSON printed here
      report.md                        headline and per-label metrics, confusion matrix,
                                       calibration, the 10 most confident mistakes
      confusion_matrix.png             counts (single-label models)
      confusion_matrix_normalized.png  rows normalised: recall on the diagonal
      reliability.png                  reliability diagram with the ECE
      roc.png, precision_recall.png    two labels: the curves with AUC and AP
      per_label.png                    multi-label: precision/recall/F1 per label
    """
    level = _setup_logging(verbose, quiet)
    read_options = _read_options(reading, none_if_absent=True)
    from textlstm.preflight import check_evaluate

    check_evaluate(model_dir, data, output, report_dir)
    _start_tensorflow(level)
    from textlstm.evaluation import evaluate as run

    report = run(
        model_dir,
        data,
        split=split,
        batch_size=batch_size,
        output=output,
        read_options=read_options,
        report_dir=report_dir,
    )
    _print_json(report)


@main.command(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm predict "loved it"
  textlstm predict runs/imdb "an absolute masterpiece, I loved every minute of it"
  textlstm predict exports/imdb "a dull, lifeless waste of two hours"
  cat reviews.txt | textlstm predict runs/imdb -
  textlstm predict runs/imdb --input reviews.jsonl --id-key id --top-k 2 --output out.jsonl
  textlstm predict exports/imdb --input reviews.csv --text-key review --output-format tsv
""",
)
@click.argument("model", metavar="[MODEL]", required=False)
@click.argument("texts", nargs=-1, metavar="[TEXT... | -]")
@click.option("--input", "input_path", metavar="FILE", help="Read texts from FILE (one per line, JSONL or CSV).")
@click.option(
    "--input-format",
    type=click.Choice(["text", "jsonl", "csv"]),
    help="Format of --input (default: by extension, .jsonl/.csv, else text).",
)
@click.option("--text-key", metavar="KEY", help="JSONL key or CSV column of the text.  [default: text]")
@click.option("--id-key", metavar="KEY", help="JSONL key or CSV column passed through to each result as id.")
@click.option("--top-k", type=int, metavar="K", help="Also list the K most probable labels with their scores.")
@click.option(
    "--threshold",
    type=float,
    metavar="T",
    help="List every label with probability >= T (multi-label default: the model's per-label thresholds).",
)
@click.option("--batch-size", type=_COUNT, default=64, show_default=True, help="Texts per batch.")
@click.option("--output", metavar="FILE", help="Write results to FILE (a new file) instead of stdout.")
@click.option(
    "--output-format", type=click.Choice(["jsonl", "tsv"]), default="jsonl", show_default=True, help="Result format."
)
@_verbosity
def predict(
    model: str | None,
    texts: tuple[str, ...],
    input_path: str | None,
    input_format: str | None,
    text_key: str | None,
    id_key: str | None,
    top_k: int | None,
    threshold: float | None,
    batch_size: int,
    output: str | None,
    output_format: str,
    verbose: int,
    quiet: int,
) -> None:
    """Classify TEXTs, stdin lines (with -) or an --input file with MODEL, a run directory
    or an export (a version folder, or its parent: the highest version). Without MODEL the
    bundled IMDB sentiment model answers (pos/neg), offline.

    Prints one result per text, in input order: JSON with text, label, score and
    probabilities (label name to probability), plus id (--id-key), labels (multi-label
    models: each label at or above its saved threshold, or --threshold T for all) and
    top_k (--top-k); or TSV with --output-format tsv. Results
    are written batch by batch, and stdin lines as soon as they arrive, so predict works
    in a pipe. With --output, a progress bar goes to stderr (on a terminal) and a JSON
    summary (texts, seconds, texts per second) to stdout.
    """
    level = _setup_logging(verbose, quiet)
    from textlstm.preflight import check_predict

    check_predict(model, texts, input_path, output)
    if input_path is None and "-" not in (model, *texts):
        # Texts from the command line: the user waits for the start-up, not for throughput.
        from textlstm.runtime import favour_start_up

        favour_start_up()
    _start_tensorflow(level)
    from textlstm.prediction import predict_command

    options = {
        "input_path": input_path,
        "input_format_name": input_format,
        "text_key": text_key,
        "id_key": id_key,
        "top_k": top_k,
        "threshold": threshold,
        "batch_size": batch_size,
        "output": output,
        "output_format": output_format,
    }
    # A progress line only where someone watches it: a file read into --output, on a terminal.
    progress = input_path is not None and output is not None and level <= logging.INFO and sys.stderr.isatty()
    try:
        summary = predict_command(model, texts, progress=progress, **options)
    except BrokenPipeError:
        # The reader stopped (`| head`): end quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if output is not None:
        _print_json(summary)


@main.command(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm export runs/imdb --export-dir exports/imdb
  textlstm export runs/imdb --export-dir exports/imdb --version 7 --top-k 1
  textlstm export runs/imdb --export-dir exports/imdb --name imdb --verify
  textlstm export runs/imdb --export-dir exports/imdb-tflite --format tflite --verify
""",
)
@click.argument("model_dir", metavar="MODEL")
@click.option(
    "--export-dir", required=True, metavar="DIR", help="Folder of integer version folders (TF Serving's base path)."
)
@click.option("--name", metavar="NAME", help="Model name for TF Serving (default: the export folder's name).")
@click.option(
    "--version",
    "version",
    default="auto",
    show_default=True,
    metavar="auto|N",
    help="Version folder to write (auto: next free integer).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["savedmodel", "tflite"]),
    default="savedmodel",
    show_default=True,
    help="savedmodel: raw text in, for TF Serving. tflite: token ids in, with vocab and a Python tokenizer.",
)
@click.option(
    "--top-k",
    type=int,
    metavar="K",
    help="Labels in the top_k outputs (default: min(5, number of labels); savedmodel).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Check the export against the model (savedmodel: in a TensorFlow-only process, with a curl example).",
)
@_verbosity
def export(
    model_dir: str,
    export_dir: str,
    name: str | None,
    version: str,
    fmt: str,
    top_k: int | None,
    verify: bool,
    verbose: int,
    quiet: int,
) -> None:
    """Export the model in MODEL (a run directory) as a SavedModel for TensorFlow Serving,
    or with --format tflite as a TFLite model.

    The SavedModel's serving_default signature takes raw strings (text: tf.string [None])
    and returns probabilities, label, score, top_k_labels and top_k_scores (and
    labels_multi_hot for a multi-label model, at its per-label thresholds, which
    metadata.json records). The TFLite model takes token_ids (int32
    [1, length], one text per call) and returns probabilities; vocab.txt, tokenizer.json
    and tokenizer.py (standard library only) beside it turn text into those ids, and
    textlstm predict runs it. The version folder appears only when complete. Prints JSON:
    the folder written, format, name, version, top_k and, with --verify, the check's report
    (for a SavedModel, with a curl command for TensorFlow Serving's REST API).
    """
    level = _setup_logging(verbose, quiet)
    from textlstm.preflight import check_export

    check_export(model_dir)
    _start_tensorflow(level)
    from textlstm.exporting import export_any

    result = export_any(model_dir, export_dir, version, fmt=fmt, top_k=top_k, name=name, verify=verify)
    _print_json(result.summary())


@main.command(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm serve exports/imdb
  textlstm serve exports/imdb --name imdb --port 8501
  curl -s -X POST http://127.0.0.1:8501/v1/models/imdb:predict -d '{"instances": ["great film"]}'
""",
)
@click.argument("export_dir", metavar="EXPORT_DIR")
@click.option(
    "--name",
    metavar="NAME",
    help="Model name in the URLs (default: the name the highest version was exported with, "
    "export --name, whose default is the export folder's name).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="TCP port.")
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1, max=2**63 - 1),
    default=1 << 20,
    show_default=True,
    help="Larger requests get 413.",
)
@click.option("--max-batch", type=_COUNT, default=64, show_default=True, help="Texts per model call (at most 1024).")
@click.option(
    "--batch-delay-ms",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="How long the first request of a batch waits for others to join it.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="How often EXPORT_DIR is checked for new version folders.",
)
@_verbosity
def serve(
    export_dir: str,
    name: str | None,
    host: str,
    port: int,
    max_body_bytes: int,
    max_batch: int,
    batch_delay_ms: float,
    poll_seconds: float,
    verbose: int,
    quiet: int,
) -> None:
    """Serve the exports in EXPORT_DIR with TensorFlow Serving's REST API.

    \b
    GET  /v1/models/NAME[/versions/N]            version status
    GET  /v1/models/NAME[/versions/N]/metadata   signature definitions
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} or {"inputs": ...}

    A text is a JSON string, {"text": ...} or {"b64": ...}; bodies may be gzip or deflate
    (Content-Encoding). The highest version answers unless one is named; a new version
    folder is picked up without a restart. Concurrent requests are predicted together in
    batches. Errors are {"error": "..."} with status 400 (bad request), 404 (unknown model,
    version or path), 405 (wrong method), 413 (body over --max-body-bytes, also once
    decompressed), 415 (another Content-Encoding) or 500 (the model failed; the server
    keeps running). Runs until interrupted (Ctrl-C).
    """
    level = _setup_logging(verbose, quiet)
    from textlstm.preflight import check_serve

    check_serve(export_dir, name, max_batch, batch_delay_ms, poll_seconds)
    _start_tensorflow(level)
    from textlstm.serving import serve as run

    try:
        run(
            export_dir,
            name,
            host,
            port,
            max_body_bytes=max_body_bytes,
            max_batch=max_batch,
            batch_delay_ms=batch_delay_ms,
            poll_seconds=poll_seconds,
        )
    except KeyboardInterrupt:
        click.echo("textlstm: stopped", err=True)


@main.group(context_settings=CONTEXT)
def data() -> None:
    """Look at a corpus before training on it."""


@data.command(
    "inspect",
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  textlstm data inspect ../shared/data/imdb/aclImdb_labeled.tar.gz
  textlstm data inspect ../shared/data/imdb/aclImdb_labeled.tar.gz --model runs/imdb --against ../shared/data/imdb/aclImdb_labeled.tar.gz
  textlstm data inspect ../shared/data/sst2/train.tsv --text-column sentence --label-column label
""",
)
@click.argument("source", metavar="SRC")
@click.option("--split", default="train", show_default=True, metavar="NAME", help="Split to inspect.")
@click.option("--model", "model_dir", metavar="DIR", help="Also report the OOV rate and truncation under this model.")
@click.option("--against", metavar="SRC2", help="Count texts that also occur in SRC2 (train/test leakage).")
@click.option("--against-split", default="test", show_default=True, metavar="NAME", help="Split of SRC2.")
@_reading
@_verbosity
def inspect(
    source: str,
    split: str,
    model_dir: str | None,
    against: str | None,
    against_split: str,
    verbose: int,
    quiet: int,
    **reading: Any,
) -> None:
    """Print a JSON summary of a split of SRC: examples, label counts, length percentiles
    in tokens, empty and duplicate texts; with --model the out-of-vocabulary token rate and
    the share of texts truncated; with --against the texts shared with SRC2.
    """
    level = _setup_logging(verbose, quiet)
    read_options = _read_options(reading)
    from textlstm.preflight import check_inspect

    check_inspect(source, model_dir, against)
    _start_tensorflow(level)
    from textlstm.inspection import inspect_data

    _print_json(
        inspect_data(source, split, read_options, model_dir=model_dir, against=against, against_split=against_split)
    )


if __name__ == "__main__":  # pragma: no cover
    main()
