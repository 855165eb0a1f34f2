"""Shared fixtures: a tiny sentiment corpus in every on-disk layout, a tiny config, and one
model trained on it once per session."""

from __future__ import annotations

import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IMDB_ARCHIVE = SHARED_DATA / "imdb" / "aclImdb_labeled.tar.gz"
# The marks of a module of real-data tests. A real-data training takes 1-5 minutes alone
# with the eight-epoch defaults, several times that on a busy or slower host: setup.cfg's
# 600 s guard against hangs is too short for it (SST-2 timed out at 600 s with CI and
# another training beside it).
REALDATA_MARKS = [pytest.mark.realdata, pytest.mark.timeout(3600)]

POSITIVE = "good great wonderful superb loved excellent brilliant charming".split()
NEGATIVE = "bad awful terrible boring hated dull poor waste".split()
FILLER = "the movie film plot actor scene story was it and a of this".split()

# Small enough to train in seconds on 2 cores, big enough to learn the word lists.
TINY_OVERRIDES = [
    "vectorizer.max_tokens=100",
    "vectorizer.max_length=40",
    "model.embedding_dim=8",
    "model.lstm_units=8",
    "model.dense_units=[8]",
    "model.ngram_buckets=1024",
    # As in the defaults, the LSTM embeds only part of the vocabulary (32 tokens) the bag reads.
    "model.lstm_tokens=20",
    # The LSTM reads a shorter window than the bag (model.lstm_length, as in the defaults),
    # so every export, TFLite, serve and fine-tune test runs one: the longer texts' last 20
    # of up to 30 tokens.
    "model.lstm_length=20",
    # The mix tuned on the tiny task leans on the bag alone (LSTM share 0), which would hide
    # the LSTM from every parity test (export, TFLite, fast path); test_training tunes it.
    "model.ngram_mix=mean",
    # So two members, the LSTM and one bag (the default's naive Bayes bag, a third member,
    # needs the tuned mix; test_training and test_fast_inference cover it).
    "model.naive_bayes_bag=false",
    "training.batch_size=16",
    "training.epochs=4",
    "training.min_epoch_steps=0",
    "training.learning_rate=0.01",
    "data.val_fraction=0.2",
    # One training a test, not two: tests/test_refit.py covers the refit the defaults add.
    "training.refit=false",
]


def write_corpus(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """Write an aclImdb-style corpus: root/aclImdb/SPLIT/{pos,neg}/<id>_<rating>.txt."""
    rnd = random.Random(seed)
    for split, n in per_class.items():
        for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                tokens = [rnd.choice(FILLER) for _ in range(rnd.randint(4, 25))]
                tokens += [rnd.choice(words) for _ in range(3)]
                rnd.shuffle(tokens)
                (folder / f"{i}_{rnd.randint(1, 10)}.txt").write_text(" ".join(tokens) + ".<br /><br />The End.")
    return root / "aclImdb"


def held_out(corpus: Path, run: Path, config) -> tuple[list[str], list[int]]:
    """The validation texts and label indices that training ``run`` with ``config`` on
    ``corpus`` held out, in the order the pipeline gives them."""
    from textlstm import artifacts
    from textlstm.pipeline import text_dataset
    from textlstm.source_spec import open_source

    dataset = text_dataset(
        open_source(str(corpus)),
        "train",
        artifacts.read_run_info(run).labels,
        part="val",
        seed=config.training.seed,
        val_fraction=config.data.val_fraction,
        holdout_by=config.data.holdout_by,
    )
    pairs = [(text.numpy().decode("utf-8"), int(label.numpy())) for text, label in dataset]
    return [text for text, _ in pairs], [label for _, label in pairs]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An aclImdb-style folder with 100 train and 30 test documents per class."""
    return write_corpus(tmp_path_factory.mktemp("corpus"), {"train": 100, "test": 30})


@pytest.fixture(scope="session")
def corpus_tar(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as a .tar.gz with the aclImdb/ top folder, like the official archive."""
    path = tmp_path_factory.mktemp("archives") / "tiny.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(corpus_dir, arcname="aclImdb")
    return path


@pytest.fixture(scope="session")
def corpus_zip(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus as a .zip."""
    path = tmp_path_factory.mktemp("archives") / "tiny.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(corpus_dir.rglob("*.txt")):
            archive.write(file, Path("aclImdb") / file.relative_to(corpus_dir))
    return path


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny configuration as a Config object."""
    from textlstm.config import load_config

    return load_config(None, TINY_OVERRIDES)


@pytest.fixture(scope="session")
def trained_run(corpus_tar: Path, tiny_config, tmp_path_factory: pytest.TempPathFactory):
    """A model trained once on the tiny archive through the public API."""
    import textlstm

    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = textlstm.train(str(corpus_tar), out, tiny_config, verbose=0)
    return result


@pytest.fixture()
def cli():
    """A click CliRunner with stdout and stderr kept apart."""
    from click.testing import CliRunner

    return CliRunner()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip real-data tests with a clear reason when ../shared/data is absent."""
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real corpora not found at {SHARED_DATA} (../shared/data beside the repo)")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
