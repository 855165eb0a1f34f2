"""A run directory while it trains: the per-epoch ``model-best/`` and ``model-last/``
folders, and the ``checkpoint/`` that `train --resume` continues from."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textlstm import artifacts
from textlstm.errors import ModelDirError, describe
from textlstm.vectorizer import OOV_TOKEN, PAD_TOKEN, read_vocabulary, write_vocabulary

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    """What a run directory's ``checkpoint/`` holds."""

    # How the run was asked for: data source, read options, resolved config, labels,
    # command line, data summaries and fingerprint.
    request: dict[str, Any]
    vocabulary: list[str]
    # The epoch loop's state: epochs done, history, best value and epoch, patience
    # counters, learning rate, seconds spent.
    state: dict[str, Any]
    # Classifier variables (weights and dropout seed states) followed by the optimizer's.
    variables: list[np.ndarray]
    # Classifier weights of the best epoch so far.
    best: list[np.ndarray]


@dataclass
class RunDir:
    """A run directory being written: ``path``, whether this run created it, and where a
    run it replaces (``--overwrite``) waits until the new one finishes."""

    path: Path
    created: bool
    aside: Path | None


def begin_run_dir(path: Path, overwrite: bool) -> RunDir:
    """Create the run directory ``path``. With ``overwrite``, a previous run there is moved
    to a hidden sibling first, so that it can be put back if the new run fails before its
    first checkpoint (`abandon_run_dir`) and deleted when the new run finishes
    (`discard_old_run`)."""
    aside = None
    if path.is_dir() and any(path.iterdir()) and overwrite:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent)) / path.name
        os.replace(path, aside)
        log.info("the previous run in %s is kept in %s until the new one finishes", path, aside.parent)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path=path, created=created, aside=aside)


def abandon_run_dir(run: RunDir) -> None:
    """After a failure: keep an interrupted run that has completed an epoch (it can be
    resumed; the run it replaces stays aside until it finishes), otherwise remove what
    this run wrote and put a replaced run back."""
    if artifacts.is_interrupted_run(run.path) and _epochs_done(run.path) > 0:
        log.warning("training stopped; continue it with `textlstm train --resume %s`", run.path)
        if run.aside is not None:
            log.warning("the run it replaces is kept in %s until then", run.aside)
        return
    if run.created or run.aside is not None:
        shutil.rmtree(run.path, ignore_errors=True)
    else:  # the user's own empty folder: leave it, empty
        for entry in run.path.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    if run.aside is not None:
        os.replace(run.aside, run.path)
        shutil.rmtree(run.aside.parent, ignore_errors=True)


def _epochs_done(path: Path) -> int:
    folder = artifacts.checkpoint_folder(path)
    try:
        return int(artifacts.read_json(folder / artifacts.CHECKPOINT_STATE_FILE)["epoch"]) if folder else 0
    except (ModelDirError, KeyError, TypeError, ValueError):
        return 0


def replaced_runs(aside: Path | None) -> list[str]:
    """What a new run replaces: the run `begin_run_dir` moved aside and, when that was an
    interrupted ``--overwrite`` run itself, the runs it was replacing (else they would stay
    hidden beside the new run for good)."""
    if aside is None:
        return []
    return [str(aside), *artifacts.waiting_replaced(aside)]


def discard_old_run(replaced: str | list[str] | None) -> None:
    """Delete the replaced runs that `begin_run_dir` moved aside, once the new one is done."""
    for aside in [replaced] if isinstance(replaced, str) else replaced or []:
        # Only a folder `begin_run_dir` made (.NAME.old-XXXX/NAME): the paths come from a
        # checkpoint's request.json, which a user may have edited.
        if Path(aside).parent.name.startswith(f".{Path(aside).name}.old-"):
            shutil.rmtree(Path(aside).parent, ignore_errors=True)


def write_model_dir(
    target: Path,
    text_model: Any,
    files: dict[str, Any],
    vocabulary: list[str],
    *,
    atomic: bool = True,
) -> None:
    """Write a complete model directory: ``model.keras`` from ``text_model``, the
    vocabulary, and each JSON file in ``files`` (file name -> content). The manifest is
    written last, so a directory with a manifest is always complete.

    ``atomic`` builds it in a temporary sibling that replaces ``target`` at the end; the
    run's top level, which holds other folders, is written in place instead.
    """
    if atomic:
        with artifacts.atomic_directory(target, overwrite=True) as tmp:
            write_model_dir(tmp, text_model, files, vocabulary, atomic=False)
        return
    text_model.save(target / artifacts.MODEL_FILE)
    write_vocabulary(vocabulary, target / artifacts.VOCAB_FILE)
    for name, content in files.items():
        if name != artifacts.MANIFEST_FILE:
            artifacts.write_json(target / name, content)
    artifacts.write_json(target / artifacts.MANIFEST_FILE, files[artifacts.MANIFEST_FILE])


def save_checkpoint(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Replace ``run_dir/checkpoint/`` with ``checkpoint`` in one atomic step."""
    with artifacts.atomic_directory(run_dir / artifacts.CHECKPOINT_DIR, overwrite=True) as tmp:
        artifacts.write_json(tmp / artifacts.CHECKPOINT_REQUEST_FILE, checkpoint.request)
        write_vocabulary(checkpoint.vocabulary, tmp / artifacts.VOCAB_FILE)
        _save_arrays(tmp / artifacts.CHECKPOINT_VARIABLES_FILE, checkpoint.variables)
        _save_arrays(tmp / artifacts.CHECKPOINT_BEST_FILE, checkpoint.best)
        artifacts.write_json(tmp / artifacts.CHECKPOINT_STATE_FILE, checkpoint.state)


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    """Read the checkpoint of an interrupted run; raise ModelDirError when ``run_dir`` is
    not one (missing, finished, never started) or a checkpoint file is missing."""
    run_dir = Path(run_dir)
    expected = "a run directory that `textlstm train` started and did not finish"
    if not run_dir.is_dir():
        raise ModelDirError(f"cannot resume: run directory not found; {describe(expected, str(run_dir))}")
    if artifacts.is_run_dir(run_dir):
        raise ModelDirError(
            f"cannot resume {run_dir}: its training already finished; expected an interrupted run "
            "(start a new one with another --output-dir, or fine-tune it with --init-from)"
        )
    folder = run_dir / artifacts.CHECKPOINT_DIR
    if not folder.is_dir():
        raise ModelDirError(
            f"cannot resume {run_dir}: it holds no {artifacts.CHECKPOINT_DIR}/ folder; expected {expected}"
        )
    missing = [name for name in artifacts.CHECKPOINT_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelDirError(
            f"cannot resume {run_dir}: {artifacts.CHECKPOINT_DIR}/ is missing {', '.join(missing)}; "
            f"expected all of {', '.join(artifacts.CHECKPOINT_FILES)}"
        )
    return Checkpoint(
        request=artifacts.read_json(folder / artifacts.CHECKPOINT_REQUEST_FILE),
        # As TextVectorization lists it: padding and [UNK] first.
        vocabulary=[PAD_TOKEN, OOV_TOKEN, *read_vocabulary(folder / artifacts.VOCAB_FILE)],
        state=artifacts.read_json(folder / artifacts.CHECKPOINT_STATE_FILE),
        variables=_load_arrays(folder / artifacts.CHECKPOINT_VARIABLES_FILE),
        best=_load_arrays(folder / artifacts.CHECKPOINT_BEST_FILE),
    )


def remove_checkpoint(run_dir: Path) -> None:
    """Delete the checkpoint of a finished run (the optimizer state is of no further use)
    and any temporary folders an interrupted write left beside it."""
    shutil.rmtree(run_dir / artifacts.CHECKPOINT_DIR, ignore_errors=True)
    for leftover in run_dir.glob(".*.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in run_dir.glob(".*.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, *arrays)


def _load_arrays(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path) as data:
            return [data[f"arr_{i}"] for i in range(len(data.files))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelDirError(f"cannot read {path}: {exc}; expected a checkpoint written by textlstm train") from exc
