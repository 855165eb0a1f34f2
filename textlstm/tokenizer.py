"""Text to token ids in plain Python, exactly as the model's TextVectorization does it.

This module imports only the standard library, so that a TFLite deployment can turn text
into the model's input without TensorFlow; `textlstm export --format tflite` copies it
beside the model. It reproduces, step by step, the standardizers in
``textlstm/vectorizer.py`` (TensorFlow's ``tf.strings.lower`` changes ASCII letters only;
the regular expressions are RE2's), whitespace splitting, the vocabulary lookup
(unknown tokens get id 1, padding is 0) and the ``max_length`` window (``keep`` start or
end). A test checks identical ids against TextVectorization on real reviews.

Use it on its own::

    from tokenizer import Tokenizer
    tok = Tokenizer.from_files("vocab.txt", "tokenizer.json")
    ids = tok.batch(["great film", "terrible"])   # list of equal-length id lists
"""

from __future__ import annotations

import bisect
import json
import re
import string
from pathlib import Path
from typing import Iterable, Sequence

PAD_ID = 0
OOV_ID = 1
STANDARDIZE_MODES = ("lower_strip_html_punctuation", "lower_and_strip_punctuation", "lower", "none")
KEEP_MODES = ("start", "end")

# The code points that RE2's [\p{Cc}\p{Cf}\p{Z}] matches in TensorFlow 2.21 (control,
# format and separator characters, which become spaces; the vectorizer leaves the space
# itself out of its pattern, which changes nothing), as inclusive ranges. Taken from
# RE2 rather than `unicodedata` because Python's Unicode tables are a different version
# (Python 3.11 lacks U+13439..U+1343F); a test compares all code points with TensorFlow.
_ODD_RANGES = (
    (0x0, 0x20), (0x7F, 0xA0), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x1680, 0x1680), (0x180E, 0x180E),
    (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F), (0x3000, 0x3000),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)  # fmt: skip
_ODD_STARTS = [start for start, _ in _ODD_RANGES]
# RE2's \s is ASCII only: tab, newline, form feed, carriage return and space (not \v).
_HTML_BREAK = re.compile(r"<br[\t\n\f\r ]*/?>")
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_odd_cache: dict[str, bool] = {}


def _is_odd(char: str) -> bool:
    odd = _odd_cache.get(char)
    if odd is None:
        code = ord(char)
        i = bisect.bisect_right(_ODD_STARTS, code) - 1
        odd = _odd_cache[char] = i >= 0 and code <= _ODD_RANGES[i][1]
    return odd


def _normalize_space(text: str) -> str:
    if text.isascii():
        # The common case: in ASCII, only the C0 controls and DEL are odd.
        if text.isprintable():
            return text
        return "".join(" " if (c < " " or c == "\x7f") else c for c in text)
    return "".join(" " if _is_odd(c) else c for c in text)


def standardize(text: str, mode: str) -> str:
    """Apply the ``vectorizer.standardize`` function called ``mode`` to one text."""
    if mode not in STANDARDIZE_MODES:
        raise ValueError(f"unknown standardize mode; expected one of {list(STANDARDIZE_MODES)}, received {mode!r}")
    text = _normalize_space(text)
    if mode == "none":
        return text
    text = text.translate(_ASCII_LOWER)
    if mode == "lower":
        return text
    if mode == "lower_strip_html_punctuation":
        text = _HTML_BREAK.sub(" ", text)
    return _PUNCTUATION.sub(" ", text)


class Tokenizer:
    """Turns texts into the classifier's token ids."""

    def __init__(self, vocabulary: Sequence[str], standardize: str, max_length: int, keep: str = "start") -> None:
        """``vocabulary`` is the model's ``vocab.txt`` as a list: line number = token id,
        with the padding ('') and '[UNK]' entries first."""
        if standardize not in STANDARDIZE_MODES:
            raise ValueError(
                f"unknown standardize mode; expected one of {list(STANDARDIZE_MODES)}, received {standardize!r}"
            )
        if keep not in KEEP_MODES:
            raise ValueError(f"unknown keep mode; expected one of {list(KEEP_MODES)}, received {keep!r}")
        if max_length < 1:
            raise ValueError(f"invalid max_length; expected an integer >= 1, received {max_length!r}")
        self.standardize = standardize
        self.max_length = max_length
        self.keep = keep
        tokens = list(vocabulary)
        # The first two lines are padding and [UNK]; ids of real tokens start at 2.
        self._ids = {token: i for i, token in enumerate(tokens) if i >= 2}

    @classmethod
    def from_files(cls, vocab_path: str | Path, config_path: str | Path) -> Tokenizer:
        """Load ``vocab.txt`` and the ``tokenizer.json`` written by the TFLite export."""
        with open(vocab_path, encoding="utf-8", newline="") as handle:
            lines = handle.read().split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        return cls(lines, config["standardize"], int(config["max_length"]), config.get("keep", "start"))

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, padding and [UNK] included."""
        return len(self._ids) + 2

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text after standardization and whitespace splitting."""
        return [t for t in standardize(text, self.standardize).split(" ") if t]

    def ids(self, text: str) -> list[int]:
        """The token ids of one text, cut to the ``max_length`` window (not padded)."""
        get = self._ids.get
        ids = [get(t, OOV_ID) for t in self.tokens(text)]
        if len(ids) > self.max_length:
            ids = ids[-self.max_length :] if self.keep == "end" else ids[: self.max_length]
        return ids

    def batch(self, texts: Iterable[str]) -> list[list[int]]:
        """Id rows for a batch, right-padded with 0 to the longest row (at least one column),
        the same shape the SavedModel feeds its LSTM."""
        rows = [self.ids(text) for text in texts]
        width = max([1, *(len(r) for r in rows)])
        return [r + [PAD_ID] * (width - len(r)) for r in rows]
