"""The `textlstm` command line: help, the four commands, and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES
from textlstm.cli import main

COMMANDS = ["train", "evaluate", "predict", "export", "serve"]


def _sets() -> list[str]:
    return [arg for item in TINY_OVERRIDES for arg in ("--set", item)]


def test_cli_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from textlstm.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ['train', 'evaluate', 'predict', 'export']:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "sys.exit(f'imported {heavy}' if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage: " in done.stdout


def test_cli_python_dash_m_help() -> None:
    done = subprocess.run([sys.executable, "-m", "textlstm", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert all(command in done.stdout for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_each_command_help_has_an_example(cli, command: str) -> None:
    result = cli.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert f"textlstm {command} " in result.output


def test_cli_train_evaluate_predict_export(cli, corpus_tar: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli.invoke(
        main, ["train", "--data", str(corpus_tar), "--output-dir", str(run), "-q", "--epochs", "2", *_sets()]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["output_dir"] == str(run)
    assert summary["train_examples"] + summary["val_examples"] == 200
    assert summary["epochs_run"] <= 2

    report_file = tmp_path / "report.json"
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(corpus_tar), "--output", str(report_file), "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == json.loads(report_file.read_text())
    assert report["split"] == "test" and report["examples"] == 60
    assert set(report) >= {"accuracy", "loss", "macro_f1", "per_label", "confusion_matrix", "label_names"}
    assert set(report["per_label"]["pos"]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, report["confusion_matrix"])) == 60

    result = cli.invoke(main, ["predict", str(run), "great superb", "awful dull", "-q"])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["great superb", "awful dull"]
    for line in lines:
        assert set(line) == {"text", "label", "score", "probabilities"}
        assert line["label"] in ("neg", "pos")
        assert line["score"] == pytest.approx(max(line["probabilities"].values()))
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)

    result = cli.invoke(main, ["export", str(run), "--export-dir", str(tmp_path / "exports"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "export": str(tmp_path / "exports" / "1"),
        "format": "savedmodel",
        "name": "exports",
        "version": 1,
        "top_k": 2,
    }


def test_cli_predict_reads_stdin_lines_in_order(cli, trained_run) -> None:
    texts = ["great wonderful", "", "terrible waste", "the film"]
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "-", "-q"], input="\n".join(texts) + "\n")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == texts


def _assert_one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_cli_error_missing_data(cli, tmp_path: Path) -> None:
    result = cli.invoke(main, ["train", "--data", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "r")])
    _assert_one_line_error(result, r"data source not found")
    assert not (tmp_path / "r").exists()


def test_cli_error_unknown_scheme(cli, tmp_path: Path) -> None:
    result = cli.invoke(main, ["train", "--data", "hub:foo", "--output-dir", str(tmp_path / "r")])
    _assert_one_line_error(result, r"unknown data source scheme 'hub:'")
    assert not (tmp_path / "r").exists()


def test_cli_error_unknown_set_key(cli, corpus_tar: Path, tmp_path: Path) -> None:
    result = cli.invoke(
        main, ["train", "--data", str(corpus_tar), "--output-dir", str(tmp_path / "r"), "--set", "model.units=3"]
    )
    _assert_one_line_error(result, r"unknown config key model\.units; allowed keys are: .*model\.lstm_units")
    assert not (tmp_path / "r").exists()


def test_cli_error_archive_without_class_folders(cli, tmp_path: Path) -> None:
    import tarfile

    (tmp_path / "readme.txt").write_text("x")
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "readme.txt", arcname="readme.txt")
    result = cli.invoke(main, ["train", "--data", str(archive), "--output-dir", str(tmp_path / "r")])
    _assert_one_line_error(result, r"has no class folders; expected SPLIT/LABEL/FILE")
    assert not (tmp_path / "r").exists()


def test_cli_error_output_dir_holds_another_run(cli, trained_run, corpus_tar: Path) -> None:
    before = sorted(p.name for p in trained_run.output_dir.iterdir())
    result = cli.invoke(main, ["train", "--data", str(corpus_tar), "--output-dir", str(trained_run.output_dir)])
    _assert_one_line_error(result, r"already holds a different textlstm run; .*--overwrite")
    assert sorted(p.name for p in trained_run.output_dir.iterdir()) == before


def test_cli_error_model_dir_missing_file(cli, trained_run, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained_run.output_dir, broken)
    (broken / "vocab.txt").unlink()
    result = cli.invoke(main, ["predict", str(broken), "hello"])
    _assert_one_line_error(result, r"model directory .*broken is incomplete: missing vocab\.txt")


def test_cli_error_predict_without_texts(cli, trained_run) -> None:
    result = cli.invoke(main, ["predict", str(trained_run.output_dir)])
    _assert_one_line_error(result, r"no texts to predict")
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "-"], input="")
    _assert_one_line_error(result, r"no texts to predict")


def test_cli_error_evaluate_unknown_split(cli, trained_run, corpus_tar: Path) -> None:
    result = cli.invoke(main, ["evaluate", str(trained_run.output_dir), "--data", str(corpus_tar), "--split", "dev"])
    _assert_one_line_error(result, r"split 'dev' not found")


def test_cli_error_evaluate_output_in_missing_folder(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "report.json"
    result = cli.invoke(
        main, ["evaluate", str(trained_run.output_dir), "--data", str(corpus_tar), "--output", str(out)]
    )
    _assert_one_line_error(result, r"cannot write --output; expected a file in an existing directory")


def test_cli_error_split_fixed_in_spec_conflicts(cli, trained_run) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=4):
        args = ["evaluate", str(trained_run.output_dir), "--data", "tfds:imdb_reviews:train", "--split", "test"]
        result = cli.invoke(main, args)
    _assert_one_line_error(result, r"fixes the split 'train' but --split asks for 'test'")


def test_cli_error_corrupt_export(cli, tmp_path: Path) -> None:
    export = tmp_path / "exports" / "1"
    (export / "assets").mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"not a protobuf")
    (export / "assets" / "labels.json").write_text('["neg", "pos"]')
    result = cli.invoke(main, ["predict", str(tmp_path / "exports"), "hello"])
    _assert_one_line_error(result, r"cannot load the SavedModel .*exports/1")
    (export / "saved_model.pb").write_bytes(b"")
    result = cli.invoke(main, ["predict", str(tmp_path / "exports"), "hello"])
    _assert_one_line_error(result, r"exports/1/saved_model\.pb is empty; expected the file textlstm export writes")


def test_cli_error_model_not_found(cli, tmp_path: Path) -> None:
    result = cli.invoke(main, ["predict", str(tmp_path / "missing"), "hi"])
    _assert_one_line_error(result, r"model not found")


def test_cli_train_logs_data_summaries(cli, tmp_path: Path) -> None:
    words = {"pos": "good great superb", "neg": "bad awful dull"}
    rows = [
        (f"the film was {words[lab].split()[i % 3]} number {i}", lab)
        for i in range(30)
        for lab in [("pos", "neg")[i % 2]]
    ]
    rows += rows[:6]  # six duplicate texts
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))
    run = tmp_path / "run"
    # With the naive Bayes bag, so that only the texts' length keeps the preset's hint away.
    sets = [*_sets(), "--set", "model.naive_bayes_bag=true", "--set", "model.ngram_mix=tuned"]
    args = ["train", "--data", str(data), "--output-dir", str(run), "--val-split", "0", "--epochs", "1", *sets]
    result = cli.invoke(main, args)
    assert result.exit_code == 0, result.stderr
    logged = [line.split("training data: ", 1)[1] for line in result.stderr.splitlines() if "training data: " in line]
    assert len(logged) == 1
    summary = json.loads(logged[0])
    assert summary == json.loads((run / "manifest.json").read_text())["data"]["train_summary"]
    assert summary["examples"] == 36 and summary["duplicate_texts"] == 6
    assert summary["labels"] == {"neg": 18, "pos": 18}
    assert summary["length_tokens"]["p100"] == 6 and summary["empty_texts"] == 0
    # No hold-out: the log says why instead of summarising zero examples.
    assert "validation data: none (data.val_fraction=0.0: no epoch or mix is chosen on held-out data)" in result.stderr
    assert "has no effect without the n-gram bag" not in result.stderr
    assert "may suit them" not in result.stderr  # p100 6 tokens, under the LSTM's 20
    # Without the bag model.lstm_length does not window the LSTM, and the log says so.
    plain = cli.invoke(main, [*args[:4], str(tmp_path / "plain"), *args[5:], "--set", "model.ngram_order=0"])
    assert plain.exit_code == 0, plain.stderr
    said = [line for line in plain.stderr.splitlines() if "has no effect without the n-gram bag" in line]
    assert len(said) == 1 and "model.lstm_length=20" in said[0] and "vectorizer.max_length=40 tokens" in said[0], said


def test_cli_train_preset_is_saved_in_the_config(cli, corpus_tar: Path, tmp_path: Path) -> None:
    # The tiny model with the default three members, so the preset's table is built; the
    # tiny corpus's texts run past its 20-token LSTM window, as long documents do.
    sets = [*_sets(), "--set", "model.naive_bayes_bag=true", "--set", "model.ngram_mix=tuned"]
    run = tmp_path / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(run), "--epochs", "1", *sets]
    hint = "the preset long-documents may suit them"
    result = cli.invoke(main, [*args, "--preset", "long-documents"])
    assert result.exit_code == 0, result.stderr
    assert "preset long-documents: model.naive_bayes_buckets=2097152" in result.stderr
    assert hint not in result.stderr
    assert json.loads((run / "config.json").read_text())["model"]["naive_bayes_buckets"] == 2**21
    # A model's directory holds everything: it loads and predicts without the preset.
    predicted = cli.invoke(main, ["predict", str(run), "a great film"])
    assert predicted.exit_code == 0, predicted.stderr
    # Without the preset, the log points to it: a tenth of these texts outrun the LSTM.
    plain = cli.invoke(main, [*args, "--overwrite"])
    assert plain.exit_code == 0, plain.stderr
    said = [line for line in plain.stderr.splitlines() if hint in line]
    assert len(said) == 1 and "longer than the LSTM's 20 tokens" in said[0], plain.stderr
    assert json.loads((run / "config.json").read_text())["model"]["naive_bayes_buckets"] == 2**19
    bad = cli.invoke(main, [*args, "--overwrite", "--preset", "short-texts"])
    assert bad.exit_code == 2 and "Invalid value for '--preset': 'short-texts' is not 'long-documents'" in bad.stderr


def test_cli_interrupt_inside_tensorflow_ends_as_ctrl_c(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from textlstm import inspection

    def interrupted(*args, **kwargs) -> None:
        # What a SIGTERM during TensorFlow's C++-to-Python error conversion raised once.
        raise RuntimeError(
            "pybind11::error_already_set: MISMATCH of original and normalized active exception types: "
            "ORIGINAL InvalidArgumentError REPLACED BY KeyboardInterrupt: <EMPTY MESSAGE>"
        )

    monkeypatch.setattr(inspection, "inspect_data", interrupted)
    data = tmp_path / "d.csv"
    data.write_text("text,label\ngreat,pos\nawful,neg\n")
    result = cli.invoke(main, ["data", "inspect", str(data)])
    assert result.exit_code == 1 and result.stderr.strip() == "Aborted!", result.stderr

    def other(*args, **kwargs) -> None:
        raise RuntimeError("some other failure")

    monkeypatch.setattr(inspection, "inspect_data", other)  # any other RuntimeError stays itself
    assert isinstance(cli.invoke(main, ["data", "inspect", str(data)]).exception, RuntimeError)
