"""Accuracy of the textlstm defaults (IMDB: its preset) on the five corpora of ../shared/data.

Each row trains with the default configuration (IMDB with the long-documents preset of
`textlstm.presets`; ``--no-presets`` trains it on the plain defaults) through the public
API (`textlstm.train`, which picks the kept epoch on a validation hold-out carved out of
the training data) and scores the test split once with `textlstm.evaluate`. The test
split never takes part in training or model selection.

| corpus | train -> test | figure |
|---|---|---|
| imdb | the archive's train (25k) -> test (25k) | accuracy |
| sst2 | GLUE train (67k phrases) -> GLUE dev (872) | accuracy |
| trec | TREC.train (5,452) -> TREC.test (500), 6 coarse labels | accuracy |
| ag_news | train_subset.tsv (10k) -> test.csv (7,600), description only | accuracy |
| sms_spam | 80 % -> 20 % of the collection (rows shuffled with seed 0) | F1 of spam |

Usage:
    python scripts/accuracy.py [--data-root ../shared/data] [--workdir DIR] [--only imdb,trec]
        [--no-presets] [--dev] [--set model.ngram_order=2 ...] [--json results.json]

The table (markdown) goes to stdout, progress to stderr. ``--set`` overrides apply to
every corpus, which is how a lever is measured against the defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from textlstm.file_sources import ReadOptions  # noqa: E402
from textlstm.model import MEMBER_HEADS, MEMBER_NAMES  # noqa: E402

AG_LABELS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
TREC_OPTIONS = ReadOptions(format="lines", encoding="latin-1", label_regex=r"^([A-Z]+):")


@dataclass
class Corpus:
    """One row of the table: where its splits are and which figure is scored."""

    name: str
    target: float
    train: str
    test: str
    train_options: ReadOptions | None = None
    test_options: ReadOptions | None = None
    # Test-split name for sources holding several splits (the IMDB archive).
    test_split: str | None = None
    # Label whose F1 is the figure; None scores accuracy.
    f1_label: str | None = None
    # Builds the train/test files from the raw corpus in the work folder; returns their paths.
    prepare: Callable[[Path, Path], tuple[str, str]] | None = None
    # The named preset (textlstm.presets) the corpus's kind of text calls for; None: the
    # plain defaults.
    preset: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def figure(self) -> str:
        """The name of the scored figure."""
        return f"F1({self.f1_label})" if self.f1_label else "accuracy"


def split_sms(root: Path, workdir: Path) -> tuple[str, str]:
    """Write an 80/20 train/test split of the SMS collection (rows shuffled with seed 0)."""
    lines = (root / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    order = np.random.default_rng(0).permutation(len(lines))
    cut = int(round(0.8 * len(lines)))
    paths = []
    for name, rows in (("train", order[:cut]), ("test", order[cut:])):
        path = workdir / f"sms_{name}.tsv"
        path.write_text("".join(lines[i] + "\n" for i in rows), encoding="utf-8")
        paths.append(str(path))
    return paths[0], paths[1]


def corpora(root: Path) -> list[Corpus]:
    """The five rows of issue 6, in the order of the table."""
    sms = ReadOptions(format="tsv", header=False, label_column="0", text_columns=("1",))
    return [
        Corpus(
            "imdb",
            0.915,
            str(root / "imdb/aclImdb_labeled.tar.gz"),
            str(root / "imdb/aclImdb_labeled.tar.gz"),
            test_split="test",
            # Reviews of hundreds of words: 14 % of the training reviews run past the
            # LSTM's 400 tokens. The other four corpora are sentences and short messages.
            preset="long-documents",
        ),
        Corpus(
            "sst2",
            0.880,
            str(root / "sst2/train.tsv"),
            str(root / "sst2/dev.tsv"),
            ReadOptions(text_columns=("sentence",), label_column="label"),
            ReadOptions(text_columns=("sentence",), label_column="label"),
        ),
        Corpus("trec", 0.936, str(root / "trec/TREC.train"), str(root / "trec/TREC.test"), TREC_OPTIONS, TREC_OPTIONS),
        Corpus(
            "ag_news",
            0.895,
            str(root / "ag_news/train_subset.tsv"),
            str(root / "ag_news/test.csv"),
            ReadOptions(header=False, text_columns=("0",), label_column="1"),
            ReadOptions(header=False, text_columns=("2",), label_column="0", label_map=AG_LABELS),
        ),
        Corpus("sms_spam", 0.96, "", "", sms, sms, f1_label="spam", prepare=split_sms),
    ]


# Seeds the development split of --dev: a hash of each text with a seed no run's
# training.seed is likely to share, so the run's own hold-out is drawn independently.
DEV_SEED = 20_261_205
DEV_FRACTION = 0.1
DEV_OPTIONS = ReadOptions(text_columns=("text",), label_column="label")


def split_dev(corpus: Corpus, train_data: str, workdir: Path) -> tuple[str, str]:
    """Write the training split as two JSONL files: a development split (about 10 %, by a
    seeded hash of each text, so copies of a text share a side) and the rest to train on."""
    from textlstm.pipeline import holdout_value
    from textlstm.source_spec import open_source
    from textlstm.sources import text_identity

    source = open_source(train_data, corpus.train_options)
    paths = {part: workdir / f"{corpus.name}_{part}.jsonl" for part in ("train", "dev")}
    with paths["train"].open("w", encoding="utf-8") as train, paths["dev"].open("w", encoding="utf-8") as dev:
        for _key, text, label in source.examples("train"):
            out = dev if holdout_value(text_identity(text), DEV_SEED) < DEV_FRACTION else train
            out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return str(paths["train"]), str(paths["dev"])


def run_corpus(
    corpus: Corpus, root: Path, workdir: Path, overrides: list[str], presets: bool = True, dev: bool = False
) -> dict[str, Any]:
    """Train with the defaults (the corpus's preset unless ``presets`` is false, plus
    overrides), evaluate on the test split (with ``dev``, on a development split carved
    out of the training split instead, the rest trained on), return the row."""
    import textlstm
    from textlstm.artifacts import read_run_info
    from textlstm.config import load_config

    train_data, test_data = corpus.train, corpus.test
    if corpus.prepare is not None:
        train_data, test_data = corpus.prepare(root, workdir)
    train_options, test_options, test_split = corpus.train_options, corpus.test_options, corpus.test_split
    if dev:
        train_data, test_data = split_dev(corpus, train_data, workdir)
        train_options, test_options, test_split = DEV_OPTIONS, DEV_OPTIONS, None
    run_dir = workdir / corpus.name
    preset = corpus.preset if presets else None
    config = load_config(None, overrides, preset=preset)
    started = time.time()
    result = textlstm.train(
        train_data,
        run_dir,
        config,
        overwrite=True,
        verbose=0,
        read_options=train_options,
        command=[
            "scripts/accuracy.py",
            "--only",
            corpus.name,
            *([] if presets else ["--no-presets"]),
            *(["--dev"] if dev else []),
            *[f"--set={o}" for o in overrides],
        ],
    )
    train_seconds = time.time() - started
    report = textlstm.evaluate(run_dir, test_data, split=test_split, read_options=test_options)
    # The ensemble's choices after training: the LSTM's share of the mix and, with
    # training.member_epochs=own, the epoch each path was kept from.
    manifest = read_run_info(run_dir).manifest
    if corpus.f1_label:
        value = report["per_label"][corpus.f1_label]["f1"]
    else:
        value = report["accuracy"]
    return {
        "corpus": corpus.name,
        "preset": preset,
        "figure": corpus.figure,
        "target": corpus.target,
        "value": value,
        "met": value >= corpus.target,
        "accuracy": report["accuracy"],
        # The test cross-entropy: finer than the test figure, which a few texts can swing.
        "test_loss": report.get("loss"),
        "validation": {k: result.metrics.get(k) for k in ("accuracy", "loss", "macro_f1")},
        "best_epoch": result.best_epoch,
        "member_epochs": manifest.get("member_best_epochs"),
        "lstm_share": (manifest.get("ngram_mix") or {}).get("lstm_weight"),
        # Each member's weight (LSTM, bag and any naive Bayes bag), for a tuned mix.
        "mix": (manifest.get("ngram_mix") or {}).get("weights"),
        "epochs_run": result.epochs_run,
        # With the refit, epochs_run is the refit's; the held-out run's is kept here.
        "heldout_epochs_run": (result.refit or {}).get("heldout", {}).get("epochs_run"),
        "train_examples": result.train_examples,
        "val_examples": result.val_examples,
        "test_examples": report["examples"],
        "train_seconds": round(train_seconds, 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the results."""
    lines = [
        "| corpus | preset | figure | target | test | met | test loss | validation loss (accuracy) "
        "| epochs kept, LSTM / bag (/ naive Bayes bag) (run; + refit) | mix, same order | training time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for row in rows:
        val = row["validation"]
        validation = "-" if val.get("loss") is None else f"{val['loss']:.4f} ({figure(val.get('accuracy'))})"
        # One epoch for the whole model unless its paths were kept from their own.
        kept = row.get("member_epochs")
        # In the members' order (the manifest's keys are sorted by name).
        epochs = " / ".join(str(kept[h]) for h in MEMBER_HEADS if h in kept) if kept else str(row["best_epoch"])
        heldout_run = row.get("heldout_epochs_run")
        run = f"{row['epochs_run']}" if heldout_run is None else f"{heldout_run}; + {row['epochs_run']}"
        share = row.get("lstm_share")
        weights = row.get("mix") or ({} if share is None else {"LSTM": share, "n-gram bag": 1 - share})
        mix = " / ".join(f"{weights[n]:.2f}" for n in MEMBER_NAMES.values() if n in weights) or "-"
        lines.append(
            f"| {row['corpus']} | {row.get('preset') or '-'} | {row['figure']} | {row['target']:.3f} | {row['value']:.4f} | "
            f"{'yes' if row['met'] else 'no'} | {figure(row.get('test_loss'))} | {validation} | "
            f"{epochs} ({run}) | {mix} | "
            f"{row['train_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "tensorflow": tf.__version__, "python": platform.python_version()}


def main() -> None:
    """Parse arguments, run the selected corpora, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep run folders here (default: a temp folder).")
    parser.add_argument("--only", default="", help="Comma-separated corpus names (default: all five).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument(
        "--no-presets",
        dest="presets",
        action="store_false",
        help="Train every corpus on the plain defaults (IMDB otherwise uses the long-documents preset).",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="Score a development split (10 %% of the training split, by a seeded hash of each text) "
        "instead of the test split, training on the rest: for choosing between settings, which the test "
        "split must never do.",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    # textlstm's per-epoch lines, as the CLI shows them.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("textlstm: %(message)s"))
    logging.getLogger("textlstm").addHandler(handler)
    logging.getLogger("textlstm").setLevel(logging.INFO)
    if not args.data_root.is_dir():
        sys.exit(f"accuracy: corpora folder not found; expected ../shared/data, received {args.data_root}")
    selected = corpora(args.data_root)
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {c.name for c in selected})
        if unknown:
            sys.exit(f"accuracy: unknown corpus {unknown}; expected names among {[c.name for c in selected]}")
        selected = [c for c in selected if c.name in wanted]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="textlstm-accuracy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for corpus in selected:
        print(f"== {corpus.name}", file=sys.stderr, flush=True)
        row = run_corpus(corpus, args.data_root, workdir, args.overrides, args.presets, args.dev)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "presets": args.presets,
        "scored": "a development split of the training split" if args.dev else "the test split",
        "overrides": args.overrides,
    }
    print(
        f"{info['date']}, {info['machine']['cpu']}, {info['machine']['cores']} cores, "
        f"TensorFlow {info['machine']['tensorflow']}"
        + ("" if args.presets else ", --no-presets")
        + (", --dev: scored on a development split of the training split, not the test split" if args.dev else "")
        + (f", --set {' '.join(args.overrides)}" if args.overrides else "")
    )
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({**info, "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
