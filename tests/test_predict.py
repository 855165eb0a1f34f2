"""`predict` at scale: stdin as it arrives, files in three formats, ids, top-k,
thresholds, TSV, output files written whole or not at all."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

import textlstm
from textlstm.cli import main
from textlstm.errors import InputError
from textlstm.predict_io import RecordWriter
from textlstm.prediction import predict_command

TEXTS = ["great superb film", "awful boring waste", "", "the " * 300 + "good", "dull", "loved it, brilliant"]


def _wait_line(proc: subprocess.Popen, seconds: float = 300) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    assert ready, "no result line arrived"
    return proc.stdout.readline()


def test_predict_stdin_answers_each_line_as_it_arrives(trained_run) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "textlstm", "predict", str(trained_run.output_dir), "-", "-q"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        # The second line is written only after the first result came back: a tool that
        # waited for a full batch or for EOF would never answer.
        proc.stdin.write("great superb film\n")
        proc.stdin.flush()
        first = json.loads(_wait_line(proc))
        proc.stdin.write("awful boring waste\n")
        proc.stdin.flush()
        second = json.loads(_wait_line(proc))
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    assert [first["text"], second["text"]] == ["great superb film", "awful boring waste"]
    assert [first["label"], second["label"]] == ["pos", "neg"]


@pytest.mark.parametrize("users_setting", [None, "1"])
def test_predict_texts_in_a_fresh_process_answer_as_the_api_does(trained_run, users_setting: str | None) -> None:
    # TEXT arguments favour start-up: oneDNN off (TF_ENABLE_ONEDNN_OPTS=0) unless the user
    # set it. Either way the answers are the in-process API's.
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if users_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = users_setting
    texts = ["great superb film", "awful boring waste"]
    done = subprocess.run(
        [sys.executable, "-m", "textlstm", "predict", str(trained_run.output_dir), *texts, "-v"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert ("textlstm: TF_ENABLE_ONEDNN_OPTS=0" in done.stderr) == (users_setting is None)
    fresh = [json.loads(line) for line in done.stdout.splitlines()]
    expected = textlstm.predict(trained_run.output_dir, texts)
    assert [r["label"] for r in fresh] == [r["label"] for r in expected] == ["pos", "neg"]
    for got, want in zip(fresh, expected, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_predict_jsonl_file_with_ids_top_k_and_output(cli, trained_run, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"doc": f"d{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "out.jsonl"
    args = ["predict", str(trained_run.output_dir), "--input", str(source), "--text-key", "body", "--id-key", "doc"]
    result = cli.invoke(main, [*args, "--top-k", "2", "--output", str(out), "--batch-size", "2", "-q"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["texts"] == len(TEXTS) and summary["output"] == str(out) and summary["texts_per_second"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = textlstm.predict(trained_run.output_dir, TEXTS)
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(len(TEXTS))]
    assert [r["text"] for r in rows] == TEXTS  # order kept although batches are sorted by length
    for row, want in zip(rows, expected, strict=True):
        assert row["label"] == want["label"]
        assert list(row["probabilities"].values()) == pytest.approx(list(want["probabilities"].values()), abs=1e-5)
        assert [t["label"] for t in row["top_k"]][0] == want["label"]
        assert row["top_k"][0]["score"] >= row["top_k"][1]["score"]

    before = out.read_bytes()
    result = cli.invoke(main, [*args, "--output", str(out)])
    assert result.exit_code == 2 and "already exists; expected a new file" in result.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no temporary left


def test_predict_csv_to_tsv_and_text_files(cli, trained_run, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('id,review\n1,"great, superb film"\n2,"awful\tboring\nwaste"\n')
    result = cli.invoke(
        main,
        ["predict", str(trained_run.output_dir), "--input", str(source), "--text-key", "review", "--id-key", "id"]
        + ["--output-format", "tsv", "-q"],
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "id\tlabel\tscore\tneg\tpos\ttext"
    cells = [line.split("\t") for line in lines[1:]]
    assert [c[0] for c in cells] == ["1", "2"] and all(len(c) == 6 for c in cells)
    assert cells[1][5] == "awful boring waste"  # tab and line break folded, columns intact
    assert abs(float(cells[0][3]) + float(cells[0][4]) - 1) < 1e-5

    long_review = tmp_path / "long.csv"
    long_review.write_text('\ufefftext\n"' + "great " * 40_000 + '"\n')  # a BOM and a 240 kB field
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "--input", str(long_review), "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "pos"

    plain = tmp_path / "in.txt"
    plain.write_text("\n".join(TEXTS) + "\n")
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "--input", str(plain), "--threshold", "0", "-q"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    assert all(r["labels"] == ["neg", "pos"] for r in rows)  # every label reaches threshold 0


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({}, ["--input", "missing.jsonl"], "input file not found; expected an existing file"),
        ({"sub/a.txt": "x\n"}, ["--input", "sub"], "--input is a directory; expected a file; received 'sub'"),
        (
            {"a.jsonl": '{"text": "x"}\n{"body": "y"}\n'},
            ["--input", "a.jsonl"],
            "line 2 has no --text-key 'text'; expected one of ['body']",
        ),
        ({"b.jsonl": '{"text": "x"}\n{oops\n'}, ["--input", "b.jsonl"], "b.jsonl line 2 is not valid JSON"),
        (
            {"c.jsonl": '{"text": 5}\n'},
            ["--input", "c.jsonl"],
            "'text' is not a string; expected a string; received 'int'",
        ),
        (
            {"d.csv": "id,body\n1,x\n"},
            ["--input", "d.csv"],
            "row 2 has no --text-key 'text'; expected one of ['id', 'body']",
        ),
        ({"e.txt": "x\n"}, ["--input", "e.txt", "--id-key", "id"], "--id-key needs --input-format jsonl or csv"),
        ({"k.txt": "x\n"}, ["--input", "k.txt", "--text-key", "body"], "--text-key needs --input-format jsonl or csv"),
        ({}, ["some text", "--text-key", "body"], "--text-key needs --input-format jsonl or csv"),
        ({"f.txt": "x\n"}, ["--input", "f.txt", "some text"], "give texts as arguments or --input FILE, not both"),
        ({"g.txt": ""}, ["--input", "g.txt"], "no texts to predict"),
        ({"h.txt": b"caf\xe9\n"}, ["--input", "h.txt"], "h.txt is not valid UTF-8 at byte 3 (line 1)"),
        ({}, ["x", "--threshold", "1.5"], "invalid --threshold; expected a probability in [0, 1]; received 1.5"),
        ({}, ["x", "--top-k", "3"], "invalid --top-k; expected an integer from 1 to 2 (the number of labels)"),
        ({}, [], "no texts to predict; expected TEXT arguments, - for stdin lines, or --input FILE"),
        ({"s.csv": "id,text\n1\n"}, ["--input", "s.csv"], "s.csv row 2 has 1 fields; expected 2, like the header"),
        (
            {"u.jsonl": '{"text": "fine"}\n{"text": "bad \\ud800 escape"}\n'},
            ["--input", "u.jsonl"],
            "u.jsonl line 2 is not valid Unicode (a lone surrogate, \\ud800, at character 4); expected UTF-8 text",
        ),
        # What Python makes of an argument whose bytes are not UTF-8 (b"bad \xff byte").
        ({}, ["fine", "bad \udcff byte"], "text 2 is not valid Unicode (a lone surrogate, \\udcff, at character 4)"),
        ({}, ["-", "more text"], "- (read stdin) cannot be mixed with TEXT arguments"),
    ],
)
def test_predict_bad_input(
    cli, trained_run, tmp_path: Path, monkeypatch, files: dict, extra: list, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), *extra, "--output", "out.jsonl"])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes on this platform")
def test_predict_reads_input_from_a_named_pipe(cli, trained_run, tmp_path: Path) -> None:
    # What `--input <(zcat texts.jsonl.gz)` hands over: a pipe, not a regular file.
    import contextlib
    import os
    import threading

    fifo = tmp_path / "texts.jsonl"
    os.mkfifo(fifo)
    lines = "".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(TEXTS))

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "w", encoding="utf-8") as handle:
            handle.write(lines)  # the open blocks until predict opens the pipe

    writer = threading.Thread(target=feed)
    writer.start()
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "--input", str(fifo), "--id-key", "id"])
    if writer.is_alive():  # predict never opened the pipe: let the writer's open return
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    writer.join()
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == list(range(len(TEXTS)))


def test_predict_without_model_uses_the_bundled_imdb_model(cli) -> None:
    result = cli.invoke(main, ["predict", "loved it, a wonderful film", "a dull, boring waste of time"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert "bundled IMDB sentiment model" in result.stderr
    manifest = json.loads((Path(textlstm.__file__).parent / "pretrained" / "imdb" / "manifest.json").read_text())
    assert manifest["data"]["source"] == "aclImdb_labeled.tar.gz"  # built from IMDB, recorded beside it

    for args in (["runs/no_such_model", "great"], ["runs_imdb", "-"], ["runs_imdb", "--input", "x.txt"]):
        result = cli.invoke(main, ["predict", *args])
        assert result.exit_code == 2, args
        assert "error: model not found; expected a run directory or an export" in result.stderr, args


def test_predict_first_short_call_runs_eagerly_and_agrees_with_the_graph(trained_run) -> None:
    import numpy as np

    from textlstm import prediction

    texts = ["great film", "awful boring waste", ""]
    predictor = prediction.load_predictor(trained_run.output_dir)
    eager = predictor.probabilities(texts)  # the first call: short texts, no tracing
    traced = predictor.probabilities(texts)
    np.testing.assert_allclose(eager, traced, atol=1e-6)
    assert eager.shape == (3, len(predictor.labels)) and eager[0].argmax() != eager[1].argmax()
    # A long first text goes through the graph directly, with the same answer.
    long_text = " ".join(["great"] * (prediction.EAGER_MAX_WORDS + 1))
    fresh = prediction.load_predictor(trained_run.output_dir)
    np.testing.assert_allclose(fresh.probabilities([long_text]), predictor.probabilities([long_text]), atol=1e-6)


def test_predict_api_refuses_what_is_not_a_list_of_strings(trained_run) -> None:
    run = trained_run.output_dir
    # None used to be taken for the stdin flush marker: that row vanished from the results.
    with pytest.raises(InputError, match=r"text 2 is not a string; expected a str; received 'NoneType'"):
        textlstm.predict(run, ["great", None, "awful"])
    # A bare string used to be classified one character at a time.
    with pytest.raises(InputError, match=r"texts must be an iterable of strings; .* received 'str'"):
        textlstm.predict(run, "great superb film")
    for size in (0, -1, 2.5):
        with pytest.raises(InputError, match=r"invalid batch size; expected an integer >= 1"):
            textlstm.predict(run, ["great"], batch_size=size)
    assert textlstm.predict("no/such/model", []) == []  # nothing to do: the model is not even opened
    rows = textlstm.predict(run, ["great superb film", "awful boring waste"], batch_size=2**31 - 1)
    assert [r["label"] for r in rows] == ["pos", "neg"]


def test_predict_passes_null_and_structured_ids_through(cli, trained_run, tmp_path: Path) -> None:
    source = tmp_path / "ids.jsonl"
    ids = [{"a": [1, 2]}, None, 7, "x"]
    source.write_text("".join(json.dumps({"id": i, "text": "great film"}) + "\n" for i in ids))
    args = ["predict", str(trained_run.output_dir), "--input", str(source), "--id-key", "id", "-q"]
    result = cli.invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ids
    result = cli.invoke(main, [*args, "--output-format", "tsv"])
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()[1:]] == ['{"a": [1, 2]}', "", "7", "x"]


def test_predict_writes_what_came_before_a_bad_line(cli, trained_run, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"".join(b"great film %d\n" % i for i in range(70)) + b"caf\xe9\n")
    result = cli.invoke(main, ["predict", str(trained_run.output_dir), "--input", str(source), "--batch-size", "4"])
    assert result.exit_code == 2 and "in.txt is not valid UTF-8" in result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [f"great film {i}" for i in range(70)]


def test_predict_strips_a_byte_order_mark_from_stdin(trained_run) -> None:
    stdout = io.StringIO()
    stdin = io.BytesIO("\ufeffgreat superb film\nawful\n".encode())
    predict_command(str(trained_run.output_dir), ["-"], stdin=stdin, stdout=stdout)
    assert [json.loads(line)["text"] for line in stdout.getvalue().splitlines()] == ["great superb film", "awful"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_predict_output_created_meanwhile_is_not_replaced(trained_run, tmp_path: Path) -> None:
    import threading

    fifo, out = tmp_path / "texts.txt", tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            predict_command(str(trained_run.output_dir), input_path=fifo, output=out)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    # The open returns once predict opened the pipe, after its check that out.jsonl is new:
    # another process writes out.jsonl now, before predict finishes.
    with open(fifo, "w", encoding="utf-8") as feed:
        out.write_text("precious\n")
        feed.write("great film\nawful film\n")
    worker.join(timeout=300)
    assert len(errors) == 1 and "was created by another process meanwhile" in str(errors[0]), errors
    assert out.read_text() == "precious\n"
    assert {p.name for p in tmp_path.iterdir()} == {"texts.txt", "out.jsonl"}  # no temporary file left


@pytest.mark.parametrize(
    ("labels", "options", "message"),
    [
        (["text", "other"], {}, r"cannot hold the label\(s\) \['text'\]: they repeat a column name"),
        (["a", "id"], {"with_id": True}, r"cannot hold the label\(s\) \['id'\]"),
        (["a\tb", "c"], {}, r"cannot hold the label\(s\) \['a\\tb'\]: they contain a tab or line break"),
        (
            ["sci|fi", "drama"],
            {"with_top_k": True},
            r"joins labels with \|, which the label\(s\) \['sci\|fi'\] contain",
        ),
    ],
)
def test_predict_tsv_refuses_labels_it_cannot_write_unambiguously(labels: list, options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        RecordWriter(io.StringIO(), "tsv", labels, **{"with_id": False, **options})
    RecordWriter(io.StringIO(), "jsonl", labels, **{"with_id": False, **options})  # JSON has no such limits
    RecordWriter(io.StringIO(), "tsv", ["sci|fi", "drama"], with_id=False)  # no joined column: readable
