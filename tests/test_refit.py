"""training.refit (`train --refit`): after the held-out run, a second run on the whole
training split for the epochs and with the mix the hold-out chose; its model is the run's
and the held-out run's is kept in heldout/."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import textlstm
from tests.conftest import FILLER, NEGATIVE, POSITIVE, TINY_OVERRIDES
from textlstm import artifacts
from textlstm.cli import main
from textlstm.config import load_config
from textlstm.errors import ConfigError
from textlstm.model import HEAD_NAME, MEMBER_NAMES

# The defaults' three members and tuned mix, so that the refit has a mix and member epochs
# to reuse; short, so that a refit costs seconds.
REFIT_OVERRIDES = [
    *[o for o in TINY_OVERRIDES if not o.startswith(("model.ngram_mix=", "model.naive_bayes_bag="))],
    "training.epochs=3",
    "training.patience=5",
]

# Runs `textlstm train` in this process and sends it SIGKILL at batch 3 of the N-th call of
# Keras' fit (one call an epoch, counting the held-out run's epochs first).
_KILLER = """
import os, signal, sys
import keras
from textlstm.cli import main

kill_call = int(sys.argv[1])
calls = []
original_fit = keras.Model.fit

class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if len(calls) == kill_call and batch == 3:
            os.kill(os.getpid(), signal.SIGKILL)

def fit(self, *args, callbacks=None, **kwargs):
    calls.append(1)
    return original_fit(self, *args, callbacks=[*(callbacks or []), Kill()], **kwargs)

keras.Model.fit = fit
main(sys.argv[2:])
"""


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _probabilities(run: Path, texts: list[str]) -> np.ndarray:
    return np.array([list(record["probabilities"].values()) for record in textlstm.predict(run, texts)])


TEXTS = ["a wonderful superb film", "boring awful plot", "the story of the actor"]


@pytest.fixture(scope="module")
def refit_run(corpus_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A run trained with --refit through the CLI, and its printed summary."""
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("refit") / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", "--refit", *_sets(REFIT_OVERRIDES)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + result.stderr
    return run, json.loads(result.stdout)


def test_refit_trains_on_the_hold_out_too_with_the_held_out_runs_choices(refit_run: tuple[Path, dict]) -> None:
    run, summary = refit_run

    heldout = run / artifacts.HELDOUT_DIR
    assert artifacts.is_run_dir(heldout) and artifacts.is_run_dir(run)
    assert not (run / artifacts.REFIT_RUN_DIR).exists()
    top, kept = artifacts.read_run_info(run), artifacts.read_run_info(heldout)
    # Trained on every example of the split: the held-out run's training part and hold-out.
    held = kept.manifest["data"]
    assert top.manifest["data"]["train_examples"] == held["train_examples"] + held["val_examples"] == 200
    assert top.manifest["data"]["val_examples"] == 0
    # For the epochs the hold-out chose, each path its own, at the mix it tuned.
    member_epochs = kept.manifest["member_best_epochs"]
    assert top.manifest["member_best_epochs"] == member_epochs
    assert top.manifest["refit"]["epochs"] == max(member_epochs.values()) == top.manifest["epochs_run"]
    assert top.manifest["ngram_mix"] == kept.manifest["ngram_mix"]
    mix = artifacts.load_text_model(run).get_layer("classifier").get_layer(HEAD_NAME).mix.numpy()
    names = [MEMBER_NAMES[head] for head in ("lstm_probabilities", "ngram_probabilities", "naive_bayes_probabilities")]
    np.testing.assert_allclose(mix, [kept.manifest["ngram_mix"]["weights"][name] for name in names])
    assert top.manifest["refit"]["heldout"]["val_examples"] == held["val_examples"]
    # The figures are the hold-out's (the refit has none of its own), and so says the summary.
    assert top.metrics == kept.metrics and summary["validation"]["loss"] == kept.metrics["loss"]
    assert summary["refit"]["heldout_dir"] == artifacts.HELDOUT_DIR
    # The saved config trains the whole run again, held-out run and refit.
    assert top.config.training.refit and top.config.data.val_fraction == 0.2
    # Another model: different weights, the same task learned.
    refit, before = _probabilities(run, TEXTS), _probabilities(heldout, TEXTS)
    assert not np.allclose(refit, before)
    labels = [record["label"] for record in textlstm.predict(run, TEXTS[:2])]
    assert labels == ["pos", "neg"]


def test_fine_tuning_a_refit_model_on_its_own_data_warns_that_no_hold_out_is_unseen(
    cli, refit_run: tuple[Path, dict], corpus_tar: Path, tmp_path: Path
) -> None:
    run, _ = refit_run
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(tmp_path / "ft"), "--init-from", str(run)]
    result = cli.invoke(main, [*args, "--epochs", "1", "-q"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "the base was refit (training.refit) on all of it" in result.stderr


def test_refit_keeps_each_path_from_the_epoch_the_hold_out_chose_for_it(cli, corpus_tar: Path, tmp_path: Path) -> None:
    # On the tiny task every path improves to the last epoch; the held-out run's record is
    # edited to three different epochs, as a real corpus gives them (AG News: LSTM 2, bag 8,
    # naive Bayes bag 2), and a refit of the finished run follows it path by path. Written as
    # textlstm writes it, with sorted keys: not in the members' order.
    run = tmp_path / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", *_sets(REFIT_OVERRIDES)]
    assert cli.invoke(main, args).exit_code == 0
    chosen = {"lstm_probabilities": 1, "ngram_probabilities": 3, "naive_bayes_probabilities": 2}
    manifest = json.loads((run / artifacts.MANIFEST_FILE).read_text())
    assert set(manifest["member_best_epochs"]) == set(chosen)
    artifacts.write_json(run / artifacts.MANIFEST_FILE, {**manifest, "member_best_epochs": chosen})
    config = json.loads((run / artifacts.CONFIG_FILE).read_text())
    config["training"]["refit"] = True
    artifacts.write_json(run / artifacts.CONFIG_FILE, config)
    # A finished held-out run whose refit never started: --resume starts it.
    resumed = cli.invoke(main, ["train", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    top = artifacts.read_run_info(run).manifest
    assert top["member_best_epochs"] == chosen
    assert top["refit"]["epochs"] == top["epochs_run"] == 3
    # The log names each path's epoch in the members' order, says why there is no
    # validation data, and marks the epochs paths are kept from, not a "best" it never chose.
    log = resumed.stderr
    assert "(LSTM from epoch 1, n-gram bag from epoch 3, naive Bayes bag from epoch 2)" in log
    assert "validation data: none (the refit trains on the whole split, hold-out included)" in log
    notes = re.findall(r"epoch (\d)/3: .*?(\(.*\))?$", log, flags=re.MULTILINE)
    assert notes == [
        ("1", "(refit: keeps LSTM)"),
        ("2", "(refit: keeps naive Bayes bag)"),
        ("3", "(refit: keeps n-gram bag)"),
    ]


def test_refit_of_a_fine_tuning_run_with_an_extended_vocabulary_evaluates(cli, trained_run, tmp_path: Path) -> None:
    # Each text carries a word of its own, so the refit, extending the base vocabulary on
    # the hold-out as well, appends more words than the held-out run did; the saved config
    # must admit them (it once kept the held-out run's max_tokens, and evaluate failed).
    data, rnd = tmp_path / "data", random.Random(3)
    for label, cues in (("pos", POSITIVE[:4]), ("neg", NEGATIVE[:4])):
        (data / label).mkdir(parents=True)
        for i in range(30):
            words = [rnd.choice(FILLER) for _ in range(6)] + rnd.sample(cues, 2) + [f"only{label}{i}"]
            (data / label / f"{i}.txt").write_text(" ".join(words))
    run = tmp_path / "ft"
    args = ["train", "--init-from", str(trained_run.output_dir), "--data", str(data), "--output-dir", str(run)]
    args += ["--epochs", "1", "--extend-vocab", "200", "--refit", "-q"]
    result = cli.invoke(main, [*args, *_sets(["data.val_fraction=0.2", "training.batch_size=16"])])
    assert result.exit_code == 0, result.output + result.stderr
    heldout = run / artifacts.HELDOUT_DIR
    sizes = {folder: len((folder / artifacts.VOCAB_FILE).read_text().splitlines()) for folder in (run, heldout)}
    assert sizes[run] > sizes[heldout]
    for folder in (run, heldout):
        assert artifacts.read_run_info(folder).config.vectorizer.max_tokens >= sizes[folder]
        assert textlstm.evaluate(folder, str(data))["examples"] == 60


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.val_fraction=0"], "false with data.val_fraction=0"),
        (["training.lr_schedule=plateau"], "false with training.lr_schedule=plateau"),
        (["training.strategy=multi-worker"], "false with training.strategy=multi-worker"),
    ],
)
def test_refit_refuses_settings_it_cannot_follow(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match="training.refit") as error:
        load_config(None, ["training.refit=true", *overrides])
    assert expected in str(error.value)


def test_refit_null_refits_whenever_a_run_can() -> None:
    assert load_config(None, ["training.refit=null"]).refits()
    for cannot in ("data.val_fraction=0", "training.lr_schedule=plateau", "training.strategy=multi-worker"):
        assert not load_config(None, ["training.refit=null", cannot]).refits(), cannot
    assert not load_config(None, ["training.refit=false"]).refits()


def test_refit_flag_sets_the_config_key(cli, tmp_path: Path) -> None:
    # --refit with a config that cannot refit fails on the key it set, before any data is read.
    result = cli.invoke(
        main,
        [
            "train",
            "--data",
            str(tmp_path / "nothing"),
            "--output-dir",
            str(tmp_path / "r"),
            "--refit",
            "--val-split",
            "0",
        ],
    )
    assert result.exit_code == 2
    assert "training.refit" in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kill_call", [4, 5], ids=["before-first-refit-checkpoint", "after-one-refit-epoch"])
def test_refit_killed_resumes_to_the_uninterrupted_result(
    cli, corpus_tar: Path, tmp_path: Path, kill_call: int
) -> None:
    args = ["train", "--data", str(corpus_tar), "-q", "--refit", *_sets(REFIT_OVERRIDES)]
    whole = tmp_path / "whole"
    assert cli.invoke(main, [*args, "--output-dir", str(whole)]).exit_code == 0
    killed = tmp_path / "killed"
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, str(kill_call), *args, "--output-dir", str(killed)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # Killed in the refit (fit call 4 is its first epoch, 5 its second): the held-out run
    # is finished and usable meanwhile.
    assert artifacts.is_run_dir(killed) and not (killed / artifacts.HELDOUT_DIR).exists()
    assert (killed / artifacts.REFIT_RUN_DIR).is_dir()
    resumed = cli.invoke(main, ["train", "--resume", str(killed), "-q"])
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    assert json.loads(resumed.stdout)["refit"]["epochs"] == artifacts.read_run_info(whole).manifest["refit"]["epochs"]
    assert not (killed / artifacts.REFIT_RUN_DIR).exists()
    np.testing.assert_allclose(_probabilities(killed, TEXTS), _probabilities(whole, TEXTS), atol=1e-6)
    np.testing.assert_allclose(
        _probabilities(killed / artifacts.HELDOUT_DIR, TEXTS), _probabilities(whole / artifacts.HELDOUT_DIR, TEXTS)
    )
