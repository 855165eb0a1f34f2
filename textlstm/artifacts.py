"""Model directories and exports on disk: fixed file names, atomic writes, loading.

A run (model) directory written by `textlstm train` holds:

==================  ==========================================================
``model.keras``     the string-in Keras model (TextVectorization + classifier)
``config.json``     the resolved configuration
``vocab.txt``       the vocabulary, one token per line, line number = token id
``labels.json``     label names in output order
``history.json``    per-epoch training and validation metrics
``metrics.json``    validation metrics of the kept (best) weights
``manifest.json``   command line, seed, library versions, data fingerprint, timings
``thresholds.json`` multi-label runs only: ``{label: threshold}``, the probability at
                    which each label is predicted (tuned on validation with
                    ``training.tune_thresholds``, else 0.5); absent in older runs (0.5)
==================  ==========================================================

The top level holds the kept (best) model once training has finished; ``manifest.json``
is written last, so its presence marks a finished run. Beside it, ``model-best/`` and
``model-last/`` are complete model directories of the best and the latest epoch, each
replaced atomically after every epoch, and ``learning_curves.png`` plots the history.
While training, ``checkpoint/`` holds what ``train --resume`` needs (the request, the
vocabulary, model and optimizer variables, the loop's state); it is removed when the run
finishes. ``tensorboard/`` holds TensorBoard logs with ``--tensorboard``.

With ``training.refit`` the top level holds the model trained again on the whole training
split, and ``heldout/`` the model directory of the run that chose its epochs and mix on the
hold-out (whose validation figures ``metrics.json`` gives for both). While the refit
trains, ``refit/`` is its run directory (``train --resume`` continues it); it is removed
once its model has replaced the top level's.

An export (``textlstm export``) is a SavedModel in an integer version folder; textlstm
puts ``labels.json``, ``vocab.txt`` and ``metadata.json`` into its ``assets/`` folder.
A TFLite export (``--format tflite``) is an integer version folder holding
``model.tflite`` (token ids in, probabilities out), ``vocab.txt``, ``labels.json``,
``tokenizer.json`` (how text becomes ids), ``tokenizer.py`` (a copy of
`textlstm.tokenizer`, standard library only) and ``metadata.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from textlstm.config import Config, saved_config
from textlstm.errors import (
    UNWRITABLE_ERRNOS,
    ExportError,
    InputError,
    ModelDirError,
    OutputExistsError,
    ServeError,
    TextlstmError,
    describe,
)
from textlstm.metrics import DEFAULT_THRESHOLD

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
# Multi-label runs only, so not in RUN_FILES: runs written before it existed mean 0.5 each.
THRESHOLDS_FILE = "thresholds.json"
# The IMDB sentiment model shipped in the package (scripts/build_pretrained.py builds it);
# `textlstm predict TEXT` without a MODEL uses it.
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "pretrained" / "imdb"
BEST_DIR = "model-best"
LAST_DIR = "model-last"
LEARNING_CURVES_FILE = "learning_curves.png"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoint"
# training.refit: the held-out run's model directory, and the refit's run while it trains.
HELDOUT_DIR = "heldout"
REFIT_RUN_DIR = "refit"
CHECKPOINT_STATE_FILE = "state.json"
CHECKPOINT_REQUEST_FILE = "request.json"
CHECKPOINT_VARIABLES_FILE = "variables.npz"
CHECKPOINT_BEST_FILE = "best.npz"
CHECKPOINT_FILES = (
    CHECKPOINT_STATE_FILE,
    CHECKPOINT_REQUEST_FILE,
    VOCAB_FILE,
    CHECKPOINT_VARIABLES_FILE,
    CHECKPOINT_BEST_FILE,
)
RUN_FILES = (MODEL_FILE, CONFIG_FILE, VOCAB_FILE, LABELS_FILE, HISTORY_FILE, METRICS_FILE, MANIFEST_FILE)
# Everything `train` may leave at a run's top level: what --overwrite may replace.
RUN_ENTRIES = frozenset(
    (
        *RUN_FILES,
        THRESHOLDS_FILE,
        BEST_DIR,
        LAST_DIR,
        LEARNING_CURVES_FILE,
        TENSORBOARD_DIR,
        CHECKPOINT_DIR,
        HELDOUT_DIR,
        REFIT_RUN_DIR,
    )
)

SAVED_MODEL_FILE = "saved_model.pb"
EXPORT_ASSETS_DIR = "assets"
EXPORT_METADATA_FILE = "metadata.json"
# The largest version folder TensorFlow Serving can load: it reads the name as an int64.
MAX_VERSION = 2**63 - 1
TFLITE_MODEL_FILE = "model.tflite"
TOKENIZER_CONFIG_FILE = "tokenizer.json"
TOKENIZER_MODULE_FILE = "tokenizer.py"
TFLITE_FILES = (TFLITE_MODEL_FILE, VOCAB_FILE, LABELS_FILE, TOKENIZER_CONFIG_FILE, EXPORT_METADATA_FILE)


def write_json(path: Path, data: Any) -> None:
    """Write pretty, key-sorted JSON followed by a newline (via a temporary file, so a
    reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def publish_new_file(tmp: Path, target: Path, what: str) -> None:
    """Move the finished file ``tmp`` to ``target`` unless ``target`` exists by now (another
    process may have written it since the start of the command): it is never replaced."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(
            f"{target} was created by another process meanwhile; expected a new file (choose another {what})"
        ) from None
    except OSError:
        # A file system without hard links: the check at the start is all there is.
        if target.exists():
            raise OutputExistsError(f"{target} already exists; expected a new file (choose another {what})") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def write_new_json(path: Path, data: Any, what: str) -> None:
    """`write_json` for a file the user names, which must not exist (see `publish_new_file`)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        make_shareable(tmp)
        publish_new_file(tmp, path, what)
    finally:
        tmp.unlink(missing_ok=True)


def make_shareable(path: Path, mode: int = 0o666) -> None:
    """Give a file from `tempfile.mkstemp` or a folder from `tempfile.mkdtemp` (``mode``
    0o777), which are private to their owner, the permissions of an ordinary new one under
    the process's umask, so that TensorFlow Serving or other users can read them."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(mode & ~umask)


def read_json(path: Path) -> Any:
    """Read a JSON file; a corrupt one is a ModelDirError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"cannot read {path}: {exc}; expected a JSON file written by textlstm") from exc


def is_run_dir(path: Path) -> bool:
    """True when ``path`` looks like a finished textlstm run directory (has a manifest)."""
    return (path / MANIFEST_FILE).is_file()


def checkpoint_folder(path: Path) -> Path | None:
    """The checkpoint of the run in ``path``: ``checkpoint/``, or, when a kill struck while
    it was being replaced (between moving the old one aside and renaming the new one into
    place), the old one that waits in ``.checkpoint.old-*/``."""
    folder = path / CHECKPOINT_DIR
    if (folder / CHECKPOINT_STATE_FILE).is_file():
        return folder
    aside = sorted(path.glob(f".{CHECKPOINT_DIR}.old-*/{CHECKPOINT_DIR}/{CHECKPOINT_STATE_FILE}"))
    return aside[-1].parent if aside else None


def is_interrupted_run(path: Path) -> bool:
    """True when ``path`` holds a run that started training and has not finished."""
    return path.is_dir() and not is_run_dir(path) and checkpoint_folder(path) is not None


def path_argument(path: Any, what: str, expected: str, error: type[TextlstmError] = InputError) -> Path:
    """A path argument of the Python API as a Path; ``error`` for None or another type
    (Path() would fail with a bare TypeError)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise error(f"bad {what}; {describe(f'{expected} as a str or pathlib.Path', type(path).__name__)}")
    return Path(path)


def model_path(path: Any, expected: str) -> Path:
    """A model argument of the Python API as a Path; ModelDirError for another type."""
    return path_argument(path, "model argument", expected, ModelDirError)


def check_run_dir(path: str | Path) -> Path:
    """Return the run directory path, or raise ModelDirError naming every missing file."""
    path = model_path(path, "a run directory")
    if not path.is_dir():
        raise ModelDirError(
            f"model directory not found; {describe('a directory written by textlstm train', str(path))}"
        )
    missing = [name for name in RUN_FILES if not (path / name).exists()]
    if missing and find_export(path) is not None:
        raise ModelDirError(
            f"{path} is an export, not a run directory; expected a directory written by textlstm train "
            "(exports are for predict and serve)"
        )
    if missing:
        raise ModelDirError(
            f"model directory {path} is incomplete: missing {', '.join(missing)}; "
            f"expected all of {', '.join(RUN_FILES)}"
        )
    return path


@dataclass
class RunInfo:
    """The light (no TensorFlow) part of a run directory."""

    path: Path
    config: Config
    labels: list[str]
    manifest: dict[str, Any]
    metrics: dict[str, Any]
    # A multi-label model's decision threshold per label, aligned with ``labels``; None for
    # a single-label model (it predicts the most probable label).
    thresholds: list[float] | None = None


def read_run_info(path: str | Path) -> RunInfo:
    """Read config, labels, manifest, metrics and (multi-label) thresholds of a run
    directory; raise ModelDirError naming the file that is missing or invalid."""
    path = check_run_dir(path)
    labels = read_labels(path / LABELS_FILE)
    config = saved_config(read_json(path / CONFIG_FILE), origin=str(path / CONFIG_FILE))
    return RunInfo(
        path=path,
        config=config,
        labels=labels,
        manifest=read_json(path / MANIFEST_FILE),
        metrics=read_json(path / METRICS_FILE),
        thresholds=read_thresholds(path, labels) if config.data.multi_label else None,
    )


def read_labels(path: Path, count: int | None = None) -> list[str]:
    """The label names in ``path`` (a run's or an export's ``labels.json``); ModelDirError
    unless it is a list of at least 2 strings, or of exactly ``count`` when the model's
    output width is known (an edited file would otherwise name the wrong classes)."""
    labels = read_json(path)
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise ModelDirError(f"{path} is invalid; {describe('a JSON list of at least 2 label names', labels)}")
    if count is not None and len(labels) != count:
        raise ModelDirError(
            f"{path} names {len(labels)} labels but the model outputs {count} probabilities; "
            "expected one label name per output"
        )
    return labels


# Characters of a URL path segment that need no escaping (RFC 3986 "unreserved"): a model
# name appears in TensorFlow Serving's URLs (/v1/models/NAME:predict) and in curl examples.
_MODEL_NAME = re.compile(r"[A-Za-z0-9._~-]+")
MODEL_NAME_RULE = "a model name of letters, digits and . _ ~ - (it goes into URLs)"


def is_model_name(name: str) -> bool:
    """Whether ``name`` can stand unescaped in a serving URL (`MODEL_NAME_RULE`)."""
    return _MODEL_NAME.fullmatch(name) is not None


def write_thresholds(folder: Path, labels: Sequence[str], thresholds: Sequence[float] | None) -> None:
    """Write ``thresholds.json`` (``{label: threshold}``) into ``folder``; None writes
    `DEFAULT_THRESHOLD` for every label, so that every multi-label model says what it uses."""
    values = [DEFAULT_THRESHOLD] * len(labels) if thresholds is None else [float(t) for t in thresholds]
    write_json(folder / THRESHOLDS_FILE, dict(zip(labels, values, strict=True)))


def read_thresholds(folder: Path, labels: list[str]) -> list[float]:
    """The per-label thresholds of a multi-label run, aligned with ``labels``: from
    ``thresholds.json``, or `DEFAULT_THRESHOLD` each for a run written before that file
    existed. A file that does not map every label to a number in [0, 1] is a ModelDirError."""
    path = folder / THRESHOLDS_FILE
    if not path.exists():
        return [DEFAULT_THRESHOLD] * len(labels)
    return check_thresholds(read_json(path), labels, str(path))


def check_thresholds(data: Any, labels: list[str], origin: str) -> list[float]:
    """Validate a ``{label: threshold}`` mapping read from ``origin`` and return it as a
    list aligned with ``labels``; raise ModelDirError naming ``origin`` and the bad entry."""
    if not isinstance(data, dict):
        raise ModelDirError(
            f"{origin} is invalid; {describe('a JSON object of label name to threshold', type(data).__name__)}"
        )
    unknown = [name for name in data if name not in labels]
    if unknown:
        raise ModelDirError(
            f"{origin} has a threshold for unknown label {unknown[0]!r}; expected only labels among {labels}"
        )
    missing = [name for name in labels if name not in data]
    if missing:
        raise ModelDirError(f"{origin} has no threshold for label {missing[0]!r}; expected one for each of {labels}")
    values = []
    for name in labels:
        value = data[name]
        # bool is an int subclass; NaN fails the range test.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ModelDirError(
                f"{origin}: the threshold of label {name!r} is invalid; {describe('a number in [0, 1]', value)}"
            )
        values.append(float(value))
    return values


def export_thresholds(metadata: dict[str, Any], labels: list[str], origin: str) -> list[float] | None:
    """The per-label thresholds an export's ``metadata.json`` records for a multi-label
    model (`DEFAULT_THRESHOLD` each when an older export records none); None for a
    single-label model."""
    if not metadata.get("config", {}).get("data", {}).get("multi_label"):
        return None
    recorded = metadata.get("signature", {}).get("thresholds")
    if recorded is None:
        return [DEFAULT_THRESHOLD] * len(labels)
    return check_thresholds(recorded, labels, origin)


def load_text_model(path: str | Path) -> Any:
    """Load the string-in Keras model of a run directory."""
    import keras

    import textlstm.layers  # noqa: F401 - registers the custom layers for deserialization
    import textlstm.vectorizer  # noqa: F401 - registers the standardize functions

    path = check_run_dir(path)
    # Keras reports a file that is not a zip archive as "File not found".
    if not zipfile.is_zipfile(path / MODEL_FILE):
        raise ModelDirError(
            f"cannot load {path / MODEL_FILE}: not a .keras archive (a zip file); expected the file textlstm train writes"
        )
    try:
        model = keras.saving.load_model(path / MODEL_FILE, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt archive
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDirError(f"cannot load {path / MODEL_FILE}: {first}") from exc
    read_labels(path / LABELS_FILE, model.output_shape[-1])
    _check_vocabulary_file(path, model)
    return model


def _check_vocabulary_file(path: Path, model: Any) -> None:
    """Raise ModelDirError when the run's vocab.txt is not the vocabulary inside its
    model.keras: exports copy the file, and a TFLite tokenizer reading a damaged one
    would silently give other ids."""
    from textlstm.model import VECTORIZER_NAME
    from textlstm.vectorizer import read_vocabulary, strip_special_tokens

    try:
        on_disk = read_vocabulary(path / VOCAB_FILE)
    except TextlstmError as exc:
        raise ModelDirError(f"cannot read {path / VOCAB_FILE}: {exc}") from exc
    inside = strip_special_tokens(model.get_layer(VECTORIZER_NAME).get_vocabulary())
    if on_disk != inside:
        differs = next((i for i, pair in enumerate(zip(on_disk, inside)) if pair[0] != pair[1]), None)
        where = f"line {differs + 3} differs" if differs is not None else f"{len(on_disk)} tokens"
        raise ModelDirError(
            f"{path / VOCAB_FILE} does not match the vocabulary inside {MODEL_FILE} ({where}); "
            f"expected the {len(inside)} tokens textlstm train wrote"
        )


def check_creatable(path: Path, what: str) -> None:
    """Raise OutputExistsError unless a folder can be created at ``path`` (``what``: the
    flag naming it): its nearest existing ancestor must be a folder this process can write
    in, tried with a temporary folder that is removed at once. Checked before the work that
    would end in writing there, so that a typo does not cost a training run."""
    if path.exists():
        return
    ancestor = next((p for p in path.absolute().parents if p.exists()), None)
    if ancestor is None:
        return
    if not ancestor.is_dir():
        raise OutputExistsError(f"cannot create {what} {path}: {ancestor} is a file; expected a folder path")
    try:
        probe = tempfile.mkdtemp(prefix=".textlstm-probe-", dir=ancestor)
    except OSError as exc:
        raise OutputExistsError(
            f"cannot create {what} {path}: {ancestor} is not writable ({exc.strerror or exc}); expected a writable location"
        ) from None
    os.rmdir(probe)


def waiting_replaced(run_dir: Path) -> list[str]:
    """The replaced runs (moved aside by ``--overwrite``) that the interrupted run in
    ``run_dir`` deletes when it finishes, those still there."""
    folder = checkpoint_folder(run_dir)
    try:
        earlier = read_json(folder / CHECKPOINT_REQUEST_FILE).get("replaces") if folder else None
    except (ModelDirError, AttributeError):
        return []
    # A single path in requests written before chains were kept.
    paths = [earlier] if isinstance(earlier, str) else list(earlier or []) if isinstance(earlier, list) else []
    return [str(p) for p in paths if isinstance(p, str) and Path(p).exists()]


def prepare_output_dir(path: str | Path, overwrite: bool) -> Path:
    """Refuse a non-empty output directory unless ``overwrite``, or one that cannot be
    created; return the resolved path."""
    if not str(path).strip():  # Path("") would be the current folder
        raise OutputExistsError(f"empty --output-dir; {describe('a directory path', str(path))}")
    path = Path(path)
    check_creatable(path, "--output-dir")
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output path {path} is a file; expected a directory path")
    if path.is_dir() and any(path.iterdir()):
        if is_interrupted_run(path) and not overwrite:
            hidden = waiting_replaced(path)
            kept = f" (the run it replaces waits in {', '.join(hidden)})" if hidden else ""
            raise OutputExistsError(
                f"output directory {path} holds an interrupted textlstm run{kept}; expected a new directory: "
                f"continue it with `textlstm train --resume {path}`, or pass --overwrite to start over"
            )
        if not is_run_dir(path) and not is_interrupted_run(path):
            # --overwrite replaces runs only: it must never delete a folder of other files.
            raise OutputExistsError(
                f"output directory {path} is not empty and holds no textlstm run; expected an empty or new "
                "directory, or a previous run to replace with --overwrite"
            )
        if not overwrite:
            raise OutputExistsError(
                f"output directory {path} already holds a different textlstm run; choose another --output-dir or pass --overwrite"
            )
        # The replaced run is deleted when the new one finishes: a report or notes kept
        # beside it would go with it.
        foreign = sorted(entry.name for entry in path.iterdir() if not _run_entry(entry.name))
        if foreign:
            raise OutputExistsError(
                f"output directory {path} holds files textlstm did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}), which --overwrite would delete with the old run; "
                "expected only a run's own files (move them out first)"
            )
    return path


# Files an operating system's file browser leaves in any folder it shows.
_OS_METADATA = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _run_entry(name: str) -> bool:
    """Whether a run's top level may hold ``name``: `RUN_ENTRIES`, a temporary or replaced
    entry that a killed process left behind (``.NAME.tmp``, ``.NAME.tmp-*``, ``.NAME.old-*``
    of `write_json` and `atomic_directory`), or a file browser's metadata file."""
    if name in _OS_METADATA:
        return True
    hidden = re.fullmatch(r"\.(.+)\.(?:tmp|old)(?:-[^/]*)?", name)
    return (hidden.group(1) if hidden else name) in RUN_ENTRIES


@contextlib.contextmanager
def atomic_directory(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success it replaces ``target``.

    On failure the temporary folder is removed and ``target`` is left as it was, so an
    interrupted write never leaves a half-written directory behind.
    """
    target = Path(target)
    blocking = next((p for p in (target.parent, *target.parent.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputExistsError(f"cannot write {target}: {blocking} is a file; expected a directory (or nothing) there")
    # Folders made for the target go again if the write fails.
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except BaseException:
        _remove_empty(created)
        raise
    make_shareable(tmp, 0o777)
    try:
        yield tmp
        if target.exists():
            if not overwrite and (not target.is_dir() or any(target.iterdir())):
                raise OutputExistsError(f"{target} appeared while writing; expected it to stay absent")
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / target.name, target)  # put the previous run back
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        unwritable = _unwritable(exc, target)
        if unwritable is not None:
            raise unwritable from exc
        raise


def _unwritable(exc: BaseException, target: Path) -> OSError | None:
    """An OSError naming ``target`` for a full or read-only disk reported without a path
    (a failed write() or close(), or TensorFlow's writers, which give it as text only),
    else None."""
    if isinstance(exc, OSError):
        if exc.errno in UNWRITABLE_ERRNOS and not exc.filename:
            return OSError(exc.errno, exc.strerror, str(target))
        return None
    text = str(exc)
    code = next((code for code in UNWRITABLE_ERRNOS if os.strerror(code) in text), None)
    return None if code is None else OSError(code, os.strerror(code), str(target))


def _remove_empty(folders: list[Path]) -> None:
    """Remove these folders, deepest first, if they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_saved_model_file(version_dir: Path) -> None:
    """Raise ModelDirError for an empty saved_model.pb, which TensorFlow reports as a
    missing ``tags=`` argument."""
    pb = version_dir / "saved_model.pb"
    if pb.is_file() and pb.stat().st_size == 0:
        raise ModelDirError(f"{pb} is empty; expected the file textlstm export writes (export the model again)")


def find_saved_model(path: str | Path) -> Path | None:
    """Return the SavedModel folder at ``path`` or its highest integer version folder."""
    return _find_version(Path(path), SAVED_MODEL_FILE)


def find_tflite(path: str | Path) -> Path | None:
    """Return the TFLite export folder at ``path`` (or holding the ``model.tflite`` file
    ``path``), or the highest integer version folder that holds one."""
    path = Path(path)
    if path.is_file() and path.name == TFLITE_MODEL_FILE:
        return path.parent
    return _find_version(path, TFLITE_MODEL_FILE)


def find_export(path: str | Path) -> tuple[str, Path] | None:
    """("savedmodel" | "tflite", folder) for an export at ``path``: the folder itself, or
    its highest integer version folder of either kind."""
    path = Path(path)
    if path.is_file() and path.name == TFLITE_MODEL_FILE:
        return "tflite", path.parent
    for kind, marker in (("savedmodel", SAVED_MODEL_FILE), ("tflite", TFLITE_MODEL_FILE)):
        if (path / marker).is_file():
            return kind, path
    if not path.is_dir():
        return None
    versions = sorted(
        (int(p.name), kind, p)
        for p in path.iterdir()
        if is_version_name(p.name)
        for kind, marker in (("savedmodel", SAVED_MODEL_FILE), ("tflite", TFLITE_MODEL_FILE))
        if (p / marker).is_file()
    )
    return (versions[-1][1], versions[-1][2]) if versions else None


def _find_version(path: Path, marker: str) -> Path | None:
    if (path / marker).is_file():
        return path
    if path.is_dir():
        versions = sorted(
            (int(p.name), p) for p in path.iterdir() if is_version_name(p.name) and (p / marker).is_file()
        )
        if versions:
            return versions[-1][1]
    return None


def model_kind(path: str | Path) -> tuple[str, Path]:
    """("run" | "savedmodel" | "tflite", folder) for a model argument: a run directory, or
    an export (a version folder, its parent: the highest version, or a ``model.tflite``
    file); raise ModelDirError naming what is missing."""
    path = model_path(path, "a run directory or an export")
    if not path.exists():
        raise ModelDirError(f"model not found; {describe('a run directory or an exported SavedModel', str(path))}")
    if is_run_dir(path) or (path / MODEL_FILE).exists():
        return "run", path
    found = find_export(path)
    if found is None:
        raise ModelDirError(
            f"{path} is neither a run directory (missing {MANIFEST_FILE}) nor an export "
            f"(missing {SAVED_MODEL_FILE} or {TFLITE_MODEL_FILE}); "
            "expected the output of textlstm train or export"
        )
    return found


def resolve_model_argument(
    first: str | None, rest: Sequence[str], reading_input: bool = False
) -> tuple[Path, tuple[str, ...]]:
    """Tell ``textlstm predict [MODEL] [TEXT...]`` apart: an existing path is the model;
    a word with a slash that names nothing, or any first argument before ``-`` or with
    ``--input``, is a mistyped model path (an error); anything else is the first text,
    classified with the bundled IMDB model (`BUNDLED_MODEL_DIR`)."""
    if first is None:
        return BUNDLED_MODEL_DIR, tuple(rest)
    if first and Path(first).expanduser().exists():  # Path("") is the current folder
        return Path(first).expanduser(), tuple(rest)
    path_like = not any(c.isspace() for c in first) and ("/" in first or os.sep in first)
    if path_like or reading_input or tuple(rest) == ("-",):
        raise ModelDirError(
            f"model not found; {describe('a run directory or an export (or a sentence, for the bundled model)', first)}"
        )
    if not BUNDLED_MODEL_DIR.is_dir():
        raise ModelDirError(
            f"the bundled model is missing from this installation ({BUNDLED_MODEL_DIR}); expected "
            "a MODEL argument, or a model built by scripts/build_pretrained.py"
        )
    return BUNDLED_MODEL_DIR, (first, *rest)


def serving_target(export_dir: str | Path, name: str | None) -> tuple[Path, str]:
    """The folder `textlstm serve` watches and the model name in its URLs: ``name``, else
    the name its highest version was exported with (`export --name`, whose default is the
    export folder's name), else the folder's name; raise ServeError for a missing folder or
    a name unfit for a URL."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ServeError(f"export folder not found; {describe('a folder of integer version folders', str(export_dir))}")
    name = name or _exported_name(export_dir) or export_dir.resolve().name
    if not is_model_name(name):
        raise ServeError(
            f"invalid model name (--name, else the exported name or the export folder's name); "
            f"{describe(MODEL_NAME_RULE, name)}"
        )
    return export_dir, name


def _exported_name(export_dir: Path) -> str | None:
    """The model name recorded by the export of the highest SavedModel version, if readable
    (a version that cannot be read is reported when the server loads it)."""
    folder = find_saved_model(export_dir)
    metadata = folder / EXPORT_ASSETS_DIR / EXPORT_METADATA_FILE if folder is not None else None
    try:
        name = json.loads(metadata.read_text(encoding="utf-8")).get("name") if metadata else None
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def check_new_file(path: str | Path, what: str) -> Path:
    """Refuse an output file (``what``: the flag that names it) that exists or whose
    folder does not: nothing already written is replaced."""
    path = Path(path)
    if os.path.lexists(path):  # a dangling symbolic link too: it names a file to be
        raise OutputExistsError(f"{path} already exists; expected a new file (remove it or choose another {what})")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {what}; {describe('a file in an existing directory', str(path))}")
    return path


def export_name(export_dir: str | Path, name: str | None) -> str:
    """The model name an export records (TensorFlow Serving's ``--model_name``): ``name``,
    or the export folder's name; raise ExportError for one that cannot appear in a URL path."""
    given = name
    name = name or Path(export_dir).resolve().name
    if not is_model_name(name):
        source = "--name" if given else "model name (the export folder's name; choose one with --name)"
        raise ExportError(f"invalid {source}; {describe(MODEL_NAME_RULE, name)}")
    return name


def export_target(export_dir: str | Path, version: int | None) -> tuple[Path, int]:
    """The version folder an export writes (``version`` None: the next free integer);
    raise when ``export_dir`` is a file or the version folder already exists."""
    export_dir = Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise OutputExistsError(f"export path {export_dir} is a file; expected a directory")
    if version is None:
        version = next_version(export_dir)
        if version > MAX_VERSION:
            raise ExportError(
                f"no next export version in {export_dir}: its highest is {MAX_VERSION}, the largest TF Serving reads; "
                "expected --version N for a free N, or another --export-dir"
            )
    if not 1 <= version <= MAX_VERSION:
        raise ExportError(
            f"invalid export version; {describe(f'an integer from 1 to {MAX_VERSION} (TF Serving reads an int64)', version)}"
        )
    target = export_dir / str(version)
    if target.exists():
        raise OutputExistsError(f"export version {target} already exists; choose another --version or leave it out")
    return target, version


def is_version_name(name: str) -> bool:
    """True for an integer version folder name as TensorFlow Serving reads them ("12").

    ``str.isdigit`` is not enough: it accepts "²", which ``int`` rejects.
    """
    return re.fullmatch(r"[0-9]+", name) is not None


def next_version(export_dir: Path) -> int:
    """The next free integer version in an export directory (1 for a new one)."""
    if not export_dir.is_dir():
        return 1
    # Folders beyond int64 are not versions to TF Serving, which cannot read them.
    taken = [int(p.name) for p in export_dir.iterdir() if is_version_name(p.name) and len(p.name) <= 64]
    return max([v for v in taken if v <= MAX_VERSION], default=0) + 1
