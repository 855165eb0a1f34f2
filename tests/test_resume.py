"""`train --resume`: a run killed with SIGKILL mid-epoch continues to the same result, and
the run directory keeps model-best/ and model-last/ along the way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import textlstm
from tests.conftest import TINY_OVERRIDES
from textlstm import artifacts
from textlstm.cli import main
from textlstm.config import load_config
from textlstm.errors import ModelDirError, OutputExistsError

RESUME_OVERRIDES = [*TINY_OVERRIDES, "training.epochs=3", "training.patience=5"]

# Runs `textlstm train` in this process, after wrapping Keras' fit so that the process
# sends itself SIGKILL at batch 3 of the given epoch (0-based): a kill in the middle of an
# epoch, at a point that does not depend on timing.
_KILLER = """
import os, signal, sys
import keras
from textlstm.cli import main

kill_epoch = int(sys.argv[1])
original_fit = keras.Model.fit

class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.params_epoch == kill_epoch and batch == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    def on_epoch_begin(self, epoch, logs=None):
        self.params_epoch = epoch

def fit(self, *args, callbacks=None, **kwargs):
    return original_fit(self, *args, callbacks=[*(callbacks or []), Kill()], **kwargs)

keras.Model.fit = fit
main(sys.argv[2:])
"""


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def test_resume_after_sigkill_matches_an_uninterrupted_run(cli, corpus_tar: Path, tmp_path: Path) -> None:
    run = tmp_path / "killed"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", *_sets(RESUME_OVERRIDES)]
    done = subprocess.run([sys.executable, "-c", _KILLER, "2", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # Killed in epoch 3: two epochs are checkpointed, the run is not finished.
    assert artifacts.is_interrupted_run(run)
    state = json.loads((run / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_STATE_FILE).read_text())
    assert state["epoch"] == 2
    assert json.loads((run / artifacts.LAST_DIR / artifacts.MANIFEST_FILE).read_text())["epoch"] == 2
    # A new run into the same folder is refused with a pointer to --resume.
    refused = cli.invoke(main, args)
    assert refused.exit_code == 2 and "--resume" in refused.stderr

    resumed = cli.invoke(main, ["train", "--resume", str(run), "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["epochs_run"] == 3

    reference = textlstm.train(str(corpus_tar), tmp_path / "reference", load_config(None, RESUME_OVERRIDES), verbose=0)
    history = json.loads((run / artifacts.HISTORY_FILE).read_text())
    assert history["val_accuracy"] == pytest.approx(reference.history["val_accuracy"], abs=1e-3)
    assert summary["validation"]["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=1e-3)
    assert history["loss"] == pytest.approx(reference.history["loss"], rel=1e-4)
    manifest = json.loads((run / artifacts.MANIFEST_FILE).read_text())
    assert manifest["resumed"][0]["after_epoch"] == 2
    assert not (run / artifacts.CHECKPOINT_DIR).exists()


def test_resume_refuses_finished_and_foreign_dirs(cli, trained_run, tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="already finished"):
        textlstm.train(resume=trained_run.output_dir)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    result = cli.invoke(main, ["train", "--resume", str(tmp_path / "other")])
    assert result.exit_code == 2
    assert result.stderr.count("error:") == 1 and "holds no checkpoint/ folder" in result.stderr
    result = cli.invoke(main, ["train", "--resume", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "run directory not found" in result.stderr
    result = cli.invoke(main, ["train", "--resume", str(trained_run.output_dir), "--data", "x"])
    assert result.exit_code == 2 and "--resume takes no other run options" in result.stderr


def test_resume_names_a_missing_checkpoint_file(corpus_tar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = load_config(None, [*TINY_OVERRIDES, "training.epochs=1", "data.limit=40"])
    textlstm.train(str(corpus_tar), run, config, verbose=0)
    # Make it look interrupted, with one checkpoint file gone.
    (run / artifacts.MANIFEST_FILE).unlink()
    (run / artifacts.CHECKPOINT_DIR).mkdir()
    (run / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_STATE_FILE).write_text("{}")
    with pytest.raises(ModelDirError, match="missing request.json, vocab.txt, variables.npz, best.npz"):
        textlstm.train(resume=run)
    with pytest.raises(OutputExistsError, match="interrupted textlstm run"):
        textlstm.train(str(corpus_tar), run, config, verbose=0)
