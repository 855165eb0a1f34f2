"""Data sources: folders, archives, TFDS (mocked), and their errors."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from textlstm.errors import DataError
from textlstm.source_spec import open_source


@pytest.mark.parametrize("kind", ["corpus_dir", "corpus_tar", "corpus_zip"])
def test_sources_read_aclimdb_layout(kind: str, request: pytest.FixtureRequest) -> None:
    source = open_source(str(request.getfixturevalue(kind)))
    assert source.splits() == ["test", "train"]
    assert source.label_names() == ["neg", "pos"]
    assert source.count("train") == 200
    examples = list(source.examples("test"))
    assert len(examples) == 60
    assert {label for _, _, label in examples} == {"neg", "pos"}
    assert len({key for key, _, _ in examples}) == 60
    assert all("<br />" in text for _, text, _ in examples)


def test_sources_folder_parent_of_aclimdb_and_unsup_skipped(corpus_dir: Path, tmp_path: Path) -> None:
    # The official archive has train/unsup (unlabelled) and extra files; both are ignored.
    root = tmp_path / "data"
    (root / "aclImdb" / "train" / "unsup").mkdir(parents=True)
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    (root / "aclImdb" / "train" / "pos").mkdir()
    (root / "aclImdb" / "train" / "pos" / "1_9.txt").write_text("fine")
    (root / "aclImdb" / "train" / "neg").mkdir()
    (root / "aclImdb" / "train" / "neg" / "2_1.txt").write_text("bad")
    (root / "aclImdb" / "README").write_text("readme")
    # Loose files of the official archive that look like SPLIT/LABEL/FILE one level up.
    (root / "aclImdb" / "train" / "labeledBow.feat").write_text("0 0:1")
    (root / "aclImdb" / "train" / "urls_pos.txt").write_text("http://x")
    (root / "aclImdb" / "imdb.vocab").write_text("the")
    for spec in (root, root / "aclImdb"):
        source = open_source(str(spec))
        assert source.splits() == ["train"]
        assert source.label_names() == ["neg", "pos"]
        assert source.count("train") == 2
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "aclImdb", arcname="aclImdb")
    source = open_source(str(archive))
    assert source.splits() == ["train"] and source.label_names() == ["neg", "pos"]
    assert sorted(key for key, _, _ in source.examples("train")) == [
        "aclImdb/train/neg/2_1.txt",
        "aclImdb/train/pos/1_9.txt",
    ]


@pytest.mark.parametrize("kind", ["folder", "tar", "zip"])
def test_sources_class_folders_without_splits(tmp_path: Path, kind: str) -> None:
    import zipfile

    root = tmp_path / "corpus"
    for label, n in (("ham", 3), ("spam", 2)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            (root / label / f"{i}.txt").write_text(f"{label} {i}")
    spec = root
    if kind == "tar":
        spec = tmp_path / "corpus.tgz"
        with tarfile.open(spec, "w:gz") as tar:
            tar.add(root, arcname="corpus")
    elif kind == "zip":
        spec = tmp_path / "corpus.zip"
        with zipfile.ZipFile(spec, "w") as archive:
            for file in sorted(root.rglob("*.txt")):
                archive.write(file, file.relative_to(tmp_path))
    source = open_source(str(spec))
    assert source.label_names() == ["ham", "spam"]
    assert source.count("train") == source.count("test") == 5
    assert sorted(text for _, text, _ in source.examples("train")) == ["ham 0", "ham 1", "ham 2", "spam 0", "spam 1"]


def test_sources_single_class_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "1.txt").write_text("x")
    with pytest.raises(DataError, match=r"LABEL/FILE with at least 2 labels"):
        open_source(str(tmp_path))


def test_sources_fingerprint_changes_with_content(tmp_path: Path) -> None:
    for text in ("one", "two"):
        folder = tmp_path / text / "train" / "a"
        folder.mkdir(parents=True)
        (folder / "x.txt").write_text(text)
        (tmp_path / text / "train" / "b").mkdir()
        (tmp_path / text / "train" / "b" / "y.txt").write_text("same")
    assert open_source(str(tmp_path / "one")).fingerprint() != open_source(str(tmp_path / "two")).fingerprint()


def test_sources_missing_path() -> None:
    with pytest.raises(
        DataError, match=r"data source not found; expected an existing file, folder.*received 'no/such/dir'"
    ):
        open_source("no/such/dir")


def test_sources_unknown_scheme() -> None:
    with pytest.raises(DataError, match=r"unknown data source scheme 's3:'; expected one of \['tfds:', 'hf:'\]"):
        open_source("s3://bucket/data")


def test_sources_archive_without_class_folders(tmp_path: Path) -> None:
    loose = tmp_path / "notes.txt"
    loose.write_text("hello")
    path = tmp_path / "flat.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(loose, arcname="notes.txt")
    with pytest.raises(
        DataError, match=r"has no class folders; expected SPLIT/LABEL/FILE \(e\.g\. train/pos/1\.txt\) or LABEL/FILE"
    ):
        open_source(str(path))


def test_sources_unsupported_file_and_bad_split(tmp_path: Path, corpus_dir: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("a,b\n")
    with pytest.raises(DataError, match=r"unsupported data file"):
        open_source(str(path))
    with pytest.raises(DataError, match=r"split 'validation' not found .*expected one of \['test', 'train'\]"):
        list(open_source(str(corpus_dir)).examples("validation"))


def test_sources_corrupt_archive(tmp_path: Path) -> None:
    path = tmp_path / "broken.tar.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match=r"cannot read archive .*broken\.tar\.gz"):
        open_source(str(path))


def test_sources_non_utf8_document(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "train" / label).mkdir(parents=True)
    (tmp_path / "train" / "a" / "x.txt").write_bytes(b"caf\xe9")
    (tmp_path / "train" / "b" / "y.txt").write_text("fine")
    with pytest.raises(DataError, match=r"x\.txt is not valid UTF-8"):
        list(open_source(str(tmp_path)).examples("train"))


def test_sources_tfds_imdb_reviews_mocked() -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        source = open_source("tfds:imdb_reviews")
        assert source.label_names() == ["neg", "pos"]
        examples = list(source.examples("train"))
    assert len(examples) == 12
    assert all(isinstance(text, str) for _, text, _ in examples)
    assert {label for _, _, label in examples} <= {"neg", "pos"}
    assert examples[0][0] == "train:0"


def test_sources_tfds_download_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve host\nretrying ...")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: False)
    with (
        caplog.at_level("INFO", logger="textlstm"),
        pytest.raises(
            DataError, match=r"could not download or prepare tfds:imdb_reviews: Failed to resolve host;"
        ) as info,
    ):
        open_source("tfds:imdb_reviews").label_names()
    assert "\n" not in str(info.value)
    # Said before the download starts: offline, TFDS retries for minutes before failing.
    assert "tfds:imdb_reviews is not prepared under" in caplog.text
    assert "without network TFDS retries for about 3.5 minutes" in caplog.text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "tfds:no_such_dataset_xyz",
            r"^unknown TFDS dataset 'no_such_dataset_xyz' in tfds:no_such_dataset_xyz; expected a name from "
            r"tfds.list_builders\(\)",
        ),
        (
            "tfds:imdb_reviews/plain",
            r"^unknown config 'plain' of TFDS dataset imdb_reviews in tfds:imdb_reviews/plain; "
            r"expected one of \['plain_text'",
        ),
    ],
)
def test_sources_tfds_unknown_dataset_or_config(spec: str, message: str) -> None:
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match=message) as info:
        open_source(spec).label_names()
    assert "\n" not in str(info.value)


def test_sources_tfds_dataset_without_text_is_refused_before_downloading(monkeypatch: pytest.MonkeyPatch) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    downloads = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", lambda self, *a, **k: downloads.append(1))
    with pytest.raises(
        DataError, match=r"tfds:mnist: cannot tell the text and label features apart; .* received features \['image'"
    ):
        open_source("tfds:mnist").label_names()
    assert downloads == []


def test_sources_tfds_features_named_by_columns(cli, tmp_path: Path) -> None:
    tfds = pytest.importorskip("tensorflow_datasets")
    from tests.conftest import TINY_OVERRIDES
    from textlstm.cli import main
    from textlstm.file_sources import ReadOptions

    with tfds.testing.mock_data(num_examples=24):
        # ag_news_subset has two Text features (title, description): ambiguous on its own.
        with pytest.raises(
            DataError,
            match=r"cannot tell the text and label features apart; .*received features \['description', 'label', 'title'\]",
        ):
            open_source("tfds:ag_news_subset").label_names()
        with pytest.raises(
            DataError, match=r"has no feature 'body'; expected one of \['description', 'label', 'title'\]"
        ):
            open_source("tfds:ag_news_subset", ReadOptions(text_columns=("body",))).label_names()
        with pytest.raises(DataError, match=r"label feature 'title' is not a ClassLabel"):
            open_source(
                "tfds:ag_news_subset", ReadOptions(text_columns=("description",), label_column="title")
            ).label_names()
        both = open_source("tfds:ag_news_subset", ReadOptions(text_columns=("title", "description")))
        one = open_source("tfds:ag_news_subset", ReadOptions(text_columns=("title",)))
        joined = [text for _, text, _ in both.examples("train")]
        titles = [text for _, text, _ in one.examples("train")]
        assert len(joined) == 24 and all(j.startswith(t + " ") for j, t in zip(joined, titles, strict=True))

        sets = [arg for item in [*TINY_OVERRIDES, "training.epochs=1"] for arg in ("--set", item)]
        run = tmp_path / "run"
        args = ["train", "--data", "tfds:ag_news_subset", "--text-column", "description", "--output-dir", str(run)]
        result = cli.invoke(main, [*args, "-q", *sets])
    assert result.exit_code == 0, result.stderr
    assert json.loads((run / "labels.json").read_text()) == ["World", "Sports", "Business", "Sci/Tech"]
