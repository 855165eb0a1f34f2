"""Bad input through the CLI: every case ends in one `error:` line naming the problem and
what was expected, exit code 2, and no output directory or report left behind."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from tests.conftest import TINY_OVERRIDES
from textlstm.cli import main

GOOD_CSV = "text,label\n" + "".join(f'"text number {i}",{"ab"[i % 2]}\n' for i in range(20))


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return make


def _truncated_gzip(folder: Path) -> Path:
    packed = gzip.compress(GOOD_CSV.encode() * 2000)
    return _write("cut.csv.gz", packed[: len(packed) // 2])(folder)


def _truncated_tar(folder: Path) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i in range(200):
            data = f"document {i} ".encode() * 50
            info = tarfile.TarInfo(f"corpus/train/{'ab'[i % 2]}/{i}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return _write("cut.tar.gz", raw[: len(raw) // 3])(folder)


def _no_class_folders(folder: Path) -> Path:
    root = folder / "flat"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.txt").write_text("a document")
    return root


def _class_folders(folder: Path, first: bytes | None = None) -> Path:
    root = folder / "corpus"
    for i in range(6):
        (root / "train" / "pos neg".split()[i % 2]).mkdir(parents=True, exist_ok=True)
        text = first if i == 0 and first is not None else f"document {i}".encode()
        (root / "train" / "pos neg".split()[i % 2] / f"{i}.txt").write_bytes(text)
    return root


CASES = [
    ("empty file", _write("e.csv", ""), [], r"e\.csv is empty; expected a csv file"),
    ("header-only CSV", _write("h.csv", "text,label\n"), [], r"has a header but no rows; expected at least one"),
    (
        "missing column",
        _write("m.csv", "body,tag\nx,a\n"),
        [],
        r"has no text column 'text'; expected one of \['body', 'tag'\]",
    ),
    ("missing label column", _write("m2.csv", "text,tag\nx,a\n"), [], r"no label column 'label'; expected one of"),
    ("unknown extension", _write("d.xml", "<a/>"), [], r"unsupported data file .*d\.xml.*expected .*--format one of"),
    ("unknown format", _write("d.csv", GOOD_CSV), ["--format", "xlsx"], r"unknown --format; expected one of"),
    (
        "invalid bytes (lines)",
        _write("t.txt", b"a fine\nb caf\xe9\n"),
        ["--format", "lines"],
        r"t\.txt is not valid utf-8 at byte 12 \(line 2\); .*try --encoding latin-1",
    ),
    (
        "invalid bytes (csv)",
        _write("b.csv", b"text,label\ncaf\xe9,a\nx,b\n"),
        [],
        r"b\.csv is not valid utf-8 .*try --encoding latin-1",
    ),
    (
        "empty text with --strict",
        _write("s.csv", 'text,label\n"x",a\n"",b\n'),
        ["--strict"],
        r"row 3 has an empty text; expected text in every row \(--strict\)",
    ),
    ("missing label", _write("l.csv", "text,label\nx,a\ny,\n"), [], r"row 3 has no label; expected a label"),
    (
        "null label in JSONL",
        _write("n.jsonl", '{"text": "x", "label": "a"}\n{"text": "y", "label": null}\n'),
        [],
        r"row 2 has no label",
    ),
    (
        "a row short of its label",
        _write("short.csv", "text,label\nx,a\n\n  \ny\n"),
        [],
        r"short\.csv row 5 has no label",
    ),
    (
        "a row with a field too many",
        _write("long.csv", "text,label\nx,a\n\ny,b,c\n"),
        [],
        r"long\.csv line 4 has 3 fields; expected at most 2, like the header",
    ),
    (
        "single class",
        _write("one.csv", "text,label\nx,a\ny,a\n"),
        [],
        r"has 1 label\(s\) \['a'\]; expected at least 2 to classify",
    ),
    (
        "binary file",
        _write("bin.csv", bytes([0xFF, 0xFE, 0x00, 0x81]) + bytes(range(256)) * 8),
        [],
        r"bin\.csv is not valid utf-8",
    ),
    ("truncated gzip", _truncated_gzip, [], r"cannot read .*cut\.csv\.gz as csv: Compressed file ended"),
    ("truncated tar", _truncated_tar, [], r"cannot read archive .*cut\.tar\.gz: .*expected a valid tar"),
    ("corrupt zip", _write("c.zip", b"PK\x03\x04 not really a zip"), [], r"cannot read archive .*expected a valid zip"),
    ("no class folders", _no_class_folders, [], r"flat has no class folders; expected SPLIT/LABEL/FILE"),
    (
        "duplicate columns",
        _write("dup.csv", "text,text,label\na,b,c\n"),
        [],
        r"repeats the column name\(s\) \['text'\]; expected unique names",
    ),
    (
        "JSONL line not JSON",
        _write("j.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{oops\n'),
        [],
        r"j\.jsonl line 3 is not valid JSON .*; expected one JSON object per line",
    ),
    (
        "JSONL line not an object",
        _write("k.jsonl", '{"text": "a", "label": "x"}\n[1, 2]\n'),
        [],
        r"k\.jsonl line 2 is a JSON list, not an object",
    ),
    (
        "label regex does not match",
        _write("r.txt", "DESC:x how ?\nwhat ?\n"),
        ["--format", "lines", "--label-regex", "^([A-Z]+):"],
        r"row 2: --label-regex .* does not match; received 'what'",
    ),
    (
        "label regex without group",
        _write("g.txt", "A x\n"),
        ["--format", "lines", "--label-regex", "^[A-Z]+"],
        r"--label-regex needs a group that captures the label",
    ),
    (
        "fastText line without label",
        _write("f.ft", "__label__a fine\nno label here\n"),
        ["--format", "fasttext"],
        r"line 2 has no __label__ label; expected '__label__X text'",
    ),
    (
        "bad label map",
        _write("d.csv", GOOD_CSV),
        ["--label-map", "1=World,2"],
        r"bad --label-map item; expected OLD=NEW",
    ),
    ("same text and label column", _write("d.csv", GOOD_CSV), ["--label-column", "text"], r"is both text and label"),
    (
        "label sets in a single-label run",
        _write("ml.jsonl", '{"text": "a", "label": ["x", "y"]}\n{"text": "b", "label": ["y"]}\n'),
        ["--set", "data.multi_label=false"],
        r"ml\.jsonl row 1 has 2 labels \['x', 'y'\]; expected one label per example",
    ),
    (
        "a backslash and t typed as the delimiter",
        _write("t.tsv", "text\tlabel\nx\ta\n"),
        ["--delimiter", "\\t"],
        r"invalid --delimiter; expected one character other than a quote or line break .*; received '\\\\t'",
    ),
    (
        "a file's reading option given for a folder",
        _class_folders,
        ["--label-map", "pos=good", "--text-column", "review", "--no-header"],
        r"--text-column, --no-header do not apply to the folder .*; expected only --encoding and --label-map",
    ),
    (
        "a label map naming a folder the corpus lacks",
        _class_folders,
        ["--label-map", "positive=good"],
        r"--label-map renames \['positive'\], which .*corpus has no class folder for; expected names among \['neg', 'pos'\]",
    ),
    (
        "an unknown encoding for a folder",
        _class_folders,
        ["--encoding", "klingon"],
        r"unknown --encoding; expected a Python codec name; received 'klingon'",
    ),
    (
        "a codec that is not a text encoding for a folder",
        _class_folders,
        ["--encoding", "rot13"],
        r"unknown --encoding; expected a Python codec name; received 'rot13'",
    ),
    (
        "a codec that fails on any bytes for a folder",
        _class_folders,
        ["--encoding", "punycode"],
        r"unknown --encoding; expected a Python codec name; received 'punycode'",
    ),
    (
        "a latin-1 document in a folder read as UTF-8",
        lambda folder: _class_folders(folder, b"caf\xe9 au lait"),
        [],
        r"0\.txt is not valid UTF-8 \(byte 3\); expected text in that encoding, try --encoding latin-1",
    ),
    ("infinite epochs", _write("d.csv", GOOD_CSV), ["--set", "training.epochs=Infinity"], r"must be an integer"),
    ("NaN epochs", _write("d.csv", GOOD_CSV), ["--set", "training.epochs=NaN"], r"must be an integer"),
    (
        "an integer beyond the float range for a float",
        _write("d.csv", GOOD_CSV),
        ["--set", "training.learning_rate=1" + "0" * 400],
        r"training.learning_rate must be a finite number",
    ),
    (
        "infinite clipnorm",
        _write("d.csv", GOOD_CSV),
        ["--set", "training.clipnorm=Infinity"],
        r"training.clipnorm must be a finite number; expected a finite number; received inf",
    ),
    ("missing source", lambda folder: folder / "nothing.csv", [], r"data source not found; expected an existing file"),
    ("unknown scheme", lambda folder: Path("s3:bucket/x"), [], r"unknown data source scheme 's3:'"),
    (
        "not an archive",
        _write("fake.tar.gz", "not an archive"),
        [],
        r"cannot read archive .*fake\.tar\.gz: file could not be opened successfully; expected a valid tar",
    ),
    (
        "a diverging run",
        _write("d.csv", GOOD_CSV),
        ["--epochs", "1", "--set", "training.learning_rate=1e30", "--set", "training.clipnorm=null"],
        r"training diverged in epoch 1 \(loss = nan\); expected a finite loss \(lower training\.learning_rate",
    ),
]


@pytest.mark.parametrize(("make", "args", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_train(cli, tmp_path: Path, make: Callable[[Path], Path], args: list[str], message: str) -> None:
    data = make(tmp_path)
    out = tmp_path / "run"
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    result = cli.invoke(main, ["train", "--data", str(data), "--output-dir", str(out), "-q", *sets, *args])
    assert result.exit_code == 2, (result.exit_code, result.stderr, repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_input_unknown_label_at_evaluate(cli, trained_run, tmp_path: Path) -> None:
    data = tmp_path / "other.csv"
    data.write_text('text,label\n"so so",mixed\n"great",pos\n')
    report = tmp_path / "report.json"
    result = cli.invoke(main, ["evaluate", str(trained_run.output_dir), "--data", str(data), "--output", str(report)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {data} has labels the model does not know: ['mixed']; expected labels among ['neg', 'pos']"
    )
    assert not report.exists()


def test_a_run_trained_with_a_label_map_names_it_when_evaluate_lacks_it(cli, tmp_path: Path) -> None:
    folder = _class_folders(tmp_path, b"caf\xe9 document")
    reading = ["--label-map", "pos=good,neg=bad", "--encoding", "latin-1"]
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    run = tmp_path / "run"
    trained = cli.invoke(
        main, ["train", "--data", str(folder), "--output-dir", str(run), "-q", *sets, "--epochs", "1", *reading]
    )
    assert trained.exit_code == 0, trained.stderr
    assert json.loads((run / "labels.json").read_text()) == ["bad", "good"]
    evaluated = cli.invoke(main, ["evaluate", str(run), "--data", str(folder), "--split", "train", "-q", *reading])
    assert evaluated.exit_code == 0, evaluated.stderr
    result = cli.invoke(
        main, ["evaluate", str(run), "--data", str(folder), "--split", "train", "--encoding", "latin-1"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "has labels the model does not know: ['neg', 'pos']; expected labels among ['bad', 'good']"
        " (the model was trained with --label-map neg=bad,pos=good)"
    ), result.stderr
    # With no reading option at all, the class folders are read as in training.
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(folder), "--split", "train", "-q"])
    assert result.exit_code == 0 and json.loads(result.stdout)["examples"] == 6, result.stderr


@pytest.mark.parametrize(
    ("name", "content", "flag", "message"),
    [
        ("c.yaml", b"\xff\xfemodel: {}", "--config", r"config file .*c\.yaml is not valid UTF-8 \(byte 0\)"),
        ("c2.yaml", b"training:\n  epochs: .inf\n", "--config", r"training.epochs must be an integer"),
        (
            "c3.yaml",
            b"training:\n  epochs: [1\n",
            "--config",
            r"could not be parsed as YAML: while parsing a flow sequence .* line 2.*; expected valid YAML",
        ),
        ("v.txt", b"caf\xe9\nfoo\n", "--vocab", r"vocabulary file .*v\.txt is not valid UTF-8 \(byte 3\)"),
    ],
)
def test_bad_config_and_vocabulary_files(
    cli, tmp_path: Path, name: str, content: bytes, flag: str, message: str
) -> None:
    data = _write("d.csv", GOOD_CSV)(tmp_path)
    (tmp_path / name).write_bytes(content)
    out = tmp_path / "run"
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    result = cli.invoke(
        main, ["train", "--data", str(data), "--output-dir", str(out), "-q", *sets, flag, str(tmp_path / name)]
    )
    assert result.exit_code == 2, (result.exit_code, result.stderr, repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), result.stderr
    assert not out.exists()


def test_overwrite_refuses_a_run_holding_other_files(cli, trained_run, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run.output_dir, run)
    (run / "notes.txt").write_text("mine")
    (run / "report").mkdir()
    # Left by a file browser, and by a write a killed process did not finish: not the user's.
    (run / ".DS_Store").write_bytes(b"")
    (run / ".manifest.json.tmp").write_text("{")
    data = _write("d.csv", GOOD_CSV)(tmp_path)
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    result = cli.invoke(main, ["train", "--data", str(data), "--output-dir", str(run), "--overwrite", "-q", *sets])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: output directory {run} holds files textlstm did not write (notes.txt, report), which --overwrite "
        "would delete with the old run; expected only a run's own files (move them out first)"
    )
    assert (run / "notes.txt").read_text() == "mine" and (run / "manifest.json").is_file()


def test_evaluate_output_refuses_an_existing_file(cli, trained_run, tmp_path: Path) -> None:
    data = _write("d.csv", "text,label\ngreat,pos\nawful,neg\n")(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    result = cli.invoke(main, ["evaluate", str(trained_run.output_dir), "--data", str(data), "--output", str(precious)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {precious} already exists; expected a new file (remove it or choose another --output)"
    )
    assert precious.read_text() == "keep"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda run: (run / "labels.json").write_text('["neg", "pos", "meh"]'),
            "labels.json names 3 labels but the model outputs 2 probabilities; expected one label name per output",
        ),
        (
            lambda run: (run / "model.keras").write_text("junk"),
            "model.keras: not a .keras archive (a zip file); expected the file textlstm train writes",
        ),
        (
            # Exports copy vocab.txt: a TFLite tokenizer would read the damaged file.
            lambda run: (run / "vocab.txt").write_text(
                "\n".join((run / "vocab.txt").read_text().split("\n")[:-4]) + "\n"
            ),
            "vocab.txt does not match the vocabulary inside model.keras",
        ),
    ],
)
def test_damaged_run_directory_is_named_at_load(cli, trained_run, tmp_path: Path, damage, message: str) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run.output_dir, run)
    damage(run)
    data = _write("d.csv", "text,label\ngreat,pos\nawful,neg\n")(tmp_path)
    export = ["export", str(run), "--export-dir", str(tmp_path / "exp"), "--format", "tflite"]
    for args in (["predict", str(run), "great film"], ["evaluate", str(run), "--data", str(data)], export):
        result = cli.invoke(main, args)
        assert result.exit_code == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_a_failed_datasets_read_is_reported_once(tmp_path: Path) -> None:
    data = _write("latin1.csv", b"text,label\ncaf\xe9,a\nx,b\n")(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "textlstm", "data", "inspect", str(data)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert "latin1.csv is not valid utf-8" in done.stderr and "try --encoding latin-1" in done.stderr
    # datasets logs the failure itself before raising it; the CLI's error line is enough.
    assert "Failed to read file" not in done.stderr, done.stderr


def _python(*args: str, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a fresh Python with TensorFlow's log level at textlstm's default (1)."""
    env = kwargs.pop("env", {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"})
    return subprocess.run([sys.executable, *args], timeout=timeout, env=env, **kwargs)


def _stand_in_tensorflow(folder: Path, body: str) -> str:
    """Write a fake ``tensorflow`` package of ``body`` under ``folder``; return the code
    line that puts it first on sys.path."""
    (folder / "tensorflow").mkdir()
    (folder / "tensorflow" / "__init__.py").write_text(body)
    return f"import sys; sys.path.insert(0, {str(folder)!r})\n"


def test_an_error_is_the_only_line_on_stderr(tmp_path: Path) -> None:
    # TensorFlow's C++ start-up printed INFO lines (oneDNN, CUDA) before the error line,
    # whatever TF_CPP_MIN_LOG_LEVEL said.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    args = ["-m", "textlstm", "predict", str(tmp_path / "missing") + "/", "great film"]
    done = _python(*args, capture_output=True, text=True, env=env)
    assert done.returncode == 2
    # A host's own TensorFlow warnings and errors (W or E lines: a GPU driver's, say) may remain.
    lines = [line for line in done.stderr.splitlines() if not re.match(r"[WE]\d{4} ", line)]
    assert lines == [
        f"error: model not found; expected a run directory or an export (or a sentence, for the bundled model);"
        f" received '{tmp_path / 'missing'}/'"
    ], done.stderr


def test_a_command_runs_with_stderr_closed(tmp_path: Path) -> None:
    # A service or `2>&-` starts Python without file descriptor 2 (sys.stderr is None): the
    # start-up filter must not crash the command, which then fails only for its own reason.
    args = ["-m", "textlstm", "predict", str(tmp_path / "missing") + "/", "great film"]
    done = _python(*args, stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert done.returncode == 2


def test_a_crash_while_tensorflow_loads_keeps_its_last_lines(tmp_path: Path) -> None:
    # The start-up filter must not swallow what a dying TensorFlow prints (a CPU without the
    # instructions it was built for): a stand-in module prints a notice and a fatal line, then aborts.
    code = _stand_in_tensorflow(
        tmp_path,
        "import os\n"
        "os.write(2, b'I0000 00:00:1.0  1 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'F0000 00:00:1.0  1 cpu_feature_guard.cc:1] This CPU lacks AVX.\\n')\n"
        "os.abort()\n",
    )
    code += "from textlstm.cli import main; main()"
    done = _python("-c", code, "predict", "great film", capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.splitlines() == ["F0000 00:00:1.0  1 cpu_feature_guard.cc:1] This CPU lacks AVX."], done.stderr


def test_the_start_up_filter_drops_notices_and_keeps_the_rest(tmp_path: Path) -> None:
    # A stand-in tensorflow prints what the real one may: a failed cuInit with a driver
    # installed (kept: it says why the GPU is not used), the no-driver notice, the cuInit
    # failure that follows it (dropped), a warning and a last line without a newline (kept).
    lines = [
        "E0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        "I0000 00:00:1.0  1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
        "E0000 00:00:1.0  1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        "W0000 00:00:1.0  1 some.cc:1] a real warning",
        "a last line",
    ]
    code = _stand_in_tensorflow(
        tmp_path,
        "import logging, os, types\n"
        f"os.write(2, {chr(10).join(lines).encode()!r})\n"
        "config = types.SimpleNamespace(list_physical_devices=lambda: [])\n"
        "get_logger = lambda: logging.getLogger('fake-tf')\n",
    )
    code += "from textlstm.runtime import import_tensorflow_quietly; import_tensorflow_quietly()"
    done = _python("-c", code, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [lines[0], lines[3], lines[4]]


def test_the_start_up_filter_leaves_tensorflow_unconfigured() -> None:
    # Multi-worker training configures TensorFlow's runtime after the import (collective
    # ops, threads), which fails once any op has run: the filter's window must run none.
    code = (
        "from textlstm.runtime import import_tensorflow_quietly; import_tensorflow_quietly()\n"
        "import tensorflow as tf; tf.config.threading.set_inter_op_parallelism_threads(2)"
    )
    done = _python("-c", code, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_batch_size_beyond_int32_is_refused_before_loading(cli, tmp_path: Path, command: str) -> None:
    # A 21-digit batch size used to reach TensorFlow and fail there with a traceback.
    args = [command, str(tmp_path / "missing-model"), "--batch-size", "100000000000000000000"]
    result = cli.invoke(main, args + (["--data", str(tmp_path / "x.csv")] if command == "evaluate" else ["hi"]))
    assert result.exit_code == 2
    assert "'--batch-size': 100000000000000000000 is not in the range 1<=x<=2147483647" in result.output


def _fail_fast_cases(folder: Path) -> list[tuple[list[str], str]]:
    data = _write("good.csv", GOOD_CSV)(folder)
    taken = _write("taken.jsonl", "{}\n")(folder)
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("mine")
    bundled = str(Path(__file__).resolve().parents[1] / "textlstm" / "pretrained" / "imdb")
    missing = str(folder / "missing")
    exported = folder / "exported"
    (exported / "1").mkdir(parents=True)
    (exported / "1" / "saved_model.pb").write_bytes(b"")
    return [
        (["predict", missing + "/", "great film"], r"model not found; .*received '.*missing/'"),
        (["predict", str(folder / "notes"), "great film"], r"notes is neither a run directory .*nor an export"),
        (["predict", bundled, "--input", missing], r"input file not found; .*received '.*missing'"),
        (["predict", bundled, "x", "--output", str(taken)], r"taken\.jsonl already exists; expected a new file"),
        (["evaluate", missing, "--data", str(data)], r"model directory not found; .*received '.*missing'"),
        (["evaluate", bundled, "--data", missing + ".csv"], r"data source not found; .*received '.*missing\.csv'"),
        (["evaluate", bundled, "--data", str(data), "--output", str(taken)], r"taken\.jsonl already exists"),
        (["export", missing, "--export-dir", str(folder / "exports")], r"model directory not found"),
        (["serve", missing], r"export folder not found; .*received '.*missing'"),
        (["serve", missing, "--poll-seconds", "nan"], r"invalid --poll-seconds; expected a finite number >= 0\.05"),
        (["serve", missing, "--batch-delay-ms", "inf"], r"invalid --batch-delay-ms; expected a finite number"),
        (["serve", missing, "--max-batch", "1025"], r"invalid --max-batch; expected an integer in \[1, 1024\]"),
        (["export", str(exported), "--export-dir", str(folder / "e")], r"is an export, not a run directory"),
        (["data", "inspect", missing + ".csv"], r"data source not found"),
        (["data", "inspect", str(data), "--model", missing], r"model directory not found"),
        (["train", "--data", missing + ".csv", "--output-dir", str(folder / "run")], r"data source not found"),
        (["train", "--data", str(data), "--output-dir", str(folder / "notes")], r"notes is not empty and holds no"),
        (
            ["train", "--data", str(data), "--output-dir", str(folder / "run"), "--set", "model.nope=1"],
            r"unknown config key",
        ),
        (
            ["train", "--data", str(data), "--output-dir", str(taken / "run")],
            r"taken\.jsonl is a file; expected a folder",
        ),
        (["train", "--data", str(data), "--output-dir", ""], r"empty --output-dir"),
        (
            ["train", "--data", str(data), "--output-dir", str(folder / "run"), "--init-from", bundled]
            + ["--embeddings", str(data)],
            r"model\.embeddings_file; expected null with finetune\.init_from \(--init-from\) unless",
        ),
        (
            ["train", "--data", str(data), "--output-dir", str(folder / "run"), "--set", "vectorizer.vocab_file="],
            r"invalid value for vectorizer\.vocab_file; expected null or a file path; received ''",
        ),
        (["evaluate", bundled, "--data", str(data), "--report", str(taken / "r")], r"cannot create --report"),
    ]


def test_argument_errors_come_before_tensorflow_is_imported(tmp_path: Path) -> None:
    # Importing TensorFlow takes seconds: a mistyped path, an output that exists or a bad
    # --set must fail without it. A stand-in tensorflow ends any process that imports it.
    code = _stand_in_tensorflow(tmp_path, "raise SystemExit('tensorflow was imported')\n")
    code += "from textlstm.cli import main; main()"
    for args, message in _fail_fast_cases(tmp_path):
        done = _python("-c", code, *args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and re.match(f"error: .*{message}", done.stderr), (args, done.stderr)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    assert not (tmp_path / "run").exists() and not (tmp_path / "exports").exists()


def test_evaluate_reading_error_is_one_line_without_tracebacks(trained_run, tmp_path: Path) -> None:
    # Raised inside tf.data, the error used to be logged by TensorFlow with two Python
    # tracebacks (about 90 lines) before textlstm's own line.
    for label, content in (("pos", b"caf\xe9 great"), ("neg", b"a dull film")):
        (tmp_path / "corpus" / label).mkdir(parents=True)
        (tmp_path / "corpus" / label / "1.txt").write_bytes(content)
    args = ["-m", "textlstm", "evaluate", str(trained_run.output_dir), "--data", str(tmp_path / "corpus")]
    done = _python(*args, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1].startswith("error: ") and "1.txt is not valid UTF-8" in done.stderr


def test_python_api_takes_path_data_and_names_bad_arguments(trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    # A pathlib.Path for data crashed (str methods on it); dicts where objects are expected,
    # batch_size=0 and reading options a TFDS dataset ignores failed late or silently.
    import textlstm
    from textlstm.errors import DataError, ExportError, InputError, ModelDirError

    report = textlstm.evaluate(trained_run.output_dir, corpus_tar, split="test")
    assert report["data"] == str(corpus_tar) and report["examples"] > 0
    cases = [
        (lambda: textlstm.evaluate(trained_run.output_dir, corpus_tar, batch_size=0), InputError, "invalid batch size"),
        (lambda: textlstm.evaluate(trained_run.output_dir, 5), DataError, "bad data source; expected a str or pathlib"),
        (
            lambda: textlstm.evaluate(trained_run.output_dir, corpus_tar, read_options={"label_column": "y"}),
            InputError,
            r"bad read_options; expected a textlstm\.ReadOptions",
        ),
        (
            lambda: textlstm.train(corpus_tar, tmp_path / "r", {"training": {"epochs": 1}}),
            InputError,
            r"bad config; expected a textlstm\.Config",
        ),
        (
            lambda: textlstm.inspect_data("tfds:imdb_reviews", read_options=textlstm.ReadOptions(label_sep="|")),
            DataError,
            r"--label-sep does not apply to the TFDS dataset tfds:imdb_reviews",
        ),
        (
            lambda: textlstm.export(trained_run.output_dir, tmp_path / "e", version=True),
            ExportError,
            r"invalid version; expected auto, None or an integer >= 1 \(int or str\); received True",
        ),
        (lambda: textlstm.export(trained_run.output_dir, tmp_path / "e", top_k="2"), ExportError, "invalid --top-k"),
        (lambda: textlstm.load_predictor(trained_run.output_dir).configure(top_k="2"), InputError, "invalid --top-k"),
        (lambda: textlstm.predict(trained_run.output_dir, None), InputError, "texts must be an iterable of strings"),
        (lambda: textlstm.predict(None, ["x"]), ModelDirError, r"bad model argument; expected a run directory or"),
        (lambda: textlstm.evaluate(None, corpus_tar), ModelDirError, r"bad model argument; expected a run directory"),
        (lambda: textlstm.evaluate(trained_run.output_dir, corpus_tar, output=5), InputError, r"bad output; expected"),
        (lambda: textlstm.train(corpus_tar, 5), InputError, r"bad output_dir; expected a directory to create"),
        (lambda: textlstm.export(trained_run.output_dir, 5), ExportError, r"bad export_dir; expected a folder"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()
    # NumPy numbers are numbers; a Path for --against is a data source like any other.
    predictor = textlstm.load_predictor(trained_run.output_dir).configure(top_k=np.int64(1), threshold=np.float32(0.3))
    assert predictor.top_k == 1
    facts = textlstm.inspect_data(corpus_tar, split="train", against=corpus_tar, against_split="test")
    assert json.loads(json.dumps(facts))["against"]["data"] == str(corpus_tar)
