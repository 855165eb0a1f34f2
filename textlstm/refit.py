"""training.refit on disk: the plan a refit takes from the held-out run, and the moves
that make the refit's model the run's.

A refit run trains in ``DIR/refit/`` (an ordinary run directory, resumable) while ``DIR``
holds the finished held-out run. `finish_refit` then copies the held-out model to
``DIR/heldout/`` and moves the refit's model to the top level, manifest last; each step can
be repeated after a crash (`refit_stage` tells where a run stands), so nothing finished
is lost.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from textlstm import artifacts
from textlstm.errors import ModelDirError

# Top-level entries the refit's run directory hands to the run's (the manifest moves last).
_MOVED_FILES = tuple(name for name in artifacts.RUN_FILES if name != artifacts.MANIFEST_FILE) + (
    artifacts.THRESHOLDS_FILE,
    artifacts.LEARNING_CURVES_FILE,
)
_MOVED_DIRS = (artifacts.BEST_DIR, artifacts.LAST_DIR)


def refit_plan(run_dir: Path) -> dict[str, Any]:
    """What a refit of the finished held-out run in ``run_dir`` reuses: the epochs to
    train (each ensemble path's own, or the best epoch), the tuned mix, the multi-label
    thresholds, the config and the validation figures."""
    info = artifacts.read_run_info(run_dir)
    manifest = info.manifest
    members = manifest.get("member_best_epochs")
    best_epoch = int(manifest.get("best_epoch") or manifest.get("epochs_run") or 0)
    epochs = max(members.values()) if members else best_epoch
    if epochs < 1:
        raise ModelDirError(
            f"{run_dir / artifacts.MANIFEST_FILE} records no kept epoch to refit for; expected best_epoch >= 1"
        )
    return {
        "epochs": int(epochs),
        # By head name: manifest.json is written with sorted keys, not in the members' order.
        "member_epochs": {head: int(e) for head, e in members.items()} if members else None,
        "ngram_mix": manifest.get("ngram_mix"),
        "thresholds": info.thresholds,
        "config": info.config.to_dict(),
        "heldout": {
            "metrics": info.metrics,
            "best_epoch": best_epoch,
            "epochs_run": manifest.get("epochs_run"),
            "train_examples": manifest["data"]["train_examples"],
            "val_examples": manifest["data"]["val_examples"],
            "train_seconds": manifest.get("train_seconds"),
        },
    }


def refit_stage(run_dir: Path) -> str | None:
    """Where the refit of ``run_dir`` stands: "training" (its run is interrupted),
    "trained" (its model waits to be moved up), "done" (``heldout/`` holds the held-out
    run and no refit run is left), or None when no refit was started."""
    refit_dir = run_dir / artifacts.REFIT_RUN_DIR
    if artifacts.is_interrupted_run(refit_dir):
        return "training"
    if artifacts.is_run_dir(refit_dir):
        return "trained"
    if artifacts.is_run_dir(run_dir / artifacts.HELDOUT_DIR):
        return "done"
    return None


def finish_refit(run_dir: Path) -> None:
    """Copy the held-out model to ``heldout/`` (once, atomically), then move the finished
    refit's model files and folders to the top level, the manifest last, and remove
    ``refit/``. Until the manifest is back the top level reads as unfinished, and running
    this again completes it."""
    refit_dir = run_dir / artifacts.REFIT_RUN_DIR
    heldout = run_dir / artifacts.HELDOUT_DIR
    if not artifacts.is_run_dir(heldout):
        if not artifacts.is_run_dir(run_dir):
            raise ModelDirError(
                f"cannot finish the refit in {run_dir}: neither it nor {heldout} holds the held-out run's "
                f"{artifacts.MANIFEST_FILE}; expected one of them to"
            )
        with artifacts.atomic_directory(heldout, overwrite=True) as tmp:
            for name in (*_MOVED_FILES, artifacts.MANIFEST_FILE):
                if (run_dir / name).is_file():
                    shutil.copy2(run_dir / name, tmp / name)
    (run_dir / artifacts.MANIFEST_FILE).unlink(missing_ok=True)
    for name in _MOVED_FILES:
        if (refit_dir / name).is_file():
            os.replace(refit_dir / name, run_dir / name)
    for name in _MOVED_DIRS:
        if (refit_dir / name).is_dir():
            if (run_dir / name).exists():
                shutil.rmtree(run_dir / name)
            os.replace(refit_dir / name, run_dir / name)
    os.replace(refit_dir / artifacts.MANIFEST_FILE, run_dir / artifacts.MANIFEST_FILE)
    shutil.rmtree(refit_dir)
