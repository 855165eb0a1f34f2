"""`train --resume`: a run killed with SIGKILL mid-epoch continues to the same result, and
the run directory keeps model-best/ and model-last/ along the way."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import textlstm
from tests.conftest import TINY_OVERRIDES, held_out
from textlstm import artifacts, prediction
from textlstm.cli import main
from textlstm.config import load_config
from textlstm.errors import ModelDirError, OutputExistsError
from textlstm.metrics import cross_entropy

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


@pytest.mark.slow
# With weight averaging the checkpoint must hold the raw weights and the average apart.
# The kept ensemble members' probabilities are not checkpointed: a resumed run recomputes
# them to compare the next epochs' candidates (at the tuned mix, with ngram_mix=tuned).
@pytest.mark.parametrize(
    "extra",
    [[], ["training.ema_momentum=0.9"], ["model.ngram_mix=tuned"], ["training.member_epochs=shared"]],
    ids=["plain", "ema", "tuned-mix", "shared-epochs"],
)
def test_resume_after_sigkill_matches_an_uninterrupted_run(
    cli, corpus_tar: Path, tmp_path: Path, extra: list[str]
) -> None:
    overrides = [*RESUME_OVERRIDES, *extra]
    run = tmp_path / "killed"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", *_sets(overrides)]
    done = subprocess.run([sys.executable, "-c", _KILLER, "2", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # Killed in epoch 3: two epochs are checkpointed, the run is not finished.
    assert artifacts.is_interrupted_run(run)
    state = json.loads((run / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_STATE_FILE).read_text())
    assert state["epoch"] == 2
    assert json.loads((run / artifacts.LAST_DIR / artifacts.MANIFEST_FILE).read_text())["epoch"] == 2
    # model-best/ is the best so far by its own figures, which describe its own answers
    # (with own member epochs and the tuned mix: the kept pair mixed at its tuned weight).
    best, last = (
        json.loads((run / d / artifacts.METRICS_FILE).read_text()) for d in (artifacts.BEST_DIR, artifacts.LAST_DIR)
    )
    assert best["loss"] <= last["loss"] + 1e-6
    texts, labels = held_out(corpus_tar, run / artifacts.BEST_DIR, load_config(None, overrides))
    answers = prediction.load_predictor(run / artifacts.BEST_DIR).probabilities(texts)
    assert cross_entropy(np.array(labels), answers) == pytest.approx(best["loss"], abs=1e-5)
    # A new run into the same folder is refused with a pointer to --resume.
    refused = cli.invoke(main, args)
    assert refused.exit_code == 2 and "--resume" in refused.stderr

    if not extra:
        # A checkpoint whose vocab.txt lost its last token rebuilds a smaller embedding.
        damaged = tmp_path / "damaged"
        shutil.copytree(run, damaged)
        vocab = damaged / artifacts.CHECKPOINT_DIR / artifacts.VOCAB_FILE
        vocab.write_text("\n".join(vocab.read_text(encoding="utf-8").split("\n")[:-2]) + "\n", encoding="utf-8")
        refused = cli.invoke(main, ["train", "--resume", str(damaged), "-q"])
        assert refused.exit_code == 2, refused.stderr
        assert refused.stderr.count("error:") == 1 and "has shape" in refused.stderr and "vocab.txt" in refused.stderr

    if extra == ["training.member_epochs=shared"]:
        # A checkpoint written before member_epochs and the paths' validation losses existed
        # resumes as shared and logs no path losses from the middle of its history.
        older = tmp_path / "older"
        shutil.copytree(run, older)
        request_file = older / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_REQUEST_FILE
        request = json.loads(request_file.read_text())
        del request["config"]["training"]["member_epochs"]
        request_file.write_text(json.dumps(request))
        state_file = older / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_STATE_FILE
        state = json.loads(state_file.read_text())
        state["history"] = {
            k: v
            for k, v in state["history"].items()
            if not (k.startswith("val_") and k.endswith("_probabilities_loss"))
        }
        state_file.write_text(json.dumps(state))
        done = cli.invoke(main, ["train", "--resume", str(older), "-q"])
        assert done.exit_code == 0, done.stderr
        history = json.loads((older / artifacts.HISTORY_FILE).read_text())
        assert {len(values) for values in history.values()} == {3}
        assert "val_lstm_probabilities_loss" not in history
        assert "member_best_epochs" not in json.loads((older / artifacts.MANIFEST_FILE).read_text())

    resumed = cli.invoke(main, ["train", "--resume", str(run), "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["epochs_run"] == 3

    reference = textlstm.train(str(corpus_tar), tmp_path / "reference", load_config(None, overrides), verbose=0)
    history = json.loads((run / artifacts.HISTORY_FILE).read_text())
    assert history["val_accuracy"] == pytest.approx(reference.history["val_accuracy"], abs=1e-3)
    assert summary["validation"]["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=1e-3)
    assert history["loss"] == pytest.approx(reference.history["loss"], rel=1e-4)
    manifest = json.loads((run / artifacts.MANIFEST_FILE).read_text())
    assert manifest["resumed"][0]["after_epoch"] == 2
    wanted = json.loads((tmp_path / "reference" / artifacts.MANIFEST_FILE).read_text())
    assert manifest.get("member_best_epochs") == wanted.get("member_best_epochs")
    assert ("member_best_epochs" in manifest) == ("training.member_epochs=shared" not in extra)
    assert summary["validation"]["loss"] == pytest.approx(reference.metrics["loss"], abs=1e-4)
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


def test_overwrite_deletes_only_the_runs_it_moved_aside(corpus_tar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = load_config(None, [*TINY_OVERRIDES, "training.epochs=1", "data.limit=40"])
    textlstm.train(str(corpus_tar), run, config, verbose=0)
    # An interrupted run whose checkpoint says it replaces a hidden folder of the user's.
    mine = tmp_path / ".config" / "tool"
    mine.mkdir(parents=True)
    (mine / "settings.txt").write_text("mine")
    (run / artifacts.MANIFEST_FILE).unlink()
    (run / artifacts.CHECKPOINT_DIR).mkdir()
    (run / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_STATE_FILE).write_text("{}")
    (run / artifacts.CHECKPOINT_DIR / artifacts.CHECKPOINT_REQUEST_FILE).write_text(
        json.dumps({"replaces": [str(mine)]})
    )
    textlstm.train(str(corpus_tar), run, config, overwrite=True, verbose=0)
    assert (mine / "settings.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config", "run"]


# Sends itself SIGKILL when the finished run starts writing its learning curves: after
# the last checkpoint, before the top-level model directory is complete.
_KILL_IN_FINISH = """
import os, signal, sys
import textlstm.training
from textlstm.cli import main

def kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

textlstm.training.plot_learning_curves = kill
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_resume_after_early_stop_trains_no_further(cli, corpus_tar: Path, tmp_path: Path) -> None:
    # A rate too small to change a prediction: val_accuracy never improves after epoch 1,
    # so patience 1 stops the run after epoch 2 of 6.
    run = tmp_path / "run"
    sets = ["training.learning_rate=1e-9", "training.monitor=val_accuracy", "training.patience=1", "training.epochs=6"]
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", *_sets([*TINY_OVERRIDES, *sets])]
    done = subprocess.run([sys.executable, "-c", _KILL_IN_FINISH, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert artifacts.is_interrupted_run(run)
    resumed = cli.invoke(main, ["train", "--resume", str(run), "-q"])
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epochs_run"] == 2
    assert len(json.loads((run / artifacts.HISTORY_FILE).read_text())["loss"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("then", ["resume", "overwrite"])
def test_resume_an_interrupted_overwrite_keeps_both_runs_until_it_finishes(
    cli, corpus_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    import keras

    run = tmp_path / "run"
    first = load_config(None, [*TINY_OVERRIDES, "training.epochs=1", "data.limit=60"])
    textlstm.train(str(corpus_tar), run, first, verbose=0)
    original_fit = keras.Model.fit

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            if epoch == 1:
                raise KeyboardInterrupt

    def fit(self, *args, callbacks=None, **kwargs):
        return original_fit(self, *args, callbacks=[*(callbacks or []), Interrupt()], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    second = first.with_overrides(["training.epochs=2", "training.seed=9"])
    with pytest.raises(KeyboardInterrupt):
        textlstm.train(str(corpus_tar), run, second, overwrite=True, verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    # The new run has a checkpoint: it stays, resumable; the old one waits beside it.
    assert artifacts.is_interrupted_run(run)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(".run.old-")]
    assert json.loads((aside / "run" / artifacts.MANIFEST_FILE).read_text())["seed"] == 42
    # A new run into the folder is refused, naming where the replaced run waits.
    with pytest.raises(OutputExistsError, match=f"the run it replaces waits in {aside / 'run'}"):
        textlstm.train(str(corpus_tar), run, first, verbose=0)
    if then == "resume":
        resumed = cli.invoke(main, ["train", "--resume", str(run), "-q"])
        assert resumed.exit_code == 0, resumed.stderr
        assert json.loads((run / artifacts.MANIFEST_FILE).read_text())["seed"] == 9
    else:
        # Starting over replaces the interrupted run and, once done, the run it replaced.
        third = first.with_overrides(["training.seed=5"])
        textlstm.train(str(corpus_tar), run, third, overwrite=True, verbose=0)
        assert json.loads((run / artifacts.MANIFEST_FILE).read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_resume_refuses_any_other_option(cli, tmp_path: Path) -> None:
    result = cli.invoke(main, ["train", "--resume", str(tmp_path), "--epochs", "9", "--tensorboard"])
    assert result.exit_code == 2
    assert "--resume takes no other run options; received --epochs, --tensorboard" in result.stderr


def test_resume_failed_new_run_leaves_the_users_empty_folder(cli, corpus_tar: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    vectors = tmp_path / "vectors.txt"
    # The error comes from a vector the vocabulary uses, read after the run folder exists.
    vectors.write_text("great " + " ".join(["0.1"] * 8) + "\nawful " + " ".join(["x"] * 8) + "\n")
    result = cli.invoke(
        main,
        ["train", "--data", str(corpus_tar), "--output-dir", str(out), "--embeddings", str(vectors)]
        + _sets(TINY_OVERRIDES),
    )
    assert result.exit_code == 2, result.stderr
    assert out.is_dir() and not any(out.iterdir())


_TERMINATE_IN_FIRST_EPOCH = """
import os, signal, sys
import textlstm.training
from textlstm.cli import main

def terminate(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # what kill, timeout or docker stop send

textlstm.training._reseed_dropout = terminate  # called as each epoch starts
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigterm_in_the_first_epoch_of_an_overwrite_puts_the_old_run_back(corpus_tar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    textlstm.train(str(corpus_tar), run, load_config(None, [*TINY_OVERRIDES, "training.epochs=1", "data.limit=60"]))
    before = (run / artifacts.MANIFEST_FILE).read_text()
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "--overwrite", "-q"]
    args += _sets([*TINY_OVERRIDES, "training.epochs=2", "data.limit=60"])
    done = subprocess.run(
        [sys.executable, "-c", _TERMINATE_IN_FIRST_EPOCH, *args], capture_output=True, text=True, timeout=300
    )
    # Before, SIGTERM ended the process at once: the old run stayed hidden in .run.old-*/
    # and run/ held only the new run's first checkpoint.
    assert done.returncode == 1 and "Aborted" in done.stderr, done.stderr[-2000:]
    assert (run / artifacts.MANIFEST_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
