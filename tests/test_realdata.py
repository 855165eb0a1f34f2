"""Real-data accuracy runs on ../shared/data (opt-in: ``python -m pytest -m realdata``).

Floors sit a little under measured values so that regressions are caught without flaking.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IMDB_ARCHIVE

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def imdb_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not IMDB_ARCHIVE.is_file():
        pytest.skip(f"IMDB archive not found at {IMDB_ARCHIVE}")
    import textlstm

    out = tmp_path_factory.mktemp("imdb") / "run"
    textlstm.train(str(IMDB_ARCHIVE), out, verbose=0)
    return out


def test_realdata_imdb_defaults_reach_the_floor(imdb_run: Path) -> None:
    import textlstm

    report = textlstm.evaluate(imdb_run, str(IMDB_ARCHIVE), split="test")
    assert report["examples"] == 25000
    assert report["accuracy"] >= 0.875, report["accuracy"]


def test_realdata_imdb_predicts_obvious_reviews(imdb_run: Path) -> None:
    import textlstm

    rows = textlstm.predict(
        imdb_run, ["an absolute masterpiece, I loved every minute of it", "a dull, lifeless waste of two hours"]
    )
    assert [row["label"] for row in rows] == ["pos", "neg"]


def test_realdata_imdb_export_matches_predict(imdb_run: Path, tmp_path: Path) -> None:
    import textlstm

    texts = ["an absolute masterpiece", "a dull, lifeless waste of two hours", "", "zxq " * 1000]
    export = textlstm.export(imdb_run, tmp_path / "exports")
    code = (
        "import json, sys; import tensorflow as tf\n"
        "sig = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "print(json.dumps(sig(text=tf.constant(json.loads(sys.argv[2])))['probabilities'].numpy().tolist()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(export), json.dumps(texts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    for row, probs in zip(textlstm.predict(imdb_run, texts), served):
        assert list(row["probabilities"].values()) == pytest.approx(probs, abs=1e-5)
