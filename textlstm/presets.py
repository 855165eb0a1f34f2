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
from typing import Any, Callable

from textlstm.errors import ConfigError, describe


@dataclass(frozen=True)
class Preset:
    """A named set of ``section.key=value`` overrides, with why it exists."""

    name: str
    # One line for `textlstm train --help` and the training log.
    summary: str
    overrides: tuple[str, ...]
    # Whether a finished Config still has the part the preset tunes, what that part needs,
    # and the settings that decide it, for the error: a preset that changes nothing must
    # not look applied.
    applies: Callable[[Any], bool] = lambda config: True
    needs: str = ""
    found: Callable[[Any], str] = lambda config: ""


# Measured with scripts/accuracy.py (docs/accuracy-and-speed.md), 2026-12-05: IMDB's reviews run past
# the LSTM's 400 tokens (14 % of the training reviews; the bags read up to 1,500) and bring
# many distinct bigrams, which share hashed rows of the naive Bayes bag. Its validation loss
# on three seeds (each seed draws its own hold-out): 2**19 buckets (the default) 0.2023,
# 0.2135, 0.2013; 2**20 0.1986, 0.2135, 0.1977; 2**21 0.1942, 0.2102, 0.1950. On the four
# short-text corpora 2**20 changed it by at most 0.0003 while costing every corpus a larger
# model, slower training and serving, so the defaults keep 2**19. 2**21 makes IMDB's
# model.keras 46 MB instead of 21 MB.
LONG_DOCUMENTS = Preset(
    "long-documents",
    "texts of hundreds of words (reviews, articles): four times the naive Bayes bag's hash buckets",
    ("model.naive_bayes_buckets=2097152",),
    applies=lambda config: config.model.has_naive_bayes_bag(),
    needs="the naive Bayes bag it tunes (model.naive_bayes_bag=true with model.ngram_order >= 1, "
    "model.ngram_join=average and model.ngram_weighting=none, as by default)",
    found=lambda config: (
        f"model.naive_bayes_bag={str(config.model.naive_bayes_bag).lower()}, "
        f"model.ngram_order={config.model.ngram_order}, model.ngram_join={config.model.ngram_join}, "
        f"model.ngram_weighting={config.model.ngram_weighting}"
    ),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (LONG_DOCUMENTS,)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown preset; {describe(f'one of {sorted(PRESETS)}', name)}") from None
