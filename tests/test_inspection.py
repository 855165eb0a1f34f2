"""`textlstm data inspect`: corpus summaries, coverage under a model, leakage."""

from __future__ import annotations

import json
from pathlib import Path

from textlstm.cli import main


def _inspect(cli, *args: str) -> dict:
    result = cli.invoke(main, ["data", "inspect", *args, "-q"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_inspection_counts_labels_lengths_empties_and_duplicates(cli, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    # Copies as the hold-out groups them: case and runs of whitespace do not count.
    path.write_text('text,label\n"one two three",a\n"One  two THREE",a\n"four",b\n"  ",b\n"five six",b\n')
    report = _inspect(cli, str(path))
    assert report["examples"] == 4
    assert report["labels"] == {"a": 2, "b": 2}
    assert report["skipped_empty_rows"] == 1
    assert report["duplicate_texts"] == 1
    assert report["length_tokens"]["p100"] == 3 and report["length_tokens"]["p50"] == 2
    assert abs(report["mean_length_tokens"] - (3 + 3 + 1 + 2) / 4) <= 0.05


def test_inspection_against_model_and_other_split(cli, trained_run, corpus_tar: Path, tmp_path: Path) -> None:
    report = _inspect(cli, str(corpus_tar), "--model", str(trained_run.output_dir), "--against", str(corpus_tar))
    assert report["examples"] == 200
    assert 0.0 <= report["oov_token_rate"] < 0.05  # the tiny corpus has ~20 distinct words
    assert report["truncated_share"] == 0.0  # no text is longer than max_length=40
    assert report["against"]["split"] == "test"
    assert 0 <= report["against"]["shared_texts"] <= 200
    same = _inspect(cli, str(corpus_tar), "--against", str(corpus_tar), "--against-split", "train")
    assert same["against"]["shared_texts"] == 200


def test_inspection_bad_split_is_one_line_error(cli, corpus_tar: Path) -> None:
    result = cli.invoke(main, ["data", "inspect", str(corpus_tar), "--split", "dev"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: split 'dev' not found")


def test_inspection_file_options_apply_to_the_file_not_to_a_folder_against_it(
    cli, corpus_dir: Path, tmp_path: Path
) -> None:
    leaked = sorted((corpus_dir / "test" / "pos").glob("*.txt"))[0].read_text()
    path = tmp_path / "reviews.csv"
    path.write_text(f'review,label\n"{leaked}",pos\n"a text of its own",neg\n')
    report = _inspect(cli, str(path), "--text-column", "review", "--against", str(corpus_dir))
    assert report["examples"] == 2 and report["against"]["shared_texts"] == 1
    # Given for the folder itself, the same option is refused rather than ignored.
    result = cli.invoke(main, ["data", "inspect", str(corpus_dir), "--text-column", "review"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --text-column does not apply to the folder"), result.stderr


def test_a_folder_or_archive_takes_an_encoding_and_a_label_map(cli, tmp_path: Path) -> None:
    import tarfile

    root = tmp_path / "corpus"
    texts = {"pos": ["caf\xe9 cr\xe8me, superb", "a fine film"], "neg": ["na\xefve and dull", "a bad film"]}
    for label, docs in texts.items():
        (root / label).mkdir(parents=True)
        for i, doc in enumerate(docs):
            (root / label / f"{i}.txt").write_bytes(doc.encode("latin-1"))
    archive = tmp_path / "corpus.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="corpus")
    for source in (root, archive):
        report = _inspect(cli, str(source), "--encoding", "latin-1", "--label-map", "pos=positive,neg=negative")
        assert report["labels"] == {"negative": 2, "positive": 2}, source
        # Read as latin-1, the accented words are words: "café" is one token, not two around a replacement.
        assert report["length_tokens"]["p100"] == 3, source
        result = cli.invoke(main, ["data", "inspect", str(source)])
        assert result.exit_code == 2 and "try --encoding latin-1" in result.stderr, source
    # --against a folder takes the same --encoding (its label map would name the other source's labels).
    report = _inspect(cli, str(root), "--encoding", "latin-1", "--against", str(archive))
    assert report["against"]["shared_texts"] == 4
    # ... and not a file's --format, which would read the archive as, say, lines.
    lines = tmp_path / "texts.txt"
    lines.write_bytes("pos caf\xe9 cr\xe8me, superb\nneg something else\n".encode("latin-1"))
    report = _inspect(cli, str(lines), "--format", "lines", "--encoding", "latin-1", "--against", str(archive))
    assert report["against"]["shared_texts"] == 1
    # Two folders renamed alike are one class.
    assert _inspect(cli, str(root), "--encoding", "latin-1", "--label-map", "neg=any,pos=any")["labels"] == {"any": 4}
