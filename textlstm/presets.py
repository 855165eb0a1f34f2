"""Named presets: documented sets of config overrides for one kind of corpus.

The defaults are one configuration for every corpus; a preset changes the few keys where a
kind of corpus is measurably better served by other values, at a cost the others should not
pay. It sits between the defaults and a config file: defaults, then the preset, then
``--config FILE``, then ``--set``. A trained model's ``config.json`` holds the resulting
values, so loading a model never needs the preset.

Imports nothing heavy: ``textlstm train --help`` lists the presets without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from textlstm.errors import ConfigError, describe


@dataclass(frozen=True)
class Preset:
    """A named set of ``section.key=value`` overrides, with why it exists."""

    name: str
    # One line for `textlstm train --help` and the training log.
    summary: str
    overrides: tuple[str, ...]


# Measured with scripts/accuracy.py (README, "Presets"): on IMDB, whose reviews run past
# the LSTM's 400 tokens (14 % of the training reviews; the bags read up to 1,500), twice the
# naive Bayes bag's hash buckets gave fewer collisions among the many distinct n-grams of
# long texts and a lower validation loss on two seeds of three (0.2023 -> 0.1986, 0.2013 ->
# 0.1977; 0.2135 on both for the third). On the four short-text corpora it changed the
# validation loss by at most 0.0002 while costing every corpus: a model 1.4 times the size,
# slower training and a higher serving latency.
LONG_DOCUMENTS = Preset(
    "long-documents",
    "texts of hundreds of words (reviews, articles): twice the naive Bayes bag's hash buckets",
    ("model.naive_bayes_buckets=1048576",),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (LONG_DOCUMENTS,)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown preset; {describe(f'one of {sorted(PRESETS)}', name)}") from None
