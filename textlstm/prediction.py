"""`predict`: classify raw texts with a model directory or an exported SavedModel."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import numbers
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from textlstm import artifacts
from textlstm.config import saved_config
from textlstm.errors import InputError, ModelDirError, TextlstmError, describe
from textlstm.fast_inference import FastTextModel, batch_bucket, verified
from textlstm.metrics import DEFAULT_THRESHOLD
from textlstm.predict_io import (
    FLUSH,
    Progress,
    RecordWriter,
    check_input_file,
    check_text,
    input_format,
    read_file,
    read_stdin,
)
from textlstm.preflight import check_batch_size
from textlstm.runtime import tensorflow
from textlstm.tflite_runtime import TFLiteModel
from textlstm.vectorizer import read_vocabulary
from textlstm.verification import probe_texts

tf = tensorflow()
log = logging.getLogger(__name__)
# Batches gathered and sorted by length before predicting (output order is kept).
SORT_WINDOW = 16
# A window of at least this many texts goes through the XLA fast path
# (`textlstm.fast_inference`): compiling it takes a second or two, which only pays for
# itself on a large input. Smaller inputs use the model as loaded.
FAST_MIN_TEXTS = 512
# Batches predicted at once on the fast path: one XLA call keeps about 1.8 of the 2 cores
# busy; a second call beside it fills the gaps (measured 1.4x on IMDB).
FAST_THREADS = 2
# The first call on a run directory's model, when its texts are this short (in
# whitespace-separated words), runs eagerly instead of tracing the model into a graph:
# tracing costs about 0.6 s once, an eager step about 6 ms (measured on IMDB's model:
# a 3-word text 0.18 s eager against 0.59 s traced, a 300-word one 1.92 s against 0.60 s).
# A one-text `textlstm predict` makes one such call.
EAGER_MAX_WORDS = 48


class Predictor:
    """Texts in, probabilities out, from either kind of model on disk."""

    def __init__(
        self,
        labels: list[str],
        probabilities_fn: Any,
        kind: str,
        path: Path,
        multi_label: bool = False,
        thresholds: Sequence[float] | None = None,
    ) -> None:
        """``thresholds``: a multi-label model's saved threshold per label (default 0.5 each)."""
        self.labels = labels
        self._fn = probabilities_fn
        self.kind = kind
        self.path = path
        # Multi-label models predict every label whose probability reaches its threshold;
        # --threshold sets one for all labels, and lists those labels for a single-label
        # model too. None: no ``labels`` in the records.
        self.multi_label = multi_label
        self.thresholds: np.ndarray | None = None
        if multi_label:
            self.thresholds = np.asarray(
                thresholds if thresholds is not None else [DEFAULT_THRESHOLD] * len(labels), dtype=np.float64
            )
        # Also rank the k most probable labels in each record (None: leave them out).
        self.top_k: int | None = None
        # Builds the XLA fast path on first need, verified on the given batch bucket (None:
        # the probe texts' own); the factory itself is None for a model with no fast path.
        self.fast_factory: Callable[[int | None], FastTextModel | None] | None = None
        self._fast: FastTextModel | None = None
        self._fast_tried = False
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def configure(self, top_k: int | None = None, threshold: float | None = None) -> Predictor:
        """Set --top-k and --threshold; raise InputError when out of range."""
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or not 1 <= top_k <= len(self.labels):
                raise InputError(
                    f"invalid --top-k; {describe(f'an integer from 1 to {len(self.labels)} (the number of labels)', top_k)}"
                )
            self.top_k = int(top_k)
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 <= threshold <= 1.0:
                raise InputError(f"invalid --threshold; {describe('a probability in [0, 1]', threshold)}")
            self.thresholds = np.full(len(self.labels), float(threshold), dtype=np.float64)
        return self

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, shape [len(texts), len(labels)]."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.asarray(self._fn(texts))

    def fast(self, batch_size: int | None = None) -> FastTextModel | None:
        """The verified XLA fast path, built on first call; None when there is none.
        ``batch_size``: the size of the batches it is built for, so that the check runs
        on the batch bucket they use and compiles it once for both (about 1.3 s each);
        None checks on the probe texts' own bucket."""
        if not self._fast_tried:
            self._fast_tried = True
            if self.fast_factory is not None:
                self._fast = self.fast_factory(batch_bucket(batch_size) if batch_size else None)
        return self._fast

    def submit_batches(
        self, batches: list[list[str]], batch_size: int | None = None
    ) -> list[np.ndarray | concurrent.futures.Future]:
        """`probabilities` of each batch, computed now, or for many texts at once queued
        on the fast path (`FAST_THREADS` batches at a time) as futures. ``batch_size``:
        the size batches have when the input is large (default: the largest of these),
        the one the fast path is built and compiled for."""
        total = sum(len(b) for b in batches)
        fast = self.fast(batch_size or max(len(b) for b in batches)) if total >= FAST_MIN_TEXTS else None
        if fast is None:
            return [self.probabilities(b) for b in batches]
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(FAST_THREADS, thread_name_prefix="textlstm-predict")
        # The check in `fast` already compiled the batch size's program, which the smaller
        # last batch reuses, so every batch can be queued at once.
        return [self._pool.submit(fast.probabilities, b) for b in batches]

    def records(self, texts: list[str], probabilities: np.ndarray) -> list[dict[str, Any]]:
        """One result dict per text: text, label, score, probabilities by label name, and
        for a multi-label model ``labels``, every label at or above its threshold."""
        best = probabilities.argmax(axis=1)
        records = []
        for text, p, b in zip(texts, probabilities, best, strict=False):
            record: dict[str, Any] = {"text": text, "label": self.labels[int(b)], "score": float(p[b])}
            if self.thresholds is not None:
                # float64, like the metrics and the export's labels_multi_hot.
                chosen = p.astype(np.float64) >= self.thresholds
                record["labels"] = [name for name, hit in zip(self.labels, chosen, strict=True) if hit]
            if self.top_k is not None:
                ranked = np.argsort(-p, kind="stable")[: self.top_k]
                record["top_k"] = [{"label": self.labels[int(i)], "score": float(p[i])} for i in ranked]
            record["probabilities"] = {name: float(v) for name, v in zip(self.labels, p, strict=False)}
            records.append(record)
        return records


def _first_call_eager(text_model: Any) -> Callable[[list[str]], np.ndarray]:
    """Probabilities from a string-in Keras model: the first call eagerly when its texts
    are short (`EAGER_MAX_WORDS`), every other one through a traced graph."""
    fn = tf.function(lambda text: text_model(text, training=False), input_signature=[tf.TensorSpec([None], tf.string)])
    calls = 0

    def probabilities(texts: list[str]) -> np.ndarray:
        nonlocal calls
        calls += 1
        tensor = tf.constant(texts, dtype=tf.string)
        if calls == 1 and max(len(t.split()) for t in texts) <= EAGER_MAX_WORDS:
            return text_model(tensor, training=False).numpy()
        return fn(tensor).numpy()

    return probabilities


def load_predictor(model: str | Path) -> Predictor:
    """Open a run directory or an export, SavedModel or TFLite (a version folder, or its
    parent: the highest version; or a ``model.tflite`` file)."""
    kind, path = artifacts.model_kind(model)
    if kind == "run":
        info = artifacts.read_run_info(path)
        text_model = artifacts.load_text_model(path)
        multi_label = bool(info.config.data.multi_label)
        predictor = Predictor(
            info.labels,
            _first_call_eager(text_model),
            "run",
            path,
            multi_label,
            info.thresholds,
        )
        predictor.fast_factory = lambda bucket: verified(
            FastTextModel.from_text_model(text_model),
            predictor.probabilities,
            _probes(path / artifacts.VOCAB_FILE),
            bucket=bucket,
        )
        return predictor
    saved = path
    if kind == "tflite":
        runner = TFLiteModel(saved)
        return Predictor(runner.labels, runner.probabilities, "tflite", saved, runner.multi_label, runner.thresholds)
    labels_path = saved / artifacts.EXPORT_ASSETS_DIR / artifacts.LABELS_FILE
    if not labels_path.is_file():
        raise ModelDirError(
            f"export {saved} is missing {labels_path.relative_to(saved)}; expected an export written by textlstm"
        )
    artifacts.check_saved_model_file(saved)
    try:
        loaded = tf.saved_model.load(str(saved))
        serve = loaded.signatures["serving_default"]
        width = serve.structured_outputs["probabilities"].shape[-1]
    except Exception as exc:  # TensorFlow raises several types for a broken SavedModel
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDirError(f"cannot load the SavedModel {saved}: {first}") from exc
    labels = artifacts.read_labels(labels_path, width)
    metadata_path = saved / artifacts.EXPORT_ASSETS_DIR / artifacts.EXPORT_METADATA_FILE
    metadata = artifacts.read_json(metadata_path) if metadata_path.is_file() else {}
    multi_label = bool(metadata.get("config", {}).get("data", {}).get("multi_label"))
    thresholds = artifacts.export_thresholds(metadata, labels, str(metadata_path))
    predictor = Predictor(
        labels,
        lambda t: serve(text=tf.constant(t, dtype=tf.string))["probabilities"].numpy(),
        "export",
        saved,
        multi_label,
        thresholds,
    )
    predictor.fast_factory = lambda bucket: _export_fast_path(
        predictor, saved, metadata, list(loaded.variables), bucket
    )
    return predictor


def _probes(vocab_path: Path) -> list[str]:
    """The `export --verify` probe texts: edge cases a fast path must get right."""
    try:
        vocabulary = read_vocabulary(vocab_path)
    except TextlstmError:
        vocabulary = []
    return probe_texts(vocabulary)


def _export_fast_path(
    predictor: Predictor, saved: Path, metadata: dict[str, Any], variables: list[Any], bucket: int | None
) -> FastTextModel | None:
    """An export's fast path, rebuilt from its metadata, vocabulary and variables (the
    loaded SavedModel's, in tracking order) and checked against its signature on batches
    padded to ``bucket`` rows (None: the probes' own); None if it cannot be."""
    try:
        config = saved_config(metadata["config"])
    except (KeyError, TextlstmError):
        return None
    probes = _probes(saved / artifacts.EXPORT_ASSETS_DIR / artifacts.VOCAB_FILE)
    # The SavedModel answers the probes in a second thread while this one rebuilds the fast
    # path and compiles its program: TensorFlow releases the GIL while it runs either.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="textlstm-verify") as pool:
        expected = pool.submit(predictor.probabilities, probes)
        fast = FastTextModel.from_export(saved, config, variables, len(predictor.labels))
        return verified(fast, expected, probes, bucket=bucket)


# The id of a text that has none (an input's id may be null, which is passed through).
_NO_ID = object()


def iter_predictions(
    predictor: Predictor, items: Iterable[Any], batch_size: int = 64, sort_window: int = 1
) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of result dicts in input order, one list per flush.

    ``items`` are texts or ``(id, text)`` pairs (the id is passed through as ``id``), with
    `FLUSH` (None) meaning "predict what you have now". Up to ``sort_window`` batches are
    gathered and sorted by length before predicting, so that batches are not mostly
    padding; the output order is restored.
    """
    window: list[tuple[Any, str]] = []
    limit = batch_size * max(1, sort_window)
    count = 0
    # On the fast path one window is predicted in the background while the next one is
    # read and queued, so the cores never wait for the reader; at most two windows are
    # held. Otherwise each window is predicted as soon as it is complete.
    pending: _Window | None = None
    try:
        for item in items:
            if item is FLUSH:
                if pending is not None:
                    yield pending.records()
                    pending = None
                if window:
                    yield _Window(predictor, window, batch_size).records()
                    window = []
                continue
            item = item if isinstance(item, tuple) else (_NO_ID, item)
            count += 1
            if not isinstance(item[1], str):
                raise InputError(f"text {count} is not a string; {describe('a str', type(item[1]).__name__)}")
            check_text(item[1], f"text {count}")
            window.append(item)
            if len(window) >= limit:
                full, window = window, []
                current = _Window(predictor, full, batch_size)
                if pending is not None:
                    yield pending.records()
                    pending = None
                if current.background:
                    pending = current
                else:
                    yield current.records()
    except Exception:
        # A bad line later in the input: what was read before it is still written.
        if pending is not None:
            yield pending.records()
        if window:
            yield _Window(predictor, window, batch_size).records()
        raise
    if pending is not None:
        yield pending.records()
    if window:
        yield _Window(predictor, window, batch_size).records()


class _Window:
    """One sorting window, its batches queued for prediction on creation."""

    def __init__(self, predictor: Predictor, window: list[tuple[Any, str]], batch_size: int) -> None:
        for _, text in window:
            if not isinstance(text, str):
                raise InputError(f"texts must be strings; {describe('str', type(text).__name__)}")
        self.predictor = predictor
        self.window = window
        # Longest first: the fast path compiles the full batch size first and pads the
        # last, shorter batch up to it instead of compiling another size.
        order = sorted(range(len(window)), key=lambda i: -len(window[i][1]))
        self.chosen = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        self.texts = [[window[i][1] for i in chosen] for chosen in self.chosen]
        # A batch size beyond the input would pad its one batch up to that size.
        self.results = predictor.submit_batches(self.texts, min(batch_size, len(window)))
        self.background = any(isinstance(r, concurrent.futures.Future) for r in self.results)

    def records(self) -> list[dict[str, Any]]:
        """The window's result dicts in input order (waiting for its batches)."""
        records: list[dict[str, Any] | None] = [None] * len(self.window)
        for chosen, texts, result in zip(self.chosen, self.texts, self.results, strict=True):
            probabilities = result.result() if isinstance(result, concurrent.futures.Future) else result
            for i, record in zip(chosen, self.predictor.records(texts, probabilities), strict=True):
                if self.window[i][0] is not _NO_ID:
                    record = {"id": self.window[i][0], **record}
                records[i] = record
        return records  # type: ignore[return-value]


def predict_iter(model: str | Path | Predictor, texts: Iterable[str], batch_size: int = 64) -> Iterator[dict[str, Any]]:
    """Classify a stream of texts batch by batch, yielding one result dict per text in
    input order (nothing for an empty stream: the model is then not even loaded); raise
    InputError for an item that is not a string or a ``batch_size`` below 1.
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        # Iterating a string would classify it one character at a time.
        raise InputError(f"texts must be an iterable of strings; {describe('a list of str', type(texts).__name__)}")
    check_batch_size(batch_size)
    return _predicted(model, _strings(texts), batch_size)


def _predicted(model: str | Path | Predictor, texts: Iterator[str], batch_size: int) -> Iterator[dict[str, Any]]:
    first = next(texts, None)
    if first is None:
        return
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    for records in iter_predictions(predictor, itertools.chain([first], texts), batch_size):
        yield from records


def _strings(texts: Iterable[Any]) -> Iterator[str]:
    """The texts, refusing anything that is not a string (None would read as `FLUSH`)."""
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise InputError(f"text {number} is not a string; {describe('a str', type(text).__name__)}")
        yield text


def predict(model: str | Path | Predictor, texts: Iterable[str], batch_size: int = 64) -> list[dict[str, Any]]:
    """Classify texts; return one dict per text with ``text``, ``label``, ``score`` and
    ``probabilities`` (label name -> probability), in input order.
    """
    return list(predict_iter(model, texts, batch_size))


def split_model_argument(
    first: str | None, rest: Sequence[str], reading_input: bool = False
) -> tuple[Path, tuple[str, ...]]:
    """Tell ``textlstm predict [MODEL] [TEXT...]`` apart (see
    `artifacts.resolve_model_argument`), logging when the bundled model answers."""
    model, texts = artifacts.resolve_model_argument(first, rest, reading_input)
    if model == artifacts.BUNDLED_MODEL_DIR and first is not None and model != Path(first).expanduser():
        log.info("no MODEL given: using the bundled IMDB sentiment model (%s)", artifacts.BUNDLED_MODEL_DIR)
    return model, texts


def predict_command(
    model: str | Path | None,
    texts: Sequence[str] = (),
    *,
    input_path: str | Path | None = None,
    input_format_name: str | None = None,
    text_key: str | None = None,
    id_key: str | None = None,
    top_k: int | None = None,
    threshold: float | None = None,
    batch_size: int = 64,
    output: str | Path | None = None,
    output_format: str = "jsonl",
    stdin: IO[bytes] | None = None,
    stdout: IO[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """`textlstm predict`: classify TEXTs, stdin lines (``texts == ("-",)``) or an
    ``input_path`` file (text, jsonl or csv), writing records to ``output`` (written under a
    temporary name, renamed when complete; an existing file is refused) or ``stdout``,
    batch by batch; ``progress`` shows the share of the input file read on stderr.
    Returns a summary: texts, load_seconds (opening the model), seconds
    and texts per second (reading, predicting and writing), output."""
    started = time.time()
    check_batch_size(batch_size)
    if model is None or isinstance(model, str):
        model, texts = split_model_argument(model, texts, reading_input=input_path is not None)
    regular_file = check_input_file(Path(input_path)) if input_path is not None else False
    if input_path is not None and texts:
        raise InputError("give texts as arguments or --input FILE, not both; expected one source of texts")
    fmt = input_format(Path(input_path), input_format_name) if input_path is not None else "text"
    if input_path is None and input_format_name not in (None, "text"):
        raise InputError(f"--input-format {input_format_name} needs --input FILE; expected a file to read")
    if id_key and fmt == "text":
        raise InputError("--id-key needs --input-format jsonl or csv; expected a file with named fields")
    if text_key is not None and fmt == "text":
        # A plain-text input has no fields: the key would be ignored without a word.
        raise InputError("--text-key needs --input-format jsonl or csv; expected a file with named fields")
    meter = Progress(Path(input_path).stat().st_size, sys.stderr) if progress and regular_file else None
    if input_path is not None:
        items: Iterable[Any] = read_file(
            Path(input_path), fmt, "text" if text_key is None else text_key, id_key, meter.update if meter else None
        )
    elif tuple(texts) == ("-",):
        items = read_stdin(stdin if stdin is not None else sys.stdin.buffer)
    elif "-" in texts:
        raise InputError("- (read stdin) cannot be mixed with TEXT arguments; expected either - alone or texts")
    elif texts:
        items = list(texts)
    else:
        raise InputError("no texts to predict; expected TEXT arguments, - for stdin lines, or --input FILE")
    target = artifacts.check_new_file(output, "--output") if output is not None else None
    predictor = (model if isinstance(model, Predictor) else load_predictor(model)).configure(top_k, threshold)
    loaded = time.time()
    try:
        with _output_stream(target, stdout) as stream:
            writer = RecordWriter(
                stream,
                output_format,
                predictor.labels,
                with_id=id_key is not None,
                with_labels=predictor.thresholds is not None,
                with_top_k=predictor.top_k is not None,
            )
            for records in iter_predictions(predictor, items, batch_size, SORT_WINDOW):
                writer.write(records)
            if not writer.written:
                raise InputError("no texts to predict; expected at least one text in the input")
    except BrokenPipeError:
        raise  # the reader went away (| head): the CLI ends quietly
    except OSError as exc:
        raise InputError(f"cannot write the results to {target or 'stdout'}: {exc.strerror or exc}") from exc
    finally:
        if meter is not None:
            meter.close()
    seconds = time.time() - loaded
    summary = {
        "texts": writer.written,
        "load_seconds": round(loaded - started, 2),
        "seconds": round(seconds, 2),
        "texts_per_second": round(writer.written / seconds, 1) if seconds > 0 else None,
        "output": str(target) if target is not None else None,
    }
    # On stdout the results speak for themselves; for a file, say how it went.
    level = logging.INFO if target is not None else logging.DEBUG
    log.log(
        level,
        "predicted %d texts in %.1f s (%.0f texts/s)",
        writer.written,
        seconds,
        writer.written / max(seconds, 1e-9),
    )
    return summary


@contextlib.contextmanager
def _output_stream(target: Path | None, stdout: IO[str] | None) -> Iterator[IO[str]]:
    """stdout, or a temporary sibling of ``target`` renamed into place on success, so an
    interrupted run never leaves a partial results file under the requested name."""
    if target is None:
        yield stdout if stdout is not None else sys.stdout
        return
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        artifacts.make_shareable(tmp)
        artifacts.publish_new_file(tmp, target, "--output")
    finally:
        tmp.unlink(missing_ok=True)
