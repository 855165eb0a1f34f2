"""Single-file sources: CSV, TSV, JSONL, parquet and lines, their options and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_OVERRIDES
from textlstm.cli import main
from textlstm.errors import DataError, InputError
from textlstm.file_sources import ReadOptions, parse_label_map
from textlstm.source_spec import open_source

ROWS = [("great film", "pos"), ("awful plot", "neg"), ("superb acting", "pos"), ("boring mess", "neg")]


def _examples(path: Path, **options) -> list[tuple[str, str, str]]:
    return list(open_source(str(path), ReadOptions(**options)).examples("train"))


def test_file_sources_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("id,text,label\n" + "".join(f'{i},"{t}",{lab}\n' for i, (t, lab) in enumerate(ROWS)))
    source = open_source(str(path))
    assert source.label_names() == ["neg", "pos"]
    assert source.count("train") == 4
    assert [(t, lab) for _, t, lab in source.examples("test")] == ROWS


def test_file_sources_tsv_without_header_by_index_with_label_map(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("".join(f'{1 if lab == "pos" else 2}\t{t}\t"unbalanced\n' for t, lab in ROWS))
    got = _examples(path, header=False, text_columns=("1",), label_column="0", label_map={"1": "pos", "2": "neg"})
    assert [(t, lab) for _, t, lab in got] == ROWS


def test_file_sources_several_text_columns_are_joined(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text('title,body,label\n"Big win","for the team",sport\n"Rates up","banks react",biz\n')
    got = _examples(path, text_columns=("title", "body"))
    assert [t for _, t, _ in got] == ["Big win for the team", "Rates up banks react"]


def test_file_sources_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in ROWS))
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": [t for t, _ in ROWS], "label": [lab for _, lab in ROWS]}), parquet)
    for path in (jsonl, parquet):
        assert [(t, lab) for _, t, lab in _examples(path)] == ROWS


def test_file_sources_csv_values_are_read_as_written(tmp_path: Path) -> None:
    # pandas guessed types per block of rows: "01" became 1 in one block and stayed "01"
    # in another (two classes), "TRUE" and "True" became one, "NA" or "null" went missing.
    path = tmp_path / "literal.csv"
    rows = [("null", "01"), ("NA", "NA"), ("None", "TRUE"), ("nan", "True")] * 3000
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows) + "x,02\n")
    source = open_source(str(path))
    assert source.label_names() == ["01", "02", "NA", "TRUE", "True"]
    assert source.count("train") == len(rows) + 1 and source.skipped() == 0
    assert [t for _, t, _ in source.examples("train")][:4] == ["null", "NA", "None", "nan"]


def test_file_sources_csv_with_a_byte_order_mark_before_a_quoted_header(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbf"text","label"\r\n"hello world","pos"\r\n   \r\n"bad day","neg"\r\n')
    assert [(t, lab) for _, t, lab in _examples(path)] == [("hello world", "pos"), ("bad day", "neg")]


def test_file_sources_csv_bad_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\n" + b"fine text,a\n" * 900 + b"caf\xe9,b\n")
    with pytest.raises(DataError, match=r"bad\.csv is not valid utf-8 at byte 10814 \(line 902\)"):
        list(open_source(str(path)).examples("train"))


def test_file_sources_csv_errors_name_the_file_line(tmp_path: Path) -> None:
    # Blank lines and a quoted line break come before the bad row: its line is 7, row 4.
    path = tmp_path / "gaps.csv"
    path.write_text('text,label\n\n"two\nlines",a\nx,b\n\ny,\n')
    with pytest.raises(DataError, match=r"gaps\.csv row 7 has no label"):
        list(open_source(str(path)).examples("train"))


def test_file_sources_jsonl_text_must_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n{"text": ["a", "b"], "label": "b"}\n')
    with pytest.raises(DataError, match=r"row 2: text column 'text' holds a value of type list; expected a string"):
        list(open_source(str(path)).examples("train"))


def test_file_sources_integer_labels_become_names(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    assert open_source(str(path)).label_names() == ["0", "1"]


def test_file_sources_lines_latin1_with_label_regex(tmp_path: Path) -> None:
    path = tmp_path / "TREC.train"
    path.write_bytes(
        "DESC:manner How did serfdom develop ?\nHUM:ind Who was Caf\xe9 Society's star ?\n".encode("latin-1")
    )
    got = _examples(path, format="lines", encoding="latin-1", label_regex=r"^([A-Z]+):")
    assert got == [("0", "How did serfdom develop ?", "DESC"), ("1", "Who was Café Society's star ?", "HUM")]


def test_file_sources_lines_split_on_any_whitespace_and_drop_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "tabbed.txt"
    path.write_text("\ufeffpos\tgreat movie here\nneg   awful  plot\nneg\n")
    assert _examples(path, format="lines") == [("0", "great movie here", "pos"), ("1", "awful  plot", "neg")]
    fasttext = tmp_path / "bom.ft"
    fasttext.write_text("\ufeff__label__pos great\n")
    assert _examples(fasttext, format="fasttext") == [("0", "great", "pos")]


def test_file_sources_fasttext_and_gzip(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "train.ft"
    path.write_text("__label__pos great film\n\n__label__neg awful plot\n")
    assert _examples(path, format="fasttext") == [("0", "great film", "pos"), ("2", "awful plot", "neg")]
    packed = tmp_path / "data.csv.gz"
    packed.write_bytes(gzip.compress(b'text,label\n"good one",pos\n"bad one",neg\n'))
    assert [(t, lab) for _, t, lab in _examples(packed)] == [("good one", "pos"), ("bad one", "neg")]
    lines = tmp_path / "lines.txt.gz"
    lines.write_bytes(gzip.compress(b"pos good\nneg bad\n"))
    assert [lab for _, _, lab in _examples(lines, format="lines")] == ["pos", "neg"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("plain text line\n", r"line 1 has no __label__ label"), ("__label__ some text\n", r"row 1 has no label")],
)
def test_file_sources_fasttext_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.ft"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        _examples(path, format="fasttext")


def test_file_sources_empty_texts_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text('text,label\n"good",pos\n"",neg\n"   ",neg\n"bad",neg\n')
    source = open_source(str(path))
    assert source.count("train") == 2 and source.skipped() == 2
    with pytest.raises(DataError, match=r"row 3 has an empty text; expected text in every row \(--strict\)"):
        list(open_source(str(path), ReadOptions(strict=True)).examples("train"))


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("e.csv", "", {}, r"e\.csv is empty"),
        ("h.csv", "text,label\n", {}, r"has a header but no rows"),
        ("m.csv", "body,label\nx,pos\n", {}, r"has no text column 'text'; expected one of \['body', 'label'\]"),
        ("l.csv", "text,label\nx,\n", {}, r"row 2 has no label"),
        ("r.txt", "XX y\n", {"format": "lines", "label_regex": r"^([0-9]+)"}, r"line|row 1: --label-regex"),
        ("g.txt", "XX y\n", {"format": "lines", "label_regex": r"^[A-Z]+"}, r"needs a group"),
        ("f.csv", "text,label\nx,y\n", {"format": "xml"}, r"unknown --format; expected one of"),
        ("s.csv", "text,label\nx,y\n", {"label_column": "text"}, r"is both text and label"),
        ("n.jsonl", '{"text": "a", "label": "x"}\n', {"header": False}, r"--no-header does not apply to the jsonl"),
        (
            "c.txt",
            "a text\n",
            {"format": "lines", "text_columns": ("5",), "label_column": "9"},
            r"--text-column, --label-column do not apply to the lines file .*; expected .* only with csv or",
        ),
        ("d.jsonl", '{"text": "a", "label": "x"}\n', {"delimiter": ";"}, r"--delimiter does not apply"),
        ("e.jsonl", '{"text": "a", "label": "x"}\n', {"encoding": "latin-1"}, r"JSON and parquet text is UTF-8"),
        (
            "m.csv",
            "text,label\nx,0\ny,1\n",
            {"label_map": {"0": "neg", "2": "pos"}},
            r"--label-map renames \['2'\], which .*m\.csv has no label for; expected labels among \['0', '1'\]",
        ),
        (
            "j.jsonl",
            '{"text": "a", "label": "x"}\nnot json\n',
            {},
            r"j\.jsonl line 2 is not valid JSON \(Expecting value\); expected one JSON object per line; received 'not json'",
        ),
    ],
)
def test_file_sources_bad_input(tmp_path: Path, name: str, content: str, options: dict, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        source = open_source(str(path), ReadOptions(**options))
        source.label_names()  # the scan train and evaluate make first
        list(source.examples("train"))
    assert "\n" not in str(info.value)


def test_file_sources_damaged_files(tmp_path: Path) -> None:
    import gzip

    dup = tmp_path / "dup.csv"
    dup.write_text("text,text,label\na,b,c\n")
    with pytest.raises(DataError, match=r"repeats the column name\(s\) \['text'\]; expected unique names"):
        open_source(str(dup)).label_names()
    packed = gzip.compress(b"text,label\n" + b'"good one",pos\n' * 20000)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"cannot read .*cut\.csv\.gz as csv: Compressed file ended"):
        _examples(truncated)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes([0xFF, 0xFE, 0x00, 0x81]) + bytes(range(256)) * 8)
    with pytest.raises(DataError, match=r"bin\.csv is not valid utf-8 .*try --encoding latin-1"):
        _examples(binary)


def test_file_sources_truncated_tar_archive(corpus_tar: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(corpus_tar.read_bytes()[:6000])
    with pytest.raises(DataError, match=r"cannot read archive .*cut\.tar\.gz: Compressed file ended"):
        open_source(str(cut))


def test_file_sources_invalid_bytes_name_file_offset_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"pos fine\nneg caf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.txt is not valid utf-8 at byte 16 \(line 2\).*--encoding latin-1"):
        _examples(path, format="lines")


def test_file_sources_label_map_parsing() -> None:
    assert parse_label_map("1=World, 2=Sports") == {"1": "World", "2": "Sports"}
    with pytest.raises(DataError, match=r"bad --label-map item; expected OLD=NEW"):
        parse_label_map("1=World,2")


def test_file_sources_cli_train_and_evaluate_csv(cli, tmp_path: Path) -> None:
    words = {"pos": "good great superb loved", "neg": "bad awful boring hated"}
    lines = (
        ["review,sentiment"]
        + [f'"the film was {words[lab].split()[i % 4]} {i}",{lab}' for i in range(60) for lab in words]
        + ['"",pos', '"  ",neg']
    )  # two rows without text: skipped, and said so
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    common = ["--text-column", "review", "--label-column", "sentiment"]
    run = tmp_path / "run"
    result = cli.invoke(
        main, ["train", "--data", str(tmp_path / "train.csv"), "--output-dir", str(run), *common, *sets]
    )
    assert result.exit_code == 0, result.stderr
    assert "2 rows of" in result.stderr and "have an empty text and were skipped" in result.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["read_options"]["text_columns"] == ["review"]
    assert manifest["data"]["skipped_empty_rows"] == 2
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "train.csv"), "-q", *common])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 120
    assert json.loads(result.stdout)["skipped_empty_rows"] == 2
    # Without reading options, a CSV is read with the columns the run was trained with.
    (tmp_path / "test.csv").write_text("\n".join(lines[:21]) + "\n")
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "test.csv")])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 20
    assert "as the model's training data was read: --text-column review --label-column sentiment" in result.stderr
    # Given any reading option, the command line says how to read: here, wrongly.
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "test.csv"), "--encoding", "utf-8"])
    assert result.exit_code == 2 and "has no text column 'text'" in result.stderr
    # Another kind of source is read with the defaults.
    (tmp_path / "test.jsonl").write_text('{"text": "the film was good", "label": "pos"}\n')
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "test.jsonl"), "-q"])
    assert result.exit_code == 0 and json.loads(result.stdout)["examples"] == 1, result.stderr

    (tmp_path / "other.csv").write_text('review,sentiment\n"so so",mixed\n')
    result = cli.invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "other.csv"), *common])
    assert result.exit_code == 2
    assert "labels the model does not know: ['mixed']; expected labels among ['neg', 'pos']" in result.stderr


def test_file_sources_hf_saved_dataset_dict_with_class_labels(tmp_path: Path) -> None:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    parts = {
        "train": datasets.Dataset.from_dict(
            {"text": ["good", "", "bad", " ", "fine"], "label": [1, 0, 0, 1, 1]}, features=features
        ),
        "test": datasets.Dataset.from_dict({"text": ["awful"], "label": [0]}, features=features),
    }
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "saved"))
    source = open_source(f"hf:{tmp_path / 'saved'}")
    assert source.splits() == ["test", "train"]
    assert source.label_names() == ["neg", "pos"]
    assert [(t, lab) for _, t, lab in source.examples("train")] == [("good", "pos"), ("bad", "neg"), ("fine", "pos")]
    assert [(t, lab) for _, t, lab in source.examples("test")] == [("awful", "neg")]
    assert (source.skipped("train"), source.skipped("test")) == (2, 0)  # counted per split
    with pytest.raises(DataError, match=r"split 'dev' not found"):
        list(source.examples("dev"))


def test_file_sources_hf_unlabelled_splits_are_left_out(tmp_path: Path) -> None:
    # Like imdb's "unsupervised" split (ClassLabel -1) and a test split without labels:
    # they used to fail the label scan, and with it every split's reading.
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    parts = {
        "train": datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]}, features=features),
        "unsupervised": datasets.Dataset.from_dict({"text": ["meh", "hm"], "label": [-1, -1]}, features=features),
        "test": datasets.Dataset.from_dict({"text": ["no label column"]}),
    }
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "saved"))
    source = open_source(f"hf:{tmp_path / 'saved'}")
    assert source.splits() == ["train"]
    assert source.label_names() == ["neg", "pos"]
    assert [(t, lab) for _, t, lab in source.examples("train")] == [("good", "pos"), ("bad", "neg")]
    with pytest.raises(DataError, match=r"^split 'unsupervised' of hf:.* has no labels; expected a labelled split"):
        source.check_split("unsupervised")
    only = {"a": parts["unsupervised"], "b": parts["test"]}
    datasets.DatasetDict(only).save_to_disk(str(tmp_path / "none"))
    with pytest.raises(DataError, match=r"has no labelled split \(no label column 'label', or every label"):
        open_source(f"hf:{tmp_path / 'none'}").label_names()
    # Without hf: the folder would be read as class folders of Arrow files.
    with pytest.raises(DataError, match=r"is a Hugging Face dataset folder .*; expected hf:"):
        open_source(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"^--format does not apply to the hf file"):
        open_source(f"hf:{tmp_path / 'saved'}", ReadOptions(format="csv"))
    # ... unless the options are another source's (data inspect FILE --format X --against hf:).
    assert open_source(f"hf:{tmp_path / 'saved'}", ReadOptions(format="lines"), file_options_only=True).splits() == [
        "train"
    ]
    with pytest.raises(DataError, match=r"has no label column 'lable'; expected one of \['text', 'label'\]"):
        open_source(f"hf:{tmp_path / 'saved'}", ReadOptions(label_column="lable")).splits()
    # -1 means "no label" only in a ClassLabel column: in a plain int column it is a class.
    plain = {"train": {"text": ["a", "b"], "label": [1, -1]}, "test": {"text": ["c"], "label": [-1]}}
    datasets.DatasetDict({k: datasets.Dataset.from_dict(v) for k, v in plain.items()}).save_to_disk(
        str(tmp_path / "plain")
    )
    assert open_source(f"hf:{tmp_path / 'plain'}").splits() == ["test", "train"]


def test_file_sources_read_options_take_python_columns(tmp_path: Path) -> None:
    # A bare name was read letter by letter, and label_column=0 was taken as unset ("label").
    path = tmp_path / "rows.csv"
    path.write_text("label,sentence,other\nx,first text,pos\ny,second text,neg\n")
    options = ReadOptions(text_columns="sentence", label_column=2)
    assert options.text_columns == ("sentence",) and options.label_column == "2"
    assert [(t, lab) for _, t, lab in open_source(str(path), options).examples("train")] == [
        ("first text", "pos"),
        ("second text", "neg"),
    ]
    assert [
        lab for _, _, lab in open_source(str(path), ReadOptions(text_columns=(1,), label_column=0)).examples("")
    ] == [
        "x",
        "y",
    ]
    with pytest.raises(InputError, match=r"bad label_column; expected a column name or a 0-based int index"):
        ReadOptions(label_column=1.5)


def test_file_sources_hf_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset folder not found; expected hf:PATH"):
        open_source(f"hf:{tmp_path / 'nothing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataError, match=r"cannot load hf:.*empty: .*expected a folder written by datasets\.save_to_disk"
    ):
        open_source(f"hf:{tmp_path / 'empty'}")


_PEAK_RSS = """
import json, resource, sys
from textlstm.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


@pytest.mark.slow
def test_file_sources_10mb_single_line_is_truncated(cli, tmp_path: Path) -> None:
    import subprocess
    import sys

    rows = [
        {"text": f"{'good great fine' if i % 2 else 'bad awful dull'} film {i}", "label": "pn"[i % 2]}
        for i in range(60)
    ]
    rows.insert(30, {"text": "great film " * 1_000_000 + "awful", "label": "p"})
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert data.stat().st_size > 10_000_000
    run = tmp_path / "run"
    sets = [arg for item in [*TINY_OVERRIDES, "training.epochs=1"] for arg in ("--set", item)]
    # A subprocess, so that its peak RSS is this training run's alone.
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, "train", "--data", str(data), "--output-dir", str(run), "-q", *sets],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak = json.loads(done.stderr.strip().splitlines()[-1])["max_rss_mb"]
    # About 0.8 GB for TensorFlow and a tiny run, plus under 0.2 GB for the 2M-token line
    # (measured); padding a batch to that line's length would need gigabytes.
    assert peak < 2048, f"peak RSS {peak:.0f} MB"
    assert json.loads(done.stdout)["train_examples"] + json.loads(done.stdout)["val_examples"] == 61

    result = cli.invoke(main, ["data", "inspect", str(data), "--model", str(run)])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["length_tokens"]["p100"] == 2_000_001
    assert report["truncated_share"] == round(1 / 61, 4)
    result = cli.invoke(main, ["predict", str(run), rows[30]["text"], "-q"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["label"] in ("n", "p")
