"""Build a vocabulary file (one token per line) from the training split of a source.

It adapts the same TextVectorization that `textlstm train` uses, on the training split
minus the validation hold-out, so `--vocab FILE` then reproduces the adapted vocabulary.

Usage: python scripts/build_vocab.py --data SRC --output vocab/NAME.txt [--max-tokens N] [--set k=v ...]
"""

from __future__ import annotations

import argparse

from textlstm.config import load_config
from textlstm.pipeline import source_errors, text_dataset, texts_only
from textlstm.source_spec import open_source
from textlstm.vectorizer import make_vectorizer, write_vocabulary


def main() -> None:
    """Parse arguments, adapt the vectorizer and write the vocabulary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    overrides = list(args.overrides)
    if args.max_tokens:
        overrides.append(f"vectorizer.max_tokens={args.max_tokens}")
    config = load_config(None, overrides)
    source = open_source(args.data)
    split = config.data.train_split
    with source_errors():
        texts = text_dataset(
            source,
            split,
            source.label_names(),
            part="train",
            seed=config.training.seed,
            val_fraction=config.data.val_fraction,
            holdout_by=config.data.holdout_by,
        )
        vectorizer = make_vectorizer(config.vectorizer, ragged=True)
        vectorizer.adapt(texts_only(texts))
    write_vocabulary(vectorizer.get_vocabulary(), args.output)
    print(f"{args.output}: {vectorizer.vocabulary_size()} tokens (padding and [UNK] included)")


if __name__ == "__main__":
    main()
