"""`export --format tflite`: a TFLite model over token ids, a plain-Python tokenizer that
gives TextVectorization's ids, and `predict` running the .tflite file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import textlstm
from textlstm.cli import main
from textlstm.tokenizer import STANDARDIZE_MODES, Tokenizer, standardize

TEXTS = [
    "great superb film",
    "awful boring waste",
    "",
    "   ",
    "zzz unknownword qqq",
    "the " * 500,
    "GREAT!!! Superb,film<br />AWFUL<BR/>boring",
    "café naïve Ünïcödé 日本語 😀 \u00a0great\u2028awful\u0085film\u200bwaste",
    "\t tabs\nand\r\nnewlines\x0bvt\x00nul",
]

# Runs with only the export folder on sys.path: the copied tokenizer needs no TensorFlow
# and no textlstm.
STANDALONE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tokenizer import Tokenizer
tok = Tokenizer.from_files(sys.argv[1] + "/vocab.txt", sys.argv[1] + "/tokenizer.json")
print(json.dumps({
    "ids": [tok.ids(t) for t in json.loads(sys.stdin.read())],
    "foreign": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "textlstm", "numpy")),
}))
"""


@pytest.fixture(scope="module")
def tflite_export(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return textlstm.export(trained_run.output_dir, tmp_path_factory.mktemp("tflite") / "tiny", format="tflite")


def _vectorizer_ids(run_dir: Path, texts: list[str]) -> list[list[int]]:
    import tensorflow as tf

    from textlstm.artifacts import load_text_model

    model = load_text_model(run_dir)
    rows = model.get_layer("window")(model.get_layer("vectorizer")(tf.constant(texts))).numpy()
    return [[int(x) for x in row if x != 0] for row in rows]


@pytest.mark.parametrize("mode", STANDARDIZE_MODES)
def test_standardize_matches_tensorflow_on_every_code_point(mode: str) -> None:
    import numpy as np
    import tensorflow as tf

    from textlstm.vectorizer import standardizer

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    tricky = ["<BR />x", "<br\t/>", "<br>", "<br  >", "a<br/ >b", "<bR\n/>", "ÀÉÎ ABC", "x\u0085y", "i\u0130"]
    # ASCII spaces mixed with the odd ones, which the vectorizer replaces but leaves spaces be.
    tricky += ["a \u00a0 b\t \u0085c ", "<br \u00a0/>x", " \u2028 <br\u200b />  y  "]
    texts = chars + tricky + TEXTS
    # Runs of spaces are compared as one: whitespace splitting cannot tell them apart.
    want = tf.strings.regex_replace(standardizer(mode)(tf.constant(texts)), " +", " ").numpy()
    got = np.array([re.sub(" +", " ", standardize(t, mode)).encode() for t in texts], dtype=object)
    mismatched = [hex(ord(t)) if len(t) == 1 else t for t, a, b in zip(texts, got, want, strict=True) if a != b]
    assert mismatched == []


def test_tflite_export_files_and_token_ids(tflite_export: Path, trained_run) -> None:
    assert tflite_export.name == "1"
    assert sorted(p.name for p in tflite_export.iterdir()) == [
        "labels.json",
        "metadata.json",
        "model.tflite",
        "tokenizer.json",
        "tokenizer.py",
        "vocab.txt",
    ]
    assert (tflite_export / "vocab.txt").read_text() == (trained_run.output_dir / "vocab.txt").read_text()
    assert json.loads((tflite_export / "tokenizer.json").read_text())["max_length"] == 40
    metadata = json.loads((tflite_export / "metadata.json").read_text())
    assert metadata["format"] == "tflite" and metadata["labels"] == ["neg", "pos"]
    done = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(tflite_export)],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tflite_export.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["foreign"] == []
    assert result["ids"] == _vectorizer_ids(trained_run.output_dir, TEXTS)
    assert max(len(ids) for ids in result["ids"]) == 40  # the 500-word text is cut to max_length


def test_tflite_predict_matches_the_run(cli, tflite_export: Path, trained_run) -> None:
    expected = textlstm.predict(trained_run.output_dir, TEXTS)
    for path in (tflite_export, tflite_export.parent, tflite_export / "model.tflite"):
        rows = textlstm.predict(path, TEXTS)
        assert [r["label"] for r in rows] == [r["label"] for r in expected]
        for got, want in zip(rows, expected, strict=True):
            assert list(got["probabilities"].values()) == pytest.approx(list(want["probabilities"].values()), abs=1e-4)
    result = cli.invoke(main, ["predict", str(tflite_export.parent), "-", "-q"], input="great superb film\n\n")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["great superb film", ""]
    assert lines[0]["label"] == expected[0]["label"]


def test_tflite_export_verify_and_versions(cli, trained_run, tmp_path: Path) -> None:
    base = ["export", str(trained_run.output_dir), "--export-dir", str(tmp_path / "exp"), "-q"]
    result = cli.invoke(main, [*base, "--format", "tflite", "--verify"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "tflite" and report["version"] == 1 and "top_k" not in report
    verify = report["verify"]
    assert verify["passed"] is True and verify["token_ids"] == "identical"
    assert verify["max_abs_diff"] <= 1e-4 and verify["texts"] >= 40
    # A SavedModel next to it takes the next version; predict on the parent picks it.
    result = cli.invoke(main, base)
    assert result.exit_code == 0 and json.loads(result.stdout)["version"] == 2
    assert textlstm.load_predictor(tmp_path / "exp").kind == "export"
    assert textlstm.load_predictor(tmp_path / "exp" / "1").kind == "tflite"


def test_tflite_bad_options_and_broken_exports(cli, tflite_export: Path, trained_run, tmp_path: Path) -> None:
    result = cli.invoke(
        main,
        [
            "export",
            str(trained_run.output_dir),
            "--export-dir",
            str(tmp_path / "e"),
            "--format",
            "tflite",
            "--top-k",
            "1",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --top-k applies to --format savedmodel; expected no --top-k with --format tflite "
        "(its only output is probabilities)"
    ]
    assert not (tmp_path / "e").exists()

    broken = tmp_path / "broken"
    shutil.copytree(tflite_export, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "labels.json").unlink()
    result = cli.invoke(main, ["predict", str(broken), "great"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: TFLite export {broken} is incomplete: missing labels.json, tokenizer.json; expected all of "
        "model.tflite, vocab.txt, labels.json, tokenizer.json, metadata.json"
    )
    shutil.copytree(tflite_export, tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.tflite").write_bytes(b"not a flatbuffer")
    result = cli.invoke(main, ["predict", str(tmp_path / "corrupt"), "great"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"error: cannot load {tmp_path / 'corrupt' / 'model.tflite'}")
    )


def test_tokenizer_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="unknown keep mode"):
        Tokenizer(["", "[UNK]", "a"], "lower", 10, keep="middle")
    with pytest.raises(ValueError, match="invalid max_length"):
        Tokenizer(["", "[UNK]", "a"], "lower", 0)
    tok = Tokenizer(["", "[UNK]", "a", "b"], "lower", 2, keep="end")
    assert tok.batch(["A b c", "", "b"]) == [[3, 1], [0, 0], [3, 0]]
