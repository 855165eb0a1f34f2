"""Build the IMDB sentiment model bundled in the package (textlstm/pretrained/imdb).

Trains the default configuration (seed 42) with a smaller n-gram table (`BUNDLED_OVERRIDES`)
on the IMDB training split through the public API, measures its accuracy on the 25,000 test
reviews, and replaces the bundled model directory with the result, writing BUILD.md beside
it with the command, the measured numbers and the library versions. Training is deterministic for a given machine and
library versions, so rerunning the command rebuilds the same model.

Usage: python scripts/build_pretrained.py --data ../shared/data/imdb/aclImdb_labeled.tar.gz
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "textlstm" / "pretrained" / "imdb"
# The package must stay small enough to install anywhere.
SIZE_LIMIT_BYTES = 10 * 1024 * 1024
# The default table (30,000 token rows and 2**17 hash buckets of 16 floats) puts a default
# IMDB run's model directory at 12.5 MB, over SIZE_LIMIT_BYTES; half the buckets bring it to
# 8.5 MB (measured with the mean mix: 89.46 % test accuracy against 89.68 % for the full
# table; with the tuned mix 89.84 % against 90.02 %).
# The bundled model was built (2026-12-03) before training.member_epochs=own became the
# default (2026-12-05); pinned to shared, the recorded command still rebuilds that model.
# On the full IMDB defaults own kept both paths from epoch 5, as shared did. Its hold-out
# was drawn by file name, before data.holdout_by=text became the default; pinned to key.
# Likewise it has 64 LSTM units, the default until model.lstm_units=32 (2026-12-05), and
# no naive Bayes bag, a default since later that day (it would also add 4.4 MB of weights
# and as much of ratios, over SIZE_LIMIT_BYTES). It trained five epochs, the default until
# training.epochs=8 (2026-12-05). It was not refit (training.refit, the default since
# 2026-12-05). Its bag learned at model.ngram_scale=50, the default until 2026-12-06.
BUNDLED_OVERRIDES = [
    "model.ngram_buckets=65536",
    "training.member_epochs=shared",
    "data.holdout_by=key",
    "model.lstm_units=64",
    "training.epochs=5",
    "model.naive_bayes_bag=false",
    # The window of the model as bundled (before the bags read whole reviews).
    "vectorizer.max_length=400",
    "model.lstm_length=null",
    "training.refit=false",
    "model.ngram_scale=50",
]


def main() -> None:
    """Train, evaluate, check the size, install into the package, record the build."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="aclImdb archive or folder (or tfds:imdb_reviews)")
    parser.add_argument("--target", type=Path, default=TARGET, help="where the model directory goes")
    args = parser.parse_args()

    import textlstm
    from textlstm import artifacts
    from textlstm.config import load_config

    work = Path(tempfile.mkdtemp(prefix="textlstm-pretrained-"))
    started = time.time()
    config = load_config(None, BUNDLED_OVERRIDES)
    command = ["textlstm", "train", "--data", args.data, *[f"--set={o}" for o in BUNDLED_OVERRIDES]]
    result = textlstm.train(args.data, work / "imdb", config, command=command)
    trained = time.time() - started
    report = textlstm.evaluate(result.output_dir, args.data, split="test")
    # The package ships the kept model only, not the run's model-best/ and model-last/ copies.
    size = sum((result.output_dir / name).stat().st_size for name in artifacts.RUN_FILES)
    if size > SIZE_LIMIT_BYTES:
        sys.exit(f"build_pretrained: the model directory is {size} bytes; expected at most {SIZE_LIMIT_BYTES}")
    manifest = artifacts.read_json(result.output_dir / artifacts.MANIFEST_FILE)
    # Paths on the build machine mean nothing to users; keep the data's name and hash.
    manifest["data"]["source"] = Path(args.data).name
    manifest["command"] = ["python", "scripts/build_pretrained.py", "--data", Path(args.data).name]
    artifacts.write_json(result.output_dir / artifacts.MANIFEST_FILE, manifest)
    figures = {
        "test_accuracy": report["accuracy"],
        "test_macro_f1": report["macro_f1"],
        "test_examples": report["examples"],
        "validation_accuracy": result.metrics["accuracy"],
        "best_epoch": result.best_epoch,
        "train_seconds": round(trained, 1),
        "model_bytes": size,
    }
    (result.output_dir / "BUILD.md").write_text(
        "# Bundled IMDB sentiment model\n\n"
        "Built by `python scripts/build_pretrained.py --data ../shared/data/imdb/aclImdb_labeled.tar.gz`\n"
        f"(the default configuration with {', '.join(BUNDLED_OVERRIDES)}, seed 42, trained on the IMDB\n"
        "training split with 10 % held out for validation; the test split was used only for the figure below).\n\n"
        f"```json\n{json.dumps(figures, indent=2)}\n```\n\n"
        f"Library versions: `{json.dumps(manifest['versions'])}`.\n",
        encoding="utf-8",
    )
    if args.target.exists():
        shutil.rmtree(args.target)
    args.target.mkdir(parents=True)
    for name in (*artifacts.RUN_FILES, "BUILD.md"):
        shutil.copy2(result.output_dir / name, args.target / name)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"target": str(args.target), **figures}, indent=2))


if __name__ == "__main__":
    main()
