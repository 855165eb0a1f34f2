"""Inputs and outputs of `predict` at scale: texts from arguments, stdin or a text, JSONL
or CSV file (with an id passed through), results as JSON lines or TSV.

Pure Python (no TensorFlow): readers stream, so a file of any size is read one line at a
time, and stdin is read as it arrives.
"""

from __future__ import annotations

import csv
import io
import json
import os
import select
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from textlstm.errors import InputError, describe

INPUT_FORMATS = ("text", "jsonl", "csv")
OUTPUT_FORMATS = ("jsonl", "tsv")
# Yielded between items when no more input is waiting on stdin: the batch so far is
# predicted and written at once instead of waiting for a full batch (interactive use, pipes).
FLUSH = None

# A text, or an (id, text) pair when the input has ids (the id may be any JSON value, null too).
Item = str | tuple[Any, str]


def lone_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (from a JSON "\\ud800" escape, or
    from bytes that were not UTF-8 in a command-line argument), or None. Such a text has no
    UTF-8 form, so TensorFlow cannot take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(text: str, where: str) -> str:
    """``text``, or InputError naming ``where`` when it holds a lone surrogate."""
    at = lone_surrogate(text)
    if at is not None:
        raise InputError(
            f"{where} is not valid Unicode (a lone surrogate, \\u{ord(text[at]):04x}, at character {at}); "
            "expected UTF-8 text"
        )
    return text


def input_format(path: Path, fmt: str | None) -> str:
    """The --input-format given, or the one the file extension implies (text otherwise)."""
    if fmt is not None:
        if fmt not in INPUT_FORMATS:
            raise InputError(f"unknown --input-format; {describe(f'one of {list(INPUT_FORMATS)}', fmt)}")
        return fmt
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "text")


def read_file(
    path: Path,
    fmt: str,
    text_key: str = "text",
    id_key: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    """Yield texts, or ``(id, text)`` with ``id_key``, from a text (one text a line), JSONL
    or CSV file, reporting the bytes consumed to ``on_bytes`` (for a progress bar)."""
    check_input_file(path)
    with open(path, "rb") as handle:
        lines = _decoded_lines(handle, str(path), on_bytes)
        if fmt == "text":
            for line in lines:
                yield line.rstrip("\r\n")
        elif fmt == "jsonl":
            yield from _jsonl(lines, str(path), text_key, id_key)
        else:
            yield from _csv(lines, str(path), text_key, id_key)


def _decoded_lines(handle: IO[bytes], where: str, on_bytes: Callable[[int], None] | None) -> Iterator[str]:
    offset = 0
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where} is not valid UTF-8 at byte {offset + exc.start} (line {number}); expected UTF-8 text"
            ) from exc
        offset += len(raw)
        if on_bytes is not None:
            on_bytes(len(raw))
        yield line.lstrip("\ufeff") if number == 1 else line  # a UTF-8 byte-order mark is not text


def _jsonl(lines: Iterator[str], where: str, text_key: str, id_key: str | None) -> Iterator[Item]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{where} line {number} is not valid JSON ({exc.msg}); expected one object per line"
            ) from exc
        if not isinstance(row, dict):
            raise InputError(
                f"{where} line {number} is a JSON {type(row).__name__}; expected an object with {text_key!r}"
            )
        yield _pick(row, list(row), where, f"line {number}", text_key, id_key)


def _csv(lines: Iterator[str], where: str, text_key: str, id_key: str | None) -> Iterator[Item]:
    # Reviews can be longer than csv's default field limit of 128 KiB.
    csv.field_size_limit(1 << 30)
    reader = csv.reader(lines)
    number = 0
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"{where} is empty; expected a CSV file with a header row")
        for number, values in enumerate(reader, start=2):
            if not values:
                continue
            if len(values) != len(header):
                raise InputError(
                    f"{where} row {number} has {len(values)} fields; expected {len(header)}, like the header {header}"
                )
            yield _pick(dict(zip(header, values, strict=True)), header, where, f"row {number}", text_key, id_key)
    except csv.Error as exc:
        raise InputError(f"{where} row {number + 1} is not valid CSV ({exc}); expected comma-separated fields") from exc


def _pick(row: dict[str, Any], names: list[str], where: str, at: str, text_key: str, id_key: str | None) -> Item:
    for key, what in ((text_key, "--text-key"), *(((id_key, "--id-key"),) if id_key else ())):
        if key not in row:
            raise InputError(f"{where} {at} has no {what} {key!r}; expected one of {names}")
    text = row[text_key]
    if not isinstance(text, str):
        raise InputError(f"{where} {at}: {text_key!r} is not a string; {describe('a string', type(text).__name__)}")
    text = check_text(text, f"{where} {at}")
    return (row[id_key], text) if id_key else text


def read_stdin(stream: IO[bytes]) -> Iterator[Item | None]:
    """Yield each stdin line as soon as it arrives, and `FLUSH`
    whenever no further input is waiting, so results keep pace with a slow producer."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        # An in-memory stream (tests, embedding): everything is already there.
        for number, raw in enumerate(stream, start=1):
            yield _decode_stdin(raw.rstrip(b"\n"), number)
        yield FLUSH
        return
    pending = bytearray()
    number = 0
    while True:
        if not select.select([fd], [], [], 0)[0]:
            yield FLUSH
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        pending += chunk
        if b"\n" not in chunk:
            continue  # a long line still arriving: don't split the whole buffer again
        *complete, rest = bytes(pending).split(b"\n")
        pending = bytearray(rest)
        for raw in complete:
            number += 1
            yield _decode_stdin(raw, number)
    if pending:
        yield _decode_stdin(bytes(pending), number + 1)
    yield FLUSH


def _decode_stdin(raw: bytes, number: int) -> str:
    try:
        text = raw.decode("utf-8").rstrip("\r")
        return text.lstrip("\ufeff") if number == 1 else text  # as in a file: a byte-order mark is not text
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin line {number} is not valid UTF-8 (byte {exc.start}); expected UTF-8 text") from exc


def check_input_file(path: Path) -> bool:
    """Refuse an ``--input`` that is missing or a directory; return whether it is a regular
    file (a named pipe or ``/dev/stdin``, as ``<(zcat texts.gz)`` gives, is read as well,
    but has no size to show progress against)."""
    if path.is_dir():
        raise InputError(f"--input is a directory; {describe('a file', str(path))}")
    if not path.exists():
        raise InputError(f"input file not found; {describe('an existing file', str(path))}")
    return path.is_file()


class Progress:
    """A one-line progress display on a terminal's stderr: share of the input file read."""

    def __init__(self, total_bytes: int, stream: IO[str]) -> None:
        self.total = max(total_bytes, 1)
        self.done = 0
        self.stream = stream
        self.shown = -1

    def update(self, count: int) -> None:
        """Account for ``count`` more bytes read; redraw when the percentage changes."""
        self.done += count
        percent = min(100, self.done * 100 // self.total)
        if percent != self.shown:
            self.shown = percent
            self.stream.write(f"\rpredicting: {percent:3d} %")
            self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


class RecordWriter:
    """Writes prediction records as JSON lines or TSV (a header row, then one row per text:
    the id if any, label, score, ``labels`` and ``top_k`` when asked for (joined with |),
    one probability column per label, then the text)."""

    def __init__(
        self,
        stream: IO[str],
        fmt: str,
        labels: list[str],
        with_id: bool,
        with_labels: bool = False,
        with_top_k: bool = False,
    ) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise InputError(f"unknown --output-format; {describe(f'one of {list(OUTPUT_FORMATS)}', fmt)}")
        self.stream = stream
        self.format = fmt
        self.labels = labels
        self.with_id = with_id
        self.with_labels = with_labels
        self.with_top_k = with_top_k
        self.written = 0
        self.columns = [
            *(["id"] if with_id else []),
            "label",
            "score",
            *(["labels"] if with_labels else []),
            *(["top_k"] if with_top_k else []),
            *labels,
            "text",
        ]
        if fmt == "tsv":
            # Checked before anything is predicted: a TSV that cannot be read back is no use.
            clashes = sorted({name for name in labels if self.columns.count(name) > 1})
            if clashes:
                raise InputError(
                    f"--output-format tsv cannot hold the label(s) {clashes}: they repeat a column name; "
                    "expected --output-format jsonl for this model"
                )
            broken = [name for name in labels if any(c in name for c in "\t\r\n")]
            if broken:
                raise InputError(
                    f"--output-format tsv cannot hold the label(s) {broken}: they contain a tab or line break; "
                    "expected --output-format jsonl for this model"
                )
            piped = [name for name in labels if "|" in name]
            if piped and (with_labels or with_top_k):
                raise InputError(
                    f"--output-format tsv joins labels with |, which the label(s) {piped} contain; "
                    "expected --output-format jsonl for this model"
                )

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write one batch and flush it, so a reader downstream of a pipe sees it now."""
        if self.format == "tsv" and not self.written and records:
            self.stream.write("\t".join(_tsv_cell(c) for c in self.columns) + "\n")
        self.written += len(records)
        for record in records:
            if self.format == "jsonl":
                self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            probabilities = record["probabilities"]
            cells = [
                *([_tsv_id(record["id"])] if self.with_id else []),
                record["label"],
                f"{record['score']:.6f}",
                *(["|".join(record["labels"])] if self.with_labels else []),
                *(["|".join(f"{t['label']}:{t['score']:.6f}" for t in record["top_k"])] if self.with_top_k else []),
                *(f"{probabilities[name]:.6f}" for name in self.labels),
                record["text"],
            ]
            self.stream.write("\t".join(_tsv_cell(c) for c in cells) + "\n")
        self.stream.flush()


def _tsv_id(value: Any) -> str:
    # An id is any JSON value: null is an empty cell, a number or object its JSON text.
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _tsv_cell(value: Any) -> str:
    # Tabs and line breaks inside a text would shift columns or rows.
    return " ".join(str(value).split()) if any(c in str(value) for c in "\t\r\n") else str(value)
