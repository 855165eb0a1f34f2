"""Pretrained word vectors (GloVe, word2vec text, fastText .vec) for the Embedding layer.

A vectors file is one vector a line, ``word v1 ... vD``, separated by single spaces,
UTF-8, optionally gzipped (recognised by its magic bytes, whatever the extension). A
first line of two integers, ``COUNT DIM``, is a word2vec/fastText header and must agree
with the vectors. The file is streamed once and only the vectors of vocabulary tokens
are kept, so a file of several gigabytes needs memory for the vocabulary's rows only.

Matching: a token takes the vector of the word spelled exactly like it; failing that, the
first word whose lower-cased form equals it (vocabulary tokens are lower-cased by the
standardizer, while GloVe 840B and fastText files are cased). A line whose word contains
spaces (GloVe 840B has some) is read as: the last DIM fields are the vector, everything
before them is the word; such a word never equals a token, since tokens are split on
whitespace.

Every line is checked for its field count, but numbers are parsed only on the lines whose
vectors are kept: parsing all of them would cost minutes on a multi-gigabyte file, for
values the model never sees.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from textlstm.config import ModelConfig
from textlstm.errors import DataError, describe
from textlstm.model import EMBEDDING_NAME, embedded_tokens
from textlstm.vectorizer import OOV_TOKEN, PAD_TOKEN

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER = re.compile(r"([0-9]+) ([0-9]+)")
# TextVectorization's padding and out-of-vocabulary entries (ids 0 and 1): no word vector
# stands for them, and they are not counted in the coverage.
_SPECIAL_TOKENS = frozenset((PAD_TOKEN, OOV_TOKEN))
_EXPECTED_FILE = "a GloVe, word2vec or fastText text vectors file (optionally gzipped)"
# How many uncovered tokens the log names, most frequent first.
_SHOWN_UNCOVERED = 10


@dataclass
class VectorsFileInfo:
    """What the first lines of a vectors file say about it."""

    path: Path
    gzipped: bool
    # (count, dimension) from a word2vec/fastText header line; None for GloVe files.
    header: tuple[int, int] | None
    dimension: int


@dataclass
class PretrainedVectors:
    """The vectors of a file that belong to vocabulary tokens, by token id."""

    info: VectorsFileInfo
    # Token id -> float32 vector of length info.dimension.
    rows: dict[int, np.ndarray]
    # Ids matched by exact spelling and by lower-casing the file's word.
    exact: int
    lowercased: int
    # Vector lines read (the header and blank lines not counted).
    vectors_in_file: int
    # Tokens that could have been covered (the vocabulary without padding and [UNK]).
    vocabulary_tokens: int
    # Tokens without a vector, in vocabulary order (most frequent first).
    uncovered: list[str] = field(default_factory=list)

    def coverage(self) -> dict[str, Any]:
        """JSON-ready figures for the manifest."""
        return {
            "file": str(self.info.path),
            "gzipped": self.info.gzipped,
            "header": self.info.header is not None,
            "dimension": self.info.dimension,
            "vectors_in_file": self.vectors_in_file,
            "vocabulary_tokens": self.vocabulary_tokens,
            "covered": len(self.rows),
            "coverage": round(len(self.rows) / self.vocabulary_tokens, 4) if self.vocabulary_tokens else 0.0,
            "exact_matches": self.exact,
            "lowercase_matches": self.lowercased,
        }


def check_embeddings_file(config: ModelConfig) -> VectorsFileInfo | None:
    """Check ``config.embeddings_file`` from its first lines, before any training work.

    Only the header and the first vector are read, so a wrong file fails in a moment rather
    than after the vocabulary is adapted. Raises DataError for a missing, empty or unreadable
    file, a header that disagrees with the first vector, or vectors whose dimension is not
    ``config.embedding_dim``. Returns None when no file is configured.
    """
    if config.embeddings_file is None:
        return None
    path = Path(config.embeddings_file)
    gzipped, lines = _open_lines(path)
    with contextlib.closing(lines):
        info, _ = _head(path, gzipped, lines)
    _check_dimension(info, config.embedding_dim)
    return info


def read_pretrained_vectors(path: str | Path, vocabulary: Sequence[str], dimension: int) -> PretrainedVectors:
    """Stream a vectors file and keep the vectors of the tokens in ``vocabulary``.

    Args:
        path: the vectors file (GloVe, word2vec text or fastText ``.vec``, optionally gzipped).
        vocabulary: tokens by id, as ``TextVectorization.get_vocabulary()`` returns them.
        dimension: the expected vector length (``model.embedding_dim``).

    Returns:
        The kept vectors by token id, with counts of how they matched.

    Raises:
        DataError: the file is missing, empty, not UTF-8, malformed (the line is named),
            has a header that disagrees with it, or vectors of another dimension.
    """
    path = Path(path)
    gzipped, lines = _open_lines(path)
    with contextlib.closing(lines):
        info, first = _head(path, gzipped, lines)
        _check_dimension(info, dimension)
        index = {token: i for i, token in enumerate(vocabulary) if token not in _SPECIAL_TOKENS}
        exact: dict[int, np.ndarray] = {}
        folded: dict[int, np.ndarray] = {}
        count = 0
        for number, line in _chain(first, lines):
            spaces = line.count(" ")
            if spaces < dimension:
                raise DataError(
                    f"{path} line {number} is not a word vector; expected a word and {dimension} numbers "
                    f"separated by spaces ({dimension + 1} fields); received {spaces + 1} field(s)"
                )
            word = line[: line.index(" ")] if spaces == dimension else line.rsplit(" ", dimension)[0]
            count += 1
            i = index.get(word)
            if i is not None and i not in exact:
                exact[i] = _values(line, dimension, path, number)
                folded.pop(i, None)
            lower = word.lower()
            if lower != word:
                i = index.get(lower)
                # Only the first lower-cased match counts, and never over an exact one.
                if i is not None and i not in exact and i not in folded:
                    folded[i] = _values(line, dimension, path, number)
        if info.header is not None and info.header[0] != count:
            raise DataError(
                f"{path}: the header announces {info.header[0]} vectors but the file holds {count} "
                f"(a truncated or edited file?); expected a header 'COUNT DIM' that agrees with the vectors; "
                f"received {info.header[0]} {info.header[1]}"
            )
    rows = {**folded, **exact}
    return PretrainedVectors(
        info=info,
        rows=rows,
        exact=len(exact),
        lowercased=len(folded),
        vectors_in_file=count,
        vocabulary_tokens=len(index),
        uncovered=[token for token, i in index.items() if i not in rows],
    )


def apply_pretrained_embeddings(
    classifier: Any, vocabulary: Sequence[str], config: ModelConfig
) -> dict[str, Any] | None:
    """Initialise the classifier's Embedding rows from ``config.embeddings_file``.

    Rows of tokens the file covers take its vectors; the others, and padding (row 0, which
    the mask hides) and ``[UNK]``, keep Keras's random initialisation. With
    ``config.freeze_embeddings`` the layer is made non-trainable, so call this before
    ``compile``.

    Args:
        classifier: the model from `textlstm.model.build_classifier`.
        vocabulary: tokens by id (the Embedding's rows are those `embedded_tokens` keeps).
        config: the model section (``embeddings_file``, ``freeze_embeddings``, ``embedding_dim``).

    Returns:
        Coverage figures for the manifest, or None when no vectors file is configured.

    Raises:
        DataError: the file is unusable (see `read_pretrained_vectors`) or covers no token.
    """
    if config.embeddings_file is None:
        return None
    started = time.time()
    vocabulary = embedded_tokens(classifier, list(vocabulary))
    vectors = read_pretrained_vectors(config.embeddings_file, vocabulary, config.embedding_dim)
    if not vectors.rows:
        raise DataError(
            f"pretrained vectors in {config.embeddings_file} cover none of the {vectors.vocabulary_tokens} "
            "vocabulary tokens; expected vectors for the corpus's words (this is probably the wrong file, "
            "vectors of another language, or a vectorizer.standardize whose tokens the file does not spell: "
            f"its words are matched as they are or lower-cased); received {vectors.vectors_in_file} vectors, "
            "none matching"
        )
    layer = classifier.get_layer(EMBEDDING_NAME)
    (matrix,) = layer.get_weights()
    ids = np.fromiter(vectors.rows, dtype=np.int64, count=len(vectors.rows))
    matrix[ids] = np.stack([vectors.rows[i] for i in ids.tolist()])
    layer.set_weights([matrix])
    layer.trainable = not config.freeze_embeddings
    figures = {**vectors.coverage(), "frozen": config.freeze_embeddings}
    log.info(
        "pretrained vectors cover %d of %d vocabulary tokens (%.1f %%); %d by lower-casing; "
        "%d vectors read in %.1f s%s",
        figures["covered"],
        figures["vocabulary_tokens"],
        100 * figures["covered"] / figures["vocabulary_tokens"],
        figures["lowercase_matches"],
        figures["vectors_in_file"],
        time.time() - started,
        "; the embedding is frozen" if config.freeze_embeddings else "",
    )
    if vectors.uncovered:
        log.info(
            "tokens without a pretrained vector (most frequent first): %s",
            " ".join(vectors.uncovered[:_SHOWN_UNCOVERED]),
        )
    return figures


def _open_lines(path: Path) -> tuple[bool, Iterator[tuple[int, str]]]:
    """Whether the file is gzipped, and its non-blank lines as (line number, text without
    trailing whitespace). Raises DataError at once for a missing file."""
    if not path.is_file():
        raise DataError(f"pretrained vectors file not found; {describe(_EXPECTED_FILE, str(path))}")
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}; expected {_EXPECTED_FILE}") from exc
    return gzipped, _read_lines(path, gzipped)


def _read_lines(path: Path, gzipped: bool) -> Iterator[tuple[int, str]]:
    number = 0
    try:
        with open(path, "rb") as raw:
            handle = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            # Split on b"\n" only: str.splitlines would also break at U+0085 or U+2028,
            # which occur inside words of real vector files.
            for number, data in enumerate(handle, start=1):
                data = data.rstrip()  # ASCII whitespace only (bytes), incl. fastText's trailing space
                if not data:
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path} line {number} is not valid UTF-8 (byte {exc.start} of the line); expected "
                        f"{_EXPECTED_FILE} in UTF-8 (binary word2vec .bin files are not read: convert them "
                        "to the text format)"
                    ) from exc
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                yield number, text
    except (OSError, EOFError, zlib.error) as exc:
        # gzip.BadGzipFile is an OSError; a cut-off download ends in EOFError.
        raise DataError(f"cannot read {path} after line {number}: {exc}; expected {_EXPECTED_FILE}") from exc


def _head(path: Path, gzipped: bool, lines: Iterator[tuple[int, str]]) -> tuple[VectorsFileInfo, tuple[int, str]]:
    """Read the optional header and the first vector line; return the file's description
    and that first vector line (which the caller still has to process)."""
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path} is empty; {describe(_EXPECTED_FILE, 'no vectors')}")
    header = None
    header_line = first[0]
    match = _HEADER.fullmatch(first[1])
    if match:
        header = (int(match.group(1)), int(match.group(2)))
        first = next(lines, None)
        if first is None:
            raise DataError(
                f"{path} has a header ({header[0]} {header[1]}) but no vectors; {describe(_EXPECTED_FILE, 'no vectors')}"
            )
    # The first word of a real file is usually a frequent one such as "the", without spaces,
    # so its line's field count gives the dimension.
    number, line = first
    dimension = line.count(" ")
    if dimension < 1:
        raise DataError(
            f"{path} line {number} is not a word vector; expected a word followed by numbers, separated by "
            f"spaces; received {line[:60]!r}"
        )
    if header is not None and header[1] != dimension:
        raise DataError(
            f"{path}: the header (line {header_line}) announces dimension {header[1]} but line {number} holds "
            f"{dimension} numbers; expected a header 'COUNT DIM' that agrees with the vectors; "
            f"received {header[0]} {header[1]}"
        )
    return VectorsFileInfo(path=path, gzipped=gzipped, header=header, dimension=dimension), first


def _check_dimension(info: VectorsFileInfo, expected: int) -> None:
    if info.dimension != expected:
        raise DataError(
            f"{info.path} holds vectors of dimension {info.dimension} but model.embedding_dim is {expected}; "
            f"{describe(f'vectors of dimension {expected}', info.dimension)}; to use this file, "
            f"pass --set model.embedding_dim={info.dimension}"
        )


def _values(line: str, dimension: int, path: Path, number: int) -> np.ndarray:
    """The last ``dimension`` fields of ``line`` as float32; a DataError naming the line
    when one is not a finite number."""
    fields = line.rsplit(" ", dimension)[1:]
    try:
        vector = np.array([float(value) for value in fields], dtype=np.float32)
    except ValueError:
        bad = next(value for value in fields if not _is_number(value))
        raise DataError(
            f"{path} line {number} holds a value that is not a number; expected {dimension} numbers after the "
            f"word; received {bad!r}"
        ) from None
    if not np.isfinite(vector).all():
        bad = fields[int(np.argmin(np.isfinite(vector)))]
        raise DataError(
            f"{path} line {number} holds a value that is not a finite float32 number; expected {dimension} "
            f"finite numbers after the word; received {bad!r}"
        )
    return vector


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest
