"""Pretrained word vectors: reading the file formats, matching tokens, the trained Embedding
rows (frozen and not), the coverage in manifest.json, and every bad file through the CLI."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import textlstm
from tests.conftest import NEGATIVE, POSITIVE, TINY_OVERRIDES
from textlstm import artifacts
from textlstm.cli import main
from textlstm.config import Config
from textlstm.embeddings import read_pretrained_vectors
from textlstm.model import split_text_model

DIM = 8  # model.embedding_dim of the tiny config
SETS = [arg for item in [*TINY_OVERRIDES, "training.epochs=1"] for arg in ("--set", item)]


def _fields(word: str, dim: int = DIM) -> list[str]:
    """A vector, as the text a file holds, that depends on the word only. Its first value
    is far outside Keras's random initialisation (uniform in +-0.05)."""
    rnd = np.random.default_rng(zlib.crc32(word.encode()))
    return ["0.9000", *(f"{x:.4f}" for x in rnd.uniform(-1, 1, dim - 1))]


def _vector(fields: list[str]) -> np.ndarray:
    return np.array([float(x) for x in fields], dtype=np.float32)


def _text(entries: list[tuple[str, list[str]]], header: bool = False, trailing: str = "") -> str:
    lines = [f"{word} {' '.join(values)}{trailing}" for word, values in entries]
    if header:
        lines.insert(0, f"{len(entries)} {len(entries[0][1])}")
    return "\n".join(lines) + "\n"


def _run_embeddings(out: Path) -> tuple[np.ndarray, list[str], bool, dict]:
    """The trained run's Embedding matrix, vocabulary, trainable flag and manifest entry."""
    _, classifier = split_text_model(artifacts.load_text_model(out))
    layer = classifier.get_layer("embedding")
    vocab = (out / artifacts.VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    manifest = json.loads((out / artifacts.MANIFEST_FILE).read_text())
    return layer.get_weights()[0], vocab, layer.trainable, manifest["embeddings"]


def test_embeddings_frozen_rows_equal_the_file(cli, corpus_tar: Path, tmp_path: Path) -> None:
    words = POSITIVE + NEGATIVE
    entries = [(w, _fields(w)) for w in words] + [("zebra", _fields("zebra")), ("quantum", _fields("quantum"))]
    vectors = tmp_path / "glove.8d.txt"
    vectors.write_text(_text(entries), encoding="utf-8")
    out = tmp_path / "run"
    args = ["train", "--data", str(corpus_tar), "--output-dir", str(out), *SETS]
    result = cli.invoke(main, [*args, "--embeddings", str(vectors), "--freeze-embeddings"])
    assert result.exit_code == 0, result.stderr

    matrix, vocab, trainable, figures = _run_embeddings(out)
    assert not trainable
    # TINY_OVERRIDES cap the LSTM embedding at the 20 most frequent ids: the file's vectors
    # fill those rows only (the rarer words reach the LSTM as [UNK]).
    assert matrix.shape[0] == 20 < len(vocab)
    embedded = [w for w in words if vocab.index(w) < 20]
    assert 0 < len(embedded) < len(words)
    for word, values in entries[: len(words)]:
        if word in embedded:
            np.testing.assert_array_equal(matrix[vocab.index(word)], _vector(values), err_msg=word)
    # Uncovered rows keep the random initialisation.
    assert 0 < np.abs(matrix[vocab.index("movie")]).max() <= 0.05
    tokens, words = 20 - 2, embedded
    assert figures == {
        "file": str(vectors),
        "gzipped": False,
        "header": False,
        "dimension": DIM,
        "vectors_in_file": len(entries),
        "vocabulary_tokens": tokens,
        "covered": len(words),
        "coverage": round(len(words) / tokens, 4),
        "exact_matches": len(words),
        "lowercase_matches": 0,
        "frozen": True,
    }
    percent = f"{100 * len(words) / tokens:.1f}"
    assert f"pretrained vectors cover {len(words)} of {tokens} vocabulary tokens ({percent} %)" in result.stderr
    saved = json.loads((out / artifacts.CONFIG_FILE).read_text())["model"]
    assert saved["embeddings_file"] == str(vectors) and saved["freeze_embeddings"] is True


def test_embeddings_trainable_rows_move_from_the_file(corpus_tar: Path, tiny_config: Config, tmp_path: Path) -> None:
    entries = [(w, _fields(w)) for w in POSITIVE]
    vectors = tmp_path / "w2v.txt"
    vectors.write_text(_text(entries, header=True), encoding="utf-8")
    # The LSTM embeds the whole vocabulary here (no cap), so every file word has a row.
    uncapped = ["training.epochs=1", "model.lstm_tokens=null", f"model.embeddings_file={vectors}"]
    out = textlstm.train(str(corpus_tar), tmp_path / "run", tiny_config.with_overrides(uncapped), verbose=0).output_dir

    matrix, vocab, trainable, figures = _run_embeddings(out)
    assert trainable and matrix.shape[0] == len(vocab)
    for word, values in entries:
        row, start = matrix[vocab.index(word)], _vector(values)
        assert not np.array_equal(row, start), word
        # One epoch of small steps from the file's vector, not from the random initialisation.
        assert np.abs(row - start).max() < 0.3, word
    assert figures["covered"] == len(POSITIVE) and figures["header"] is True and figures["frozen"] is False


@pytest.mark.parametrize(
    ("name", "packed"),
    [("vectors.vec.gz", True), ("vectors.vec", True), ("vectors.txt.gz", False)],
    ids=["gzip", "gzip-without-extension", "plain-with-gz-extension"],
)
def test_embeddings_reader_formats_and_matching(tmp_path: Path, name: str, packed: bool) -> None:
    entries = [
        ("[UNK]", _fields("[UNK]")),  # not a word: never a row
        ("GREAT", _fields("GREAT")),
        ("great", _fields("great")),  # the exact spelling wins, even later in the file
        ("Awful", _fields("Awful")),  # only a cased form: taken by lower-casing
        ("BORING", _fields("BORING")),  # the first lower-cased match wins ...
        ("Boring", _fields("Boring")),  # ... over a later one
        ("the end", _fields("the end")),  # a word with a space covers neither token
        ("café", _fields("café")),
        ("Éclair", _fields("Éclair")),  # lower-casing is not ASCII-only
        ("zebra", _fields("zebra")),
    ]
    # fastText writes a header and a space after every value.
    data = _text(entries, header=True, trailing=" ").encode("utf-8")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if packed else data)
    vocabulary = ["", "[UNK]", "the", "great", "end", "awful", "boring", "café", "éclair", "film"]

    vectors = read_pretrained_vectors(path, vocabulary, DIM)

    expected = {"great": "great", "awful": "Awful", "boring": "BORING", "café": "café", "éclair": "Éclair"}
    by_word = dict(entries)
    assert {vocabulary[i] for i in vectors.rows} == set(expected)
    for token, word in expected.items():
        np.testing.assert_array_equal(vectors.rows[vocabulary.index(token)], _vector(by_word[word]), err_msg=token)
    assert (vectors.exact, vectors.lowercased) == (2, 3)
    assert vectors.uncovered == ["the", "end", "film"]
    assert vectors.info.gzipped is packed and vectors.info.header == (len(entries), DIM)
    assert vectors.coverage()["coverage"] == round(5 / 8, 4) and vectors.vectors_in_file == len(entries)


def _file(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return make


def _line(word: str, values: list[str] | None = None) -> str:
    return f"{word} {' '.join(values or _fields(word))}\n"


GOOD = _line("great") + _line("awful") + _line("boring")
BAD = [
    # (id, vectors file, extra arguments, error pattern, fails before the data is read)
    ("missing file", lambda folder: folder / "nothing.txt", [], r"vectors file not found; .*nothing\.txt", True),
    ("empty file", _file("e.txt", ""), [], r"e\.txt is empty; expected a GloVe", True),
    ("empty gzip", _file("e.vec.gz", gzip.compress(b"")), [], r"e\.vec\.gz is empty", True),
    (
        "other dimension",
        _file("d5.txt", _line("great", _fields("great", 5))),
        [],
        r"dimension 5 but model\.embedding_dim is 8; expected vectors of dimension 8; received 5; "
        r"to use this file, pass --set model\.embedding_dim=5",
        True,
    ),
    (
        "header dimension",
        _file("h.vec", f"1 {DIM}\n" + _line("great", _fields("great", DIM + 1))),
        [],
        r"header \(line 1\) announces dimension 8 but line 2 holds 9 numbers",
        True,
    ),
    ("header only", _file("h.vec", f"3 {DIM}\n"), [], r"has a header \(3 8\) but no vectors", True),
    (
        "header count",
        _file("c.vec", f"5 {DIM}\n" + GOOD),
        [],
        r"the header announces 5 vectors but the file holds 3 .*; received 5 8",
        False,
    ),
    (
        "too few fields",
        _file("f.txt", GOOD + "film 0.1 0.2 0.3 0.4\n"),
        [],
        r"f\.txt line 4 is not a word vector; expected a word and 8 numbers .*; received 5 field",
        False,
    ),
    (
        "not a number",
        _file("n.txt", GOOD + _line("film", ["0.1"] * 3 + ["x1"] + ["0.2"] * 4)),
        [],
        r"n\.txt line 4 holds a value that is not a number; .*received 'x1'",
        False,
    ),
    (
        "not finite",
        _file("i.txt", _line("film", ["nan"] + ["0.2"] * 7) + GOOD),
        [],
        r"i\.txt line 1 holds a value that is not a finite .*received 'nan'",
        False,
    ),
    (
        "not UTF-8",
        _file("u.txt", GOOD.encode() + b"caf\xe9 " + " ".join(_fields("x")).encode() + b"\n"),
        [],
        r"u\.txt line 4 is not valid UTF-8",
        False,
    ),
    (
        "truncated gzip",
        _file("t.txt.gz", gzip.compress((GOOD * 400).encode())[:-40]),
        [],
        r"cannot read .*t\.txt\.gz after line \d+: Compressed file ended",
        False,
    ),
    (
        "no coverage",
        _file("z.txt", _line("zebra") + _line("Quantum")),
        [],
        r"z\.txt cover none of the \d+ vocabulary tokens; expected vectors for the corpus's words",
        False,
    ),
    ("freeze without a file", None, ["--freeze-embeddings"], r"invalid value for model\.freeze_embeddings", True),
]


@pytest.mark.parametrize(("make", "args", "message", "early"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_embeddings_bad_file_is_one_error_line(
    cli,
    corpus_tar: Path,
    tmp_path: Path,
    make: Callable[[Path], Path] | None,
    args: list[str],
    message: str,
    early: bool,
) -> None:
    # A file that is bad from its first lines fails before the data is read: the data
    # source given then has no rows, which reading it would report instead.
    data = tmp_path / "never-read.csv" if early else corpus_tar
    if early:
        data.write_text("text,label\n")
    out = tmp_path / "run"
    vectors = ["--embeddings", str(make(tmp_path))] if make else []
    result = cli.invoke(main, ["train", "--data", str(data), "--output-dir", str(out), "-q", *SETS, *vectors, *args])
    assert result.exit_code == 2, (result.exit_code, result.stderr, repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_embeddings_train_help_lists_the_options(cli) -> None:
    result = cli.invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    assert "--embeddings FILE" in result.output and "--freeze-embeddings" in result.output
    assert "--embeddings glove.6B.100d.txt.gz" in result.output  # the example in the epilog
