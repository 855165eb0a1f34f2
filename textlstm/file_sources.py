"""Single-file corpora: CSV, TSV, JSON lines, parquet and "lines" files.

CSV and TSV files are read with Python's csv module, row by row, values as written; JSON
and parquet files through Hugging Face ``datasets`` in streaming mode. A file larger than
memory is never loaded whole. A file is one split: whichever split a
command asks for (train, test) is the whole file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import logging
import math
import numbers
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from textlstm.errors import DataError, InputError, describe
from textlstm.sources import Example, Label, Source, file_sha256

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "lines", "fasttext")
_FASTTEXT_PREFIX = "__label__"
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
_QUOTE_NONE = 3  # csv.QUOTE_NONE: TSV corpora (GLUE, SMS) carry unbalanced quotes in texts


@dataclass(frozen=True)
class ReadOptions:
    """How to find texts and labels in a file (the CLI's --text-column, --label-column ...)."""

    # csv, tsv, jsonl, json, parquet or lines; None infers it from the file extension.
    format: str | None = None
    # Column names or 0-based indices; several are joined with a space. Empty: "text".
    text_columns: tuple[str, ...] = ()
    # Column name or 0-based index of the label. None: "label".
    label_column: str | None = None
    # The first row of a CSV/TSV file holds column names.
    header: bool = True
    # Field separator for csv/tsv (default "," and a tab).
    delimiter: str | None = None
    encoding: str = "utf-8"
    # A regular expression whose first group extracts the label from the label field.
    label_regex: str | None = None
    # Renames labels after extraction, e.g. {"1": "World"}.
    label_map: dict[str, str] = field(default_factory=dict)
    # Splits the label field into several labels (a multi-label corpus), e.g. "|".
    label_sep: str | None = None
    # An empty text is an error instead of a skipped (and counted) row.
    strict: bool = False

    def __post_init__(self) -> None:
        """Columns given to the Python API as one name or as 0-based int indices mean what
        the CLI's strings mean; other types are an InputError. (Without this, a bare name was
        read letter by letter, and label_column=0 was taken as unset: "label".)"""

        def column(value: Any, what: str) -> str:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
                return str(int(value))
            if isinstance(value, str):
                return value
            raise InputError(f"bad {what}; {describe('a column name or a 0-based int index', value)}")

        columns = self.text_columns
        if isinstance(columns, (str, numbers.Integral)) and not isinstance(columns, bool):
            columns = (columns,)
        if not isinstance(columns, (tuple, list)):
            raise InputError(f"bad text_columns; {describe('a tuple of column names or indices', columns)}")
        object.__setattr__(self, "text_columns", tuple(column(c, "text column") for c in columns))
        if self.label_column is not None:
            object.__setattr__(self, "label_column", column(self.label_column, "label_column"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for manifests."""
        return {
            "format": self.format,
            "text_columns": list(self.text_columns),
            "label_column": self.label_column,
            "header": self.header,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "label_regex": self.label_regex,
            "label_map": dict(self.label_map),
            "label_sep": self.label_sep,
            "strict": self.strict,
        }

    def given_flags(self) -> list[str]:
        """The CLI flags of the options that differ from their defaults."""
        default = ReadOptions()
        return [flag for name, flag in _FLAGS.items() if getattr(self, name) != getattr(default, name)]

    def as_flags(self) -> str:
        """The options that differ from the defaults, as command-line flags (for logs)."""
        words: list[str] = []
        for flag in self.given_flags():
            name = next(key for key, value in _FLAGS.items() if value == flag)
            value = getattr(self, name)
            if isinstance(value, bool):
                words.append(flag)
            elif name == "text_columns":
                words.extend(f"--text-column {shlex.quote(column)}" for column in value)
            elif name == "label_map":
                words.append(f"{flag} {shlex.quote(','.join(f'{k}={v}' for k, v in value.items()))}")
            else:
                words.append(f"{flag} {shlex.quote(str(value))}")
        return " ".join(words)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadOptions:
        """The inverse of `to_dict` (for resuming a run from its saved request)."""
        return cls(**{**data, "text_columns": tuple(data.get("text_columns", ()))})


# Reading options that only some file formats take.
_FORMAT_FLAGS = {
    "--no-header": ("csv", "tsv"),
    "--delimiter": ("csv", "tsv"),
    "--text-column": ("csv", "tsv", "json", "jsonl", "parquet", "hf"),
    "--label-column": ("csv", "tsv", "json", "jsonl", "parquet", "hf"),
    "--format": FORMATS,
}

_FLAGS = {
    "format": "--format",
    "text_columns": "--text-column",
    "label_column": "--label-column",
    "header": "--no-header",
    "delimiter": "--delimiter",
    "encoding": "--encoding",
    "label_regex": "--label-regex",
    "label_map": "--label-map",
    "label_sep": "--label-sep",
    "strict": "--strict",
}


def parse_label_map(text: str | None) -> dict[str, str]:
    """Parse ``OLD=NEW,OLD=NEW`` into a dict; raise DataError on a malformed item."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise DataError(f"bad --label-map item; {describe('OLD=NEW[,OLD=NEW...]', item)}")
        mapping[old.strip()] = new.strip()
    return mapping


def file_format(path: Path, options: ReadOptions) -> str | None:
    """The format named in options, or the one the extension implies (None if unknown)."""
    if options.format:
        if options.format not in FORMATS:
            raise DataError(f"unknown --format; {describe(f'one of {list(FORMATS)}', options.format)}")
        return options.format
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return _EXTENSIONS.get(Path(name).suffix)


def _column(wanted: str, names: list[str]) -> str | None:
    """The column ``wanted`` names among ``names``: by name, else as a 0-based index."""
    if wanted in names:
        return wanted
    if re.fullmatch(r"[0-9]+", wanted) and int(wanted) < len(names):
        return names[int(wanted)]
    return None


class FileSource(Source):
    """One labelled file; every split name refers to the whole file."""

    def __init__(self, spec: str, path: Path, fmt: str, options: ReadOptions, lenient: bool = False) -> None:
        """``lenient``: the options were given for another source (``data inspect
        --against``), so those that do not apply to this file's format are not refused."""
        self.spec = spec
        self.path = path
        self.format = fmt
        self.options = options
        self._regex = None
        if options.label_regex:
            try:
                self._regex = re.compile(options.label_regex)
            except re.error as exc:
                raise DataError(
                    f"invalid --label-regex: {exc}; {describe('a regular expression', options.label_regex)}"
                ) from exc
            if self._regex.groups < 1:
                raise DataError(
                    f"--label-regex needs a group that captures the label; {describe('e.g. ^([A-Z]+):', options.label_regex)}"
                )
        delimiter = options.delimiter
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
            raise DataError(
                "invalid --delimiter; expected one character other than a quote or line break "
                f"(a tab: --delimiter $'\\t' in bash); received {delimiter!r}"
            )
        self._lenient = lenient
        self._refuse_options(lenient)
        if path.is_file() and path.stat().st_size == 0:
            raise DataError(f"{spec} is empty; expected a {fmt} file with labelled examples")
        if options.label_sep is not None and not options.label_sep:
            raise DataError(
                f"--label-sep must not be empty; {describe('a separator such as | or ,', options.label_sep)}"
            )
        self._scan: tuple[list[str], int, dict[str, int], bool] | None = None
        self._raw_labels: set[str] = set()  # before --label-map

    def _refuse_options(self, lenient: bool) -> None:
        """A reading option that does not apply to the format would be silently ignored."""
        given = self.options.given_flags()
        unfit = [flag for flag in given if flag in _FORMAT_FLAGS and self.format not in _FORMAT_FLAGS[flag]]
        if unfit and not lenient:
            raise DataError(
                f"{', '.join(unfit)} {'does' if len(unfit) == 1 else 'do'} not apply to the {self.format} file "
                f"{self.spec}; expected {' and '.join(unfit)} only with "
                f"{' or '.join(sorted({f for flag in unfit for f in _FORMAT_FLAGS[flag]}))} files"
            )
        if self.format in ("json", "jsonl", "parquet", "hf") and "--encoding" in given:
            try:
                name = codecs.lookup(self.options.encoding).name
            except LookupError as exc:
                raise DataError(
                    f"unknown --encoding; {describe('a Python codec name', self.options.encoding)}"
                ) from exc
            if name not in ("utf-8", "utf-8-sig") and not lenient:
                raise DataError(
                    f"--encoding {self.options.encoding} does not apply to the {self.format} file {self.spec}: "
                    "JSON and parquet text is UTF-8; expected --encoding only with csv, tsv, lines or fasttext "
                    "files (convert this one with iconv)"
                )

    def splits(self) -> list[str]:
        """A file has no named splits."""
        return []

    def check_split(self, split: str) -> None:
        """Any split name means the whole file."""

    def _scanned(self) -> tuple[list[str], int, dict[str, int], bool]:
        if self._scan is None:
            # One streaming pass: the label set and size must be known before training.
            labels: set[str] = set()
            count, skipped, multi = 0, {}, self.options.label_sep is not None
            for split in self._scan_splits():
                in_split = [0]
                for _, _, label in self._examples(in_split, split):
                    if isinstance(label, str):
                        labels.add(label)
                    else:
                        labels.update(label)
                        multi = True
                    count += 1
                skipped[split] = in_split[0]
            if count == 0:
                raise DataError(f"{self.spec} holds no labelled examples with text; expected at least one row")
            unknown = sorted(set(self.options.label_map) - self._raw_labels)
            if unknown and not self._lenient:
                # As for class folders: a mistyped map would otherwise rename nothing, silently.
                shown = sorted(self._raw_labels)
                raise DataError(
                    f"--label-map renames {unknown}, which {self.spec} has no label for; expected labels among "
                    f"{shown[:20]}{' ...' if len(shown) > 20 else ''}"
                )
            self._scan = (sorted(labels), count, skipped, multi)
        return self._scan

    def _scan_splits(self) -> list[str]:
        return [""]

    def label_names(self) -> list[str]:
        """Sorted labels found in the file (read once)."""
        return self._scanned()[0]

    def count(self, split: str) -> int:
        """Examples with a non-empty text (read once)."""
        return self._scanned()[1]

    def skipped(self, split: str | None = None) -> int:
        """Rows of ``split`` skipped for an empty text (a file has one split: all of it)."""
        per_split = self._scanned()[2]
        return per_split[split] if split in per_split else sum(per_split.values())

    def multi_label(self) -> bool:
        """True when a row holds a list of labels (JSON list, --label-sep, several fastText labels)."""
        return self._scanned()[3]

    def examples(self, split: str) -> Iterator[Example]:
        """Yield ``(row index, text, label)`` for every row with a non-empty text."""
        self.check_split(split)
        return self._examples([0], split)

    def _examples(self, skipped: list[int], split: str = "") -> Iterator[Example]:
        for index, text, raw_label in self._rows(split):
            if text is None or not text.strip():
                if self.options.strict:
                    raise DataError(
                        f"{self.spec} row {self._row(index)} has an empty text; expected text in every row (--strict)"
                    )
                skipped[0] += 1
                continue
            yield str(index), text, self._label(raw_label, index)

    def where(self, key: str) -> str:
        """The line of the example just read (keys are row indices)."""
        return f"row {self._row(int(key))}" if key.isdigit() else f"example {key}"

    def _row(self, index: int) -> int:
        """The 1-based line of a row index, as an editor shows it (a CSV header is line 1;
        a CSV row's first line, past blank lines and quoted line breaks before it)."""
        at = getattr(self, "_at", None)
        if at is not None and at[0] == index and at[1] is not None:
            return at[1]
        return index + (2 if self.format in ("csv", "tsv") and self.options.header else 1)

    def _label(self, raw: Any, index: int) -> Label:
        row = self._row(index)
        if isinstance(raw, (list, tuple)):
            # A list of labels (JSON, parquet); an empty list is an example with no label set.
            return tuple(dict.fromkeys(self._one_label(value, row) for value in raw))
        if self.options.label_sep is None:
            return self._one_label(raw, row)
        # Split the raw field first: --label-regex and --label-map apply to each label.
        parts = [part.strip() for part in self._field(raw, row).split(self.options.label_sep)]
        return tuple(dict.fromkeys(self._one_label(part, row) for part in parts if part))

    def _field(self, raw: Any, row: int) -> str:
        """The label field as text; DataError when it is missing."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
            raise DataError(f"{self.spec} row {row} has no label; expected a label in every row")
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, (dict, list, tuple)):
            raise DataError(f"{self.spec} row {row} has a nested label; {describe('a label or a list of labels', raw)}")
        return str(raw).strip()

    def _one_label(self, raw: Any, row: int) -> str:
        label = self._field(raw, row)
        if self._regex is not None:
            match = self._regex.search(label)
            if match is None:
                raise DataError(
                    f"{self.spec} row {row}: --label-regex {self.options.label_regex!r} does not match; received {label[:80]!r}"
                )
            label = match.group(1)
        self._raw_labels.add(label)
        return self.options.label_map.get(label, label)

    def _rows(self, split: str) -> Iterator[tuple[int, str | None, Any]]:
        if self.format in ("lines", "fasttext"):
            yield from self._lines()
            return
        rows = self._csv_rows() if self.format in ("csv", "tsv") else self._hf_rows(split)
        first = True
        for index, row in enumerate(rows):
            self._at = (index, getattr(self, "_line", None))
            if first:
                self._columns = self._resolve(list(row))
                first = False
            texts = []
            for column in self._columns[0]:
                value = row[column]
                if value is not None and not isinstance(value, str):
                    # str() of a list or object would be trained on as if it were text.
                    raise DataError(
                        f"{self.spec} row {self._row(index)}: text column {column!r} holds a value of type "
                        f"{type(value).__name__}; expected a string; received {str(value)[:60]!r}"
                    )
                if value is not None:
                    texts.append(value)
            text = " ".join(texts)
            yield index, text, row[self._columns[1]]
        if first:
            raise DataError(f"{self.spec} has a header but no rows; expected at least one labelled row")

    def _resolve(self, names: list[str]) -> tuple[list[str], str]:
        def find(wanted: str, what: str) -> str:
            found = _column(wanted, names)
            if found is not None:
                return found
            raise DataError(
                f"{self.spec} has no {what} column {wanted!r}; expected one of {names} (or a 0-based index)"
            )

        texts = [find(c, "text") for c in (self.options.text_columns or ("text",))]
        label = find(self.options.label_column or "label", "label")
        if label in texts:
            raise DataError(f"{self.spec}: column {label!r} is both text and label; expected different columns")
        return texts, label

    def _csv_rows(self) -> Iterator[dict[str, str]]:
        """The rows of a CSV or TSV file as dicts of strings, exactly as written. Read with
        Python's csv module rather than pandas, which guessed a type per column and block of
        rows: "01" became 1, "NA" or "null" a missing value, and a label could change type
        between blocks, becoming two classes. As with pandas, a blank (or all-space) line is
        no row, and a row short of fields has empty ones; a longer row is an error."""
        delimiter = self.options.delimiter or ("\t" if self.format == "tsv" else ",")
        quoting = _QUOTE_NONE if self.format == "tsv" else csv.QUOTE_MINIMAL
        # Reviews can be longer than csv's default field limit of 128 KiB.
        csv.field_size_limit(1 << 30)
        position = {"line": 0}
        try:
            reader = csv.reader(self._decoded_lines(), delimiter=delimiter, quoting=quoting)
            names: list[str] | None = None
            for fields in reader:
                start, position["line"] = position["line"] + 1, reader.line_num
                if not any(field.strip() for field in fields):
                    continue
                if names is None:
                    if self.options.header:
                        repeated = sorted({name for name in fields if fields.count(name) > 1})
                        if repeated:
                            # A dict row would keep only the last of them, silently.
                            raise DataError(
                                f"{self.spec} repeats the column name(s) {repeated}; expected unique names in "
                                "the header row"
                            )
                        names = fields
                        continue
                    names = [str(i) for i in range(len(fields))]
                if len(fields) > len(names):
                    raise DataError(
                        f"{self.spec} line {start} has {len(fields)} fields; expected at most {len(names)}, "
                        f"like the {'header' if self.options.header else 'first row'}"
                    )
                fields += [""] * (len(names) - len(fields))
                self._line = start
                yield dict(zip(names, fields, strict=True))
        except csv.Error as exc:
            raise DataError(f"cannot read {self.spec} as {self.format}: {exc} (after line {position['line']})") from exc

    def _decoded_lines(self) -> Iterator[str]:
        """The file's lines as text (line breaks kept, a leading byte-order mark dropped),
        decoded one at a time so that a bad byte is named with its line and offset (a text
        stream decodes blocks of 8 KiB ahead of the parser)."""
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        try:
            decoder = codecs.getincrementaldecoder(self.options.encoding)()
        except LookupError as exc:
            raise DataError(f"unknown --encoding; {describe('a Python codec name', self.options.encoding)}") from exc
        offset, number = 0, 0
        try:
            with opener(self.path, "rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    try:
                        text = decoder.decode(raw)
                    except UnicodeDecodeError as exc:
                        latin = codecs.lookup(self.options.encoding).name == "iso8859-1"
                        raise DataError(
                            f"{self.spec} is not valid {self.options.encoding} at byte {offset + exc.start} "
                            f"(line {number}); expected text in that encoding{'' if latin else ', try --encoding latin-1'}"
                        ) from exc
                    if number == 1:
                        text = text.removeprefix("\ufeff")  # a byte-order mark is not text
                    offset += len(raw)
                    yield text
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
        except (OSError, EOFError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot read {self.spec} as {self.format}: {first[:300]} (after line {number})") from exc

    def _hf_rows(self, split: str) -> Iterator[dict[str, Any]]:
        import datasets

        # datasets logs a failed read before raising it; textlstm reports the failure itself
        # (as the CLI's one error line), so only datasets' critical messages are shown.
        datasets.logging.set_verbosity(datasets.logging.CRITICAL)
        datasets.disable_progress_bars()
        builder = "json" if self.format in ("json", "jsonl") else "parquet"
        try:
            dataset = datasets.load_dataset(builder, data_files=str(self.path), split="train", streaming=True)
            yield from dataset
        except DataError:
            raise
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{self.spec} is not valid {self.options.encoding} (byte {exc.start} of a block: {exc.reason}); "
                "expected text in that encoding, try --encoding latin-1"
            ) from exc
        except Exception as exc:  # pandas, pyarrow and datasets each raise their own types
            if builder == "json":
                self._raise_json_error()
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot read {self.spec} as {self.format}: {first[:300]}") from exc

    def _raise_json_error(self) -> None:
        """After the JSON reader failed: find the offending line ourselves, since pyarrow's
        message names a byte block rather than a line."""
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        try:
            with opener(self.path, "rt", encoding="utf-8", errors="replace") as handle:
                head = handle.read(1)
                while head.isspace():
                    head = handle.read(1)
                handle.seek(0)
                if head == "[":  # one JSON document, not JSON lines
                    try:
                        json.load(handle)
                    except json.JSONDecodeError as exc:
                        raise DataError(
                            f"{self.spec} line {exc.lineno} is not valid JSON ({exc.msg}); expected a JSON array "
                            "of objects or one JSON object per line"
                        ) from exc
                    return
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(
                            f"{self.spec} line {number} is not valid JSON ({exc.msg}); expected one JSON object "
                            f"per line; received {line.strip()[:60]!r}"
                        ) from exc
                    if not isinstance(value, dict):
                        raise DataError(
                            f"{self.spec} line {number} is a JSON {type(value).__name__}, not an object; "
                            f"expected one JSON object per line; received {line.strip()[:60]!r}"
                        )
        except (OSError, EOFError):
            return

    def _lines(self) -> Iterator[tuple[int, str | None, Any]]:
        for number, line in enumerate(self._decoded_lines(), start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            index = number - 1
            if self.format == "fasttext":
                yield index, *self._fasttext(line, index)
            else:
                label, *rest = line.split(None, 1)  # the first whitespace-separated field
                yield index, rest[0].strip() if rest else "", label

    def _fasttext(self, line: str, index: int) -> tuple[str, str | list[str]]:
        tokens = line.split()
        labels = []
        while tokens and tokens[0].startswith(_FASTTEXT_PREFIX):
            labels.append(tokens.pop(0)[len(_FASTTEXT_PREFIX) :])
        if not labels:
            raise DataError(f"{self.spec} line {index + 1} has no {_FASTTEXT_PREFIX} label; expected '__label__X text'")
        return " ".join(tokens), labels if len(labels) > 1 else labels[0]

    def fingerprint(self) -> str:
        """SHA-256 of the file."""
        return file_sha256(self.path)


class HfDiskSource(FileSource):
    """``hf:PATH``: a dataset written by ``datasets.save_to_disk`` (a Dataset, one split,
    or a DatasetDict, one split per key). ClassLabel integers become their names."""

    def __init__(self, spec: str, path: Path, options: ReadOptions, lenient: bool = False) -> None:
        """``lenient``: as for `FileSource` (the options are another source's)."""
        import datasets

        super().__init__(spec, path, "hf", options, lenient=lenient)
        self._unlabelled_splits: list[str] | None = None
        try:
            self.dataset = datasets.load_from_disk(str(path))
        except Exception as exc:  # FileNotFoundError or datasets' own errors
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"cannot load {spec}: {first}; expected a folder written by datasets.save_to_disk") from exc

    def _parts(self) -> dict[str, Any] | None:
        import datasets

        return dict(self.dataset) if isinstance(self.dataset, datasets.DatasetDict) else None

    def _unlabelled(self) -> list[str]:
        """The DatasetDict's splits without labels: no label column, or every value missing
        (ClassLabel -1, as in imdb's "unsupervised" or GLUE's test splits). They are left out
        of `splits` and the label scan instead of failing every split's reading."""
        if self._unlabelled_splits is None:
            import datasets
            import pyarrow as pa
            import pyarrow.compute as pc

            parts = self._parts() or {}
            wanted = self.options.label_column or "label"
            unlabelled, found = [], False
            for name, dataset in parts.items():
                wanted_here = _column(wanted, list(dataset.column_names))
                if wanted_here is None:
                    unlabelled.append(name)
                    continue
                found = True
                column = dataset.data.column(wanted_here)
                # -1 means "no label" only in a ClassLabel column; elsewhere it is a class.
                class_label = isinstance(dataset.features[wanted_here], datasets.ClassLabel)
                if column.null_count == len(column) or (
                    class_label
                    and pa.types.is_integer(column.type)
                    and len(column)
                    and pc.all(pc.equal(column, -1)).as_py()
                ):
                    unlabelled.append(name)
            if parts and not found:
                # A mistyped --label-column: name the columns, as for a single Dataset.
                columns = list(next(iter(parts.values())).column_names)
                raise DataError(
                    f"{self.spec} has no label column {wanted!r}; expected one of {columns} (or a 0-based index)"
                )
            if parts and len(unlabelled) == len(parts):
                raise DataError(
                    f"{self.spec} has no labelled split (no label column {wanted!r}, or every label missing or -1 "
                    f"in {sorted(unlabelled)}); expected a split with labels"
                )
            if unlabelled:
                log.info("%s: leaving out split(s) %s, which have no labels", self.spec, sorted(unlabelled))
            self._unlabelled_splits = sorted(unlabelled)
        return self._unlabelled_splits

    def splits(self) -> list[str]:
        """The DatasetDict's labelled keys (none for a single Dataset)."""
        parts = self._parts()
        return sorted(set(parts) - set(self._unlabelled())) if parts is not None else []

    def check_split(self, split: str) -> None:
        """A DatasetDict must hold the split, with labels; a single Dataset is every split."""
        if self._parts() is not None:
            if split in self._unlabelled():
                raise DataError(
                    f"split {split!r} of {self.spec} has no labels; expected a labelled split, one of {self.splits()}"
                )
            Source.check_split(self, split)

    def _scan_splits(self) -> list[str]:
        # Every split, so that train and test agree on the label set.
        return self.splits() or [""]

    def count(self, split: str) -> int:
        """Rows in the split (empty texts included)."""
        self.check_split(split)
        parts = self._parts()
        return len(parts[split] if parts is not None else self.dataset)

    def _hf_rows(self, split: str) -> Iterator[dict[str, Any]]:
        import datasets

        parts = self._parts()
        dataset = parts[split] if parts is not None else self.dataset
        names: dict[str, list[str]] = {}
        for key, feature in dataset.features.items():
            # A ClassLabel, or a list of them (a multi-label column).
            inner = getattr(feature, "feature", feature)
            if isinstance(inner, datasets.ClassLabel):
                names[key] = inner.names

        def named(key: str, value: Any) -> Any:
            if key not in names or value is None:
                return value
            # -1 is how a ClassLabel stores "no label": keep it missing, not the last name.
            if isinstance(value, list):
                return [names[key][v] if v >= 0 else None for v in value]
            return names[key][value] if value >= 0 else None

        for row in dataset:
            yield {key: named(key, value) for key, value in row.items()}

    def fingerprint(self) -> str:
        """The dataset's own fingerprint(s), which change with its content."""
        parts = self._parts() or {"": self.dataset}
        return "hf:" + ",".join(f"{k}={v._fingerprint}" for k, v in sorted(parts.items()))
