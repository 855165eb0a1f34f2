"""The configuration tree: one typed dataclass per concern, loadable from a file and
overridable with dotted ``section.key=value`` strings.

This module is pure Python (no TensorFlow) so that the CLI can validate options before
paying for the TensorFlow import.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import numbers
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from textlstm.errors import ConfigError, describe
from textlstm.presets import Preset, get_preset

# Defined beside the plain-Python tokenizer, which TFLite deployments copy on its own.
from textlstm.tokenizer import KEEP_MODES, STANDARDIZE_MODES

log = logging.getLogger(__name__)

POOLING_MODES = ("max_mean", "max", "mean", "last")
# How the bag-of-n-grams path joins the LSTM (model.ngram_join).
NGRAM_JOINS = ("concat", "average")
NGRAM_MIXES = ("tuned", "mean")
# How the bag weighs its n-grams (model.ngram_weighting).
NGRAM_WEIGHTINGS = ("none", "naive_bayes")
LR_SCHEDULES = ("cosine", "constant", "plateau")
# tf.distribute strategies of training.strategy (textlstm/distribution.py).
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")
# What decides an example's side of the validation hold-out (data.holdout_by).
HOLDOUT_BY = ("text", "key")
# Validation figures early stopping (and the plateau schedule) can watch; loss is minimised,
# the others maximised. micro_f1 exists for multi-label models only, accuracy for single-label.
MONITORS = ("val_loss", "val_accuracy", "val_macro_f1", "val_micro_f1")
MEMBER_EPOCHS = ("shared", "own")
FREEZE_MODES = ("none", "embedding", "encoder")
# The largest value an integer key takes (int32's maximum), unless `_INT_RANGES` says otherwise.
INT_LIMIT = 2**31 - 1
# Keys with a wider range: NumPy takes seeds up to 2**32 - 1, and a sample limit larger than
# any corpus is a plain "no limit".
_INT_RANGES = {
    "training.seed": (0, 2**32 - 1),
    "data.limit": (-(2**63), 2**63 - 1),
    "data.vocab_sample": (-(2**63), 2**63 - 1),
}


@dataclass
class DataConfig:
    """Which parts of a source are used, and how examples are held out and streamed."""

    # Split read by `train`. Validation is carved out of it, never taken from the test split.
    train_split: str = "train"
    # Split read by `evaluate` when --split is not given.
    eval_split: str = "test"
    # Share of the training split held out for validation. Membership is a hash of the
    # seed and (data.holdout_by) each example's text or stable key, so it does not depend on
    # read order and never changes between epochs.
    val_fraction: float = 0.1
    # What the hold-out hashes. text: the text, case and runs of whitespace ignored, so that
    # copies of one text (SMS spam repeats messages word for word) all fall on one side and
    # the hold-out cannot reward memorising them; data.limit thins by it too. key: the
    # example's key (file name or row index), as before this option existed.
    holdout_by: str = "text"
    # Train on at most this many examples of the training split: each example is kept with
    # probability limit/size by the hold-out's seeded hash (data.holdout_by); None uses all.
    # Handy for smoke runs.
    limit: int | None = None
    # Examples held by the shuffle buffer. 50k covers IMDB-sized corpora completely; larger
    # corpora get a bounded, approximate shuffle.
    shuffle_buffer: int = 50_000
    # Keep vectorized examples in memory after the first epoch. Turn off for corpora that
    # do not fit in memory (they are then re-read and re-vectorized every epoch).
    cache: bool = True
    # Adapt the vocabulary on at most this many training examples (the first ones read);
    # None reads all of them. Bounds the adaptation pass on corpora of many gigabytes.
    vocab_sample: int | None = None
    # Labels that are not mutually exclusive: each example has a set of labels (multi-hot
    # target, one sigmoid per label, binary cross-entropy). None decides from the data
    # (a JSON list, --label-sep, several fastText labels on a line); a trained model's
    # config.json records what was decided.
    multi_label: bool | None = None

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(
            self.vocab_sample is None or self.vocab_sample >= 1,
            "data.vocab_sample",
            "null or an integer >= 1",
            self.vocab_sample,
        )
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", "a number in [0, 1)", self.val_fraction)
        _check(self.holdout_by in HOLDOUT_BY, "data.holdout_by", f"one of {list(HOLDOUT_BY)}", self.holdout_by)
        _check(self.limit is None or self.limit >= 2, "data.limit", "null or an integer >= 2", self.limit)
        _check(self.shuffle_buffer >= 1, "data.shuffle_buffer", "an integer >= 1", self.shuffle_buffer)
        _check(bool(self.train_split), "data.train_split", "a split name", self.train_split)
        _check(bool(self.eval_split), "data.eval_split", "a split name", self.eval_split)


@dataclass
class VectorizerConfig:
    """How raw text becomes token ids (Keras TextVectorization)."""

    # Vocabulary size including the padding and [UNK] tokens. The n-gram bag profits from
    # rare words (a bag trained alone on IMDB: validation loss 0.238 with 5k tokens, 0.223
    # with 30k); the LSTM does not (model.lstm_tokens keeps it to the 5k most frequent).
    max_tokens: int = 30_000
    # Longer texts are truncated to this many tokens: the n-gram bags read all of them, the
    # LSTM at most model.lstm_length of them. 1500 keeps the whole review for 99.97 % of
    # IMDB's training reviews (400: 86 %); the bags' cost grows with it a little, the
    # LSTM's not at all.
    max_length: int = 1500
    # Which tokens of a longer text are kept: the first max_length ("start") or the last
    # ("end"; reviews often end with the verdict).
    keep: str = "end"
    # lower_strip_html_punctuation: lowercase, replace <br /> tags, strip ASCII punctuation.
    standardize: str = "lower_strip_html_punctuation"
    # A fixed vocabulary (one token per line) used instead of adapting on the training data.
    vocab_file: str | None = None

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(self.max_tokens >= 3, "vectorizer.max_tokens", "an integer >= 3", self.max_tokens)
        _check(self.max_length >= 1, "vectorizer.max_length", "an integer >= 1", self.max_length)
        _check(self.keep in KEEP_MODES, "vectorizer.keep", f"one of {list(KEEP_MODES)}", self.keep)
        _check(
            self.standardize in STANDARDIZE_MODES,
            "vectorizer.standardize",
            f"one of {list(STANDARDIZE_MODES)}",
            self.standardize,
        )
        _check(
            self.vocab_file is None or bool(str(self.vocab_file).strip()),
            "vectorizer.vocab_file",
            "null or a file path",
            self.vocab_file,
        )


@dataclass
class ModelConfig:
    """The classifier: Embedding -> bidirectional LSTM stack -> pooling -> Dense -> head."""

    # 64 matched 128 on validation with half the embedding parameters.
    embedding_dim: int = 64
    # Drops whole embedding channels; regularises better than element dropout on text.
    spatial_dropout: float = 0.2
    # Units per direction of each bidirectional LSTM layer. 32 since 2026-12-05: against 64,
    # a lower validation loss on four of the five corpora of scripts/accuracy.py (0.0023
    # higher on SST-2), and on IMDB 1.5-1.8 times the predictions a second.
    lstm_units: int = 32
    lstm_layers: int = 1
    # max_mean pools the LSTM states over all (unmasked) time steps; on long documents it
    # learns faster and generalises better than the last state alone.
    pooling: str = "max_mean"
    # Hidden Dense layers between pooling and the output head.
    dense_units: typing.Tuple[int, ...] = (64,)
    # Dropout after pooling and after each hidden Dense layer, and between LSTM layers.
    dropout: float = 0.3
    # A bag-of-n-grams path beside the LSTM (fastText): the mean embedding of the text's
    # tokens and of its n-grams up to this order (bigrams), hashed into ngram_buckets
    # rows. 0 turns the path off; 1 is a bag of words. With the defaults below it lowered
    # the validation loss on all five corpora of scripts/accuracy.py (IMDB 0.257 -> 0.225,
    # SST-2 0.245 -> 0.218, TREC 0.633 -> 0.558, AG News 0.426 -> 0.394, SMS 0.105 ->
    # 0.071); a third order did not help a bag trained alone on IMDB.
    ngram_order: int = 2
    # Rows of the hashed n-grams of order 2 and more. For the naive Bayes bag (IMDB, the bag
    # alone, validation loss at scale 5): 2**19 0.1923 and 2**20 0.1924 with ngram_l2=1e-5;
    # 2**18 0.1976, 2**19 0.1901 and 2**20 0.1894 with 3e-5.
    ngram_buckets: int = 2**17
    # Width of the mean-embedding bag's rows (unused by the naive Bayes bag).
    ngram_dim: int = 16
    # The n-gram table learns this many times faster than the rest of the model (its
    # output is scaled up and its initial values down; under Adam that multiplies its
    # step). Each row's gradient is diluted over the hundreds of n-grams of a text: on
    # IMDB's validation hold-out, a bag trained alone at the default learning rate reached
    # 83.1 % with 1, 87.9 % with 5, 89.4 % with 15, 90.5 % with 50, and 89.7 % with 150
    # (it overfits within two epochs). The naive Bayes bag, whose output is a sum, wants
    # less (IMDB, the bag alone, validation loss): 2 0.1975, 5 0.1924, 10 0.1969, 20
    # 0.2151, 50 0.2239. In the three-member ensemble, 100 against 50 (2026-12-06,
    # development splits of scripts/accuracy.py --dev, held-out runs, two seeds) lowered
    # the development loss on IMDB, TREC and AG News at both seeds and on SMS spam at one,
    # and raised SST-2's by 0.2 % at both: 50 until 2026-12-06.
    ngram_scale: float = 100.0
    # average: the bag has an output layer of its own, each path is trained on its own
    # loss, and the model's probabilities are a mix of the paths (ngram_mix; an ensemble in
    # one model, of three members with naive_bayes_bag: the paths err on different texts,
    # and none leans on another);
    # concat: the bag joins the pooled LSTM states before the Dense layers (one network;
    # on IMDB validation accuracy 90.26 % against 90.58 % for average, both at scale 1).
    ngram_join: str = "average"
    # With ngram_join=average, how the paths' probabilities are mixed. tuned: after
    # training, the LSTM's share w (the bag's is 1 - w) is set to the value of 0, 0.05, ...,
    # 1 with the lowest validation loss, or with three members each member's weight to the
    # point of the simplex in steps of 0.05 with the lowest (the mean without a hold-out; a
    # fine-tuning run starts at the mean, whatever its base's mix). The
    # paths are trained apart, so their best mix is a choice
    # made on held-out data, as a stacked ensemble's. mean: always 0.5 (models saved before
    # this key). Measured 2026-12-03 on the models of scripts/accuracy.py, mixed afterwards
    # (w chosen; test figure mean -> tuned; test loss): IMDB 0.2, 89.68 -> 90.02 %,
    # 0.2496 -> 0.2474; SST-2 0.4, 81.88 -> 81.88 %, 0.4113 -> 0.4104; TREC 0.2, 89.2 ->
    # 88.6 %, 0.3236 -> 0.3176; AG News 0.2, 86.59 -> 87.74 %, 0.3843 -> 0.3779; SMS 0.75,
    # spam F1 0.9635 -> 0.9562, 0.0504 -> 0.0520. The test loss fell on four of five.
    ngram_mix: str = "tuned"
    # naive_bayes: the bag is NBSVM's linear model (Wang & Manning 2012) instead of a mean of
    # ngram_dim-wide embeddings: each distinct token and n-gram of a text counts once, with
    # one weight per label, multiplied by its naive Bayes log-count ratio (counted on the
    # training part before training), and L2-penalised by ngram_l2. none: fastText's mean
    # embedding. With ngram_scale=5, ngram_buckets=2**19 and ngram_l2=3e-5 the naive Bayes
    # bag lowered the validation loss on IMDB (0.2117 -> 0.1884) and AG News (0.3641 ->
    # 0.3447) and raised it on SST-2 (0.2025 -> 0.2070), TREC (0.3941 -> 0.3978) and SMS
    # (0.0562 -> 0.0861), so it is not the default: a lever for long documents
    # (docs/accuracy-and-speed.md).
    ngram_weighting: str = "none"
    # The L2 penalty on the naive Bayes bag's weights (per weight, added to the batch's mean
    # loss). IMDB, the bag alone at scale 5, validation loss: 1e-5 0.1923, 3e-5 0.1894.
    # Also the penalty of the naive_bayes_bag below.
    ngram_l2: float = 3e-5
    # A second bag beside the mean-embedding one (with ngram_order >= 1, ngram_join=average
    # and ngram_weighting=none; otherwise no effect; it needs ngram_mix=tuned): NBSVM's
    # linear model over the same tokens and n-grams, with its own output layer, as a third
    # member of the ensemble, the three weights of the mix tuned on the hold-out. The two bags err differently: the mean embedding generalises over
    # similar n-grams, the naive Bayes weights single out the telling ones. The default
    # since 2026-12-05: scripts/accuracy.py's validation loss fell on four corpora and
    # stayed on SMS, whose mix gave the third member 0 (IMDB 0.2283 -> 0.2033, SST-2
    # 0.2161 -> 0.2025, TREC 0.4237 -> 0.4048, AG News 0.3660 -> 0.3569); IMDB's test
    # accuracy 89.92 -> 91.22 %.
    naive_bayes_bag: bool = True
    # The naive Bayes bag's hash buckets and scale (what ngram_buckets and ngram_scale are
    # to the mean-embedding bag), at the values measured for a naive Bayes bag
    # (ngram_weighting=naive_bayes, above).
    naive_bayes_buckets: int = 2**19
    naive_bayes_scale: float = 5.0
    # The second bag's n-gram order; None: ngram_order's.
    naive_bayes_order: int | None = None
    # The LSTM embeds only this many of the vocabulary's most frequent entries (counting
    # padding and [UNK]); rarer tokens reach it as [UNK] while the n-gram bag still reads
    # them. Rare words (names, titles) mostly let the LSTM memorise its training texts: on
    # IMDB a plain BiLSTM's best validation loss was 0.270 with 20k tokens, 0.260-0.264
    # with 10k and 0.254 with 5k. None embeds the whole vocabulary.
    lstm_tokens: int | None = 5_000
    # With the n-gram bag: the LSTM reads at most this many tokens of the vectorizer's
    # max_length window (the first or last, as vectorizer.keep says) while the bags read
    # the whole window; null gives the LSTM the whole window too. The LSTM's sequential
    # steps are most of the cost, the bags' are cheap, so the bags read whole reviews and
    # the LSTM the last 400 tokens (scripts/accuracy.py on IMDB, 2026-12-05, two seeds:
    # validation loss 0.2023 and 0.2135 against 0.2033 and 0.2171 with both reading 400,
    # test 91.42 and 91.49 % against 91.22 and 91.26 %). Without a bag (ngram_order=0) it
    # has no effect: the plain BiLSTM reads vectorizer.max_length tokens.
    lstm_length: int | None = 400
    # Pretrained word vectors (GloVe, word2vec text or fastText .vec, optionally gzipped)
    # that initialise the Embedding rows of the tokens they cover; None keeps the random
    # initialisation. A small corpus shows most words too rarely to learn their vectors from
    # scratch. Their dimension must equal embedding_dim. Not needed to load a trained model.
    embeddings_file: str | None = None
    # Keep the pretrained vectors fixed during training: fewer parameters to fit on a small
    # corpus, and the vectors keep the geometry they learned on a large one.
    freeze_embeddings: bool = False

    def has_naive_bayes_bag(self) -> bool:
        """Whether the model gets the second, naive Bayes bag: ``naive_bayes_bag`` and a
        mean-embedding bag with an output layer of its own to stand beside (ngram_order
        >= 1, ngram_join=average, ngram_weighting=none); without one the key has no effect."""
        return (
            self.naive_bayes_bag
            and self.ngram_order >= 1
            and self.ngram_join == "average"
            and self.ngram_weighting == "none"
        )

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(self.embedding_dim >= 1, "model.embedding_dim", "an integer >= 1", self.embedding_dim)
        _check(self.lstm_units >= 1, "model.lstm_units", "an integer >= 1", self.lstm_units)
        _check(self.lstm_layers >= 1, "model.lstm_layers", "an integer >= 1", self.lstm_layers)
        _check(self.pooling in POOLING_MODES, "model.pooling", f"one of {list(POOLING_MODES)}", self.pooling)
        _check(0 <= self.ngram_order <= 4, "model.ngram_order", "an integer in [0, 4]", self.ngram_order)
        _check(self.ngram_buckets >= 1, "model.ngram_buckets", "an integer >= 1", self.ngram_buckets)
        _check(self.ngram_dim >= 1, "model.ngram_dim", "an integer >= 1", self.ngram_dim)
        _check(
            self.lstm_tokens is None or self.lstm_tokens >= 3,
            "model.lstm_tokens",
            "null or an integer >= 3",
            self.lstm_tokens,
        )
        _check(
            self.lstm_length is None or self.lstm_length >= 1,
            "model.lstm_length",
            "null or an integer >= 1",
            self.lstm_length,
        )
        _check(self.ngram_scale > 0, "model.ngram_scale", "a number > 0", self.ngram_scale)
        _check(self.ngram_join in NGRAM_JOINS, "model.ngram_join", f"one of {list(NGRAM_JOINS)}", self.ngram_join)
        _check(self.ngram_mix in NGRAM_MIXES, "model.ngram_mix", f"one of {list(NGRAM_MIXES)}", self.ngram_mix)
        _check(
            self.ngram_weighting in NGRAM_WEIGHTINGS,
            "model.ngram_weighting",
            f"one of {list(NGRAM_WEIGHTINGS)}",
            self.ngram_weighting,
        )
        _check(self.ngram_l2 >= 0, "model.ngram_l2", "a number >= 0", self.ngram_l2)
        _check(
            self.ngram_weighting == "none" or not self.ngram_order or self.ngram_join == "average",
            "model.ngram_join",
            "average with model.ngram_weighting=naive_bayes (a naive Bayes bag has its own output)",
            self.ngram_join,
        )
        _check(self.naive_bayes_buckets >= 1, "model.naive_bayes_buckets", "an integer >= 1", self.naive_bayes_buckets)
        _check(self.naive_bayes_scale > 0, "model.naive_bayes_scale", "a number > 0", self.naive_bayes_scale)
        _check(
            self.naive_bayes_order is None or 1 <= self.naive_bayes_order <= 4,
            "model.naive_bayes_order",
            "null or an integer in [1, 4]",
            self.naive_bayes_order,
        )
        _check(
            not self.has_naive_bayes_bag() or self.ngram_mix == "tuned",
            "model.ngram_mix",
            "tuned with model.naive_bayes_bag (three members), or that set to false",
            self.ngram_mix,
        )
        _check(all(u >= 1 for u in self.dense_units), "model.dense_units", "a list of integers >= 1", self.dense_units)
        for name in ("spatial_dropout", "dropout"):
            value = getattr(self, name)
            _check(0.0 <= value < 1.0, f"model.{name}", "a number in [0, 1)", value)
        _check(
            self.embeddings_file is None or bool(self.embeddings_file.strip()),
            "model.embeddings_file",
            "null or the path of a vectors file",
            self.embeddings_file,
        )
        # Freezing the random initialisation would train a model on fixed noise.
        _check(
            not self.freeze_embeddings or self.embeddings_file is not None,
            "model.freeze_embeddings",
            "false unless model.embeddings_file is set (--embeddings FILE)",
            self.freeze_embeddings,
        )


@dataclass
class TrainingConfig:
    """Optimisation and stopping."""

    # Also the length of the cosine schedule. 8 against 5, 6 and 7 on the validation loss of
    # the five corpora of scripts/accuracy.py, four of them with two seeds
    # (docs/accuracy-and-speed.md): the corpora still improving at epoch 5 (SST-2, TREC) gain most, and the
    # paths that peak early are kept from their own epoch, so a longer schedule costs time,
    # little accuracy.
    epochs: int = 8
    # 128 balances CPU throughput (bigger batches run faster per example) with the number
    # of updates per epoch on corpora of a few thousand examples. A run lowers a batch
    # larger than its training examples to them (the stream repeats: it would hold copies).
    batch_size: int = 128
    # Peak Adam learning rate. With the cosine schedule it reached IMDB validation loss
    # 0.254; the one 2e-3 run tried (with batch 256, so not a clean comparison) 0.257.
    learning_rate: float = 1e-3
    # constant; cosine: decay from learning_rate to 0 over `epochs`, so the last epochs
    # refine at small steps instead of oscillating (LSTMs on long texts diverge late at 1e-3);
    # plateau: keep learning_rate until `monitor` stops improving for plateau_patience
    # epochs, then multiply it by plateau_factor.
    lr_schedule: str = "cosine"
    # Linear warm-up from 0 over this many epochs before the cosine decay (cosine only).
    # Large batches and fine-tuning from a trained model profit from not starting at the peak.
    warmup_epochs: float = 0.0
    # The plateau schedule's factor and patience (epochs without improvement).
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    # Decoupled weight decay (AdamW) when > 0; 0 keeps plain Adam. Biases are not decayed.
    weight_decay: float = 0.0
    # Clip each variable's gradient to this norm (Keras' clipnorm works per variable, not on
    # the global norm); guards the LSTM against exploding gradients.
    clipnorm: float | None = 1.0
    # Polyak averaging: when > 0, an exponential moving average of the weights with this
    # momentum (updated every step) is what each epoch's validation scores and what is
    # kept and saved; training itself goes on from the raw weights. 0 turns it off.
    # An average of the last 1 / (1 - momentum) steps smooths the noise of the steps at
    # a high learning rate, which matters most when the best epoch comes early.
    ema_momentum: float = 0.0
    # The validation figure that picks the best epoch, stops training and drives the
    # plateau schedule: val_loss (lowest), or val_accuracy / val_macro_f1 / val_micro_f1
    # (highest). Loss is the default because it moves smoothly where accuracy plateaus.
    monitor: str = "val_loss"
    # Stop after this many epochs without an improvement of `monitor`; the best weights are kept.
    patience: int = 2
    # An ensemble's members (model.ngram_join=average) train on losses of their own.
    # shared: keep the one epoch whose mix scores best on `monitor`. own: a member's weights
    # may come from another epoch than the other's: after each epoch, this epoch's two
    # members, or either of them beside the other's kept weights, replace the kept pair
    # when their mix (at its tuned weight under ngram_mix=tuned) scores better, and the
    # run stops when no replacement helped for `patience` epochs. The n-gram bag of a
    # small corpus fits its training texts in an epoch or two, the LSTM later: own lowered
    # the validation and test loss on TREC, AG News and SMS spam and chose as shared did
    # on IMDB and SST-2 (docs/accuracy-and-speed.md).
    member_epochs: str = "own"
    # Weight examples by class: "none"; "balanced" (n / (classes * count), as scikit-learn;
    # for multi-label models each label's positives get weight negatives / positives); or
    # the path of a JSON file mapping label names to weights (positive-class weights for
    # multi-label models; labels left out weigh 1).
    class_weight: str = "none"
    # Seeds Python, NumPy, TensorFlow and the validation hold-out.
    seed: int = 42
    # Batches per epoch; None is one pass over the training part. Set it to train on a
    # corpus too large to pass over in one epoch (the data then repeats as needed; epoch e
    # starts e * steps_per_epoch * batch_size examples into the stream).
    steps_per_epoch: int | None = None
    # Each epoch holds at least this many batches: on a corpus whose one pass makes
    # fewer, an epoch repeats the data (as with steps_per_epoch, which the run then
    # records). 0 turns this off. With five one-pass epochs TREC (39 batches a pass) and
    # SMS spam (32) stopped short of their validation optimum; 15 and 30 passes gave about
    # the same validation loss (TREC 0.396 / 0.393 against 0.558 after 5). 160 leaves
    # IMDB (176 a pass) and larger corpora as they are.
    min_epoch_steps: int = 160
    # Write TensorBoard logs (training and validation scalars, learning rate) to
    # DIR/tensorboard (`--tensorboard`).
    tensorboard: bool = False
    # Multi-label models only: after training, pick for each label the threshold (within
    # [0.05, 0.95]) that maximises its F1 on the validation hold-out, instead of 0.5 for
    # all. For a well-calibrated model the F1-best threshold is half the best F1 reachable
    # (Lipton et al. 2014), so 0.5 is right only for labels it gets perfectly; hard and rare
    # labels lose recall at 0.5. Off by default: the thresholds then fit the hold-out, which
    # on a small one means noise.
    tune_thresholds: bool = False
    # After training, train once more from scratch on the whole training split, the
    # validation hold-out included, for the epochs the held-out run kept (each ensemble
    # path's own), with its mix and thresholds; that model is the run's, and the held-out
    # run's stays in DIR/heldout/ with the validation figures (metrics.json keeps them).
    # The choices are all made on the hold-out; the refit only trains on 10 % more data,
    # in about twice the time (`--refit`, `--no-refit`). None: refit whenever a run can
    # (a hold-out, one process, a schedule that does not watch the hold-out); true: those
    # are required. None is the default since 2026-12-05: scored on a development split
    # of each training split of scripts/accuracy.py (`--dev`, which no run trains or
    # chooses on), the refit lowered the loss on all five corpora (IMDB 0.1993 -> 0.1987,
    # SST-2 0.1983 -> 0.1936, TREC 0.3348 -> 0.3230, AG News 0.3102 -> 0.3032, SMS spam
    # 0.0713 -> 0.0675; docs/accuracy-and-speed.md).
    refit: bool | None = None
    # tf.distribute strategy: auto (mirrored with several GPUs, else default), default,
    # mirrored (the local GPUs; falls back to default without one) or multi-worker
    # (MultiWorkerMirroredStrategy over the machines of the TF_CONFIG variable).
    # batch_size is per replica: the global batch is batch_size * replicas, and
    # learning_rate applies to the global batch unscaled (README, "Training on several
    # GPUs or machines").
    strategy: str = "auto"
    # Compute in mixed_float16 on GPUs or mixed_bfloat16 on CPUs, keeping float32
    # variables and a float32 output layer; saved models compute in float32.
    mixed_precision: bool = False
    # Multi-worker: how long a worker waits for all the others to connect before it
    # gives up with an error (a peer lost later is noticed through missed heartbeats).
    worker_timeout: float = 600.0

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(self.epochs >= 1, "training.epochs", "an integer >= 1", self.epochs)
        _check(self.batch_size >= 1, "training.batch_size", "an integer >= 1", self.batch_size)
        _check(self.learning_rate > 0, "training.learning_rate", "a number > 0", self.learning_rate)
        _check(self.patience >= 0, "training.patience", "an integer >= 0", self.patience)
        _check(
            self.lr_schedule in LR_SCHEDULES, "training.lr_schedule", f"one of {list(LR_SCHEDULES)}", self.lr_schedule
        )
        _check(self.clipnorm is None or self.clipnorm > 0, "training.clipnorm", "null or a number > 0", self.clipnorm)
        _check(self.warmup_epochs >= 0, "training.warmup_epochs", "a number >= 0", self.warmup_epochs)
        _check(
            self.warmup_epochs == 0 or self.lr_schedule == "cosine",
            "training.warmup_epochs",
            "0 unless training.lr_schedule is cosine",
            self.warmup_epochs,
        )
        _check(0 < self.plateau_factor < 1, "training.plateau_factor", "a number in (0, 1)", self.plateau_factor)
        _check(self.plateau_patience >= 1, "training.plateau_patience", "an integer >= 1", self.plateau_patience)
        _check(self.weight_decay >= 0, "training.weight_decay", "a number >= 0", self.weight_decay)
        _check(0 <= self.ema_momentum < 1, "training.ema_momentum", "a number in [0, 1)", self.ema_momentum)
        _check(self.monitor in MONITORS, "training.monitor", f"one of {list(MONITORS)}", self.monitor)
        _check(
            self.member_epochs in MEMBER_EPOCHS,
            "training.member_epochs",
            f"one of {list(MEMBER_EPOCHS)}",
            self.member_epochs,
        )
        _check(
            bool(self.class_weight),
            "training.class_weight",
            "none, balanced or the path of a JSON file",
            self.class_weight,
        )
        _check(self.seed >= 0, "training.seed", "an integer >= 0", self.seed)
        _check(self.strategy in STRATEGIES, "training.strategy", f"one of {list(STRATEGIES)}", self.strategy)
        _check(self.worker_timeout > 0, "training.worker_timeout", "a number of seconds > 0", self.worker_timeout)
        _check(self.min_epoch_steps >= 0, "training.min_epoch_steps", "an integer >= 0", self.min_epoch_steps)
        _check(
            self.steps_per_epoch is None or self.steps_per_epoch >= 1,
            "training.steps_per_epoch",
            "null or an integer >= 1",
            self.steps_per_epoch,
        )


@dataclass
class FinetuneConfig:
    """Starting from a trained model (`train --init-from`)."""

    # A run directory whose vocabulary, encoder and (for the same label set) head the
    # new run starts from. Its vectorizer and model sections replace this config's.
    init_from: str | None = None
    # Add up to this many of the new corpus's most frequent tokens missing from the old
    # vocabulary; their embedding rows start random, old rows are copied, so old token
    # ids keep their meaning. 0 keeps the old vocabulary exactly.
    extend_vocab: int = 0
    # Freeze the embedding (and the n-gram table), or the encoder (those and the LSTM
    # layers), for the first unfreeze_after epochs (all epochs when null) so a new head
    # does not wreck them.
    freeze: str = "none"
    unfreeze_after: int | None = None
    # Peak learning rate when init_from is set, in place of training.learning_rate: a third
    # of the from-scratch rate, so the first updates do not erase what was learned.
    learning_rate: float = 3e-4

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(self.extend_vocab >= 0, "finetune.extend_vocab", "an integer >= 0", self.extend_vocab)
        _check(self.freeze in FREEZE_MODES, "finetune.freeze", f"one of {list(FREEZE_MODES)}", self.freeze)
        _check(
            self.unfreeze_after is None or self.unfreeze_after >= 1,
            "finetune.unfreeze_after",
            "null or an integer >= 1",
            self.unfreeze_after,
        )
        _check(self.learning_rate > 0, "finetune.learning_rate", "a number > 0", self.learning_rate)
        _check(
            self.unfreeze_after is None or self.freeze != "none",
            "finetune.unfreeze_after",
            "null unless finetune.freeze names layers to unfreeze",
            self.unfreeze_after,
        )
        if self.init_from is None:
            _check(self.extend_vocab == 0, "finetune.extend_vocab", "0 without finetune.init_from", self.extend_vocab)
            _check(self.freeze == "none", "finetune.freeze", "none without finetune.init_from", self.freeze)


@dataclass
class PretrainConfig:
    """Language-model pretraining of the word embedding on the training texts, before the
    classifier is trained (Dai & Le 2015): the embedding and the first bidirectional LSTM
    layer learn to predict each next token (forward direction) and each previous one
    (backward direction); the classifier then keeps the embedding, each row rescaled to
    the rows' initial mean norm, and its LSTM starts from its initial weights (keeping the
    pretrained LSTM, or the embedding at its trained scale, left a BiLSTM at chance on
    IMDB; see textlstm/pretraining.py)."""

    # Epochs of language modelling before classification; 0 turns it off. An epoch is as
    # many batches as a classification epoch (training.min_epoch_steps included).
    epochs: int = 0
    # The language model predicts this many of the LSTM's most frequent tokens (counting
    # padding and [UNK]); rarer ones are predicted as [UNK]. Its softmax costs about
    # vocabulary / (4 * (embedding_dim + lstm_units)) times the LSTM's own matrix products
    # per token (5.2 times with the defaults).
    vocabulary: int = 2_000
    # Peak Adam learning rate of the pretraining, decayed to 0 over its epochs (cosine).
    learning_rate: float = 1e-3

    def validate(self) -> None:
        """Raise ConfigError when a value is out of range."""
        _check(self.epochs >= 0, "pretrain.epochs", "an integer >= 0", self.epochs)
        _check(self.vocabulary >= 3, "pretrain.vocabulary", "an integer >= 3", self.vocabulary)
        _check(self.learning_rate > 0, "pretrain.learning_rate", "a number > 0", self.learning_rate)


@dataclass
class Config:
    """The whole configuration of a run; saved as config.json in every model directory."""

    data: DataConfig = field(default_factory=DataConfig)
    vectorizer: VectorizerConfig = field(default_factory=VectorizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def validate(self) -> Config:
        """Check every section; return self so calls can be chained."""
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            # Types first, as a file's values are checked: a Config built in Python can hold
            # "3" for an int, which the range checks below would meet as a TypeError.
            hints = typing.get_type_hints(type(values))
            for item in dataclasses.fields(values):
                name = f"{section.name}.{item.name}"
                setattr(values, item.name, _coerce(getattr(values, item.name), hints[item.name], name, "config"))
            values.validate()
        if self.training.tune_thresholds and self.data.val_fraction == 0:
            raise ConfigError(
                "training.tune_thresholds (--tune-thresholds) needs a validation hold-out to tune on; "
                f"{describe('data.val_fraction > 0', self.data.val_fraction)}"
            )
        if self.training.refit is True:
            _check(
                self.data.val_fraction > 0,
                "training.refit",
                "false with data.val_fraction=0 (the refit reuses the epochs and mix chosen on the hold-out)",
                self.training.refit,
            )
            _check(
                self.training.strategy != "multi-worker",
                "training.refit",
                "false with training.strategy=multi-worker (the refit runs in one process)",
                self.training.refit,
            )
            _check(
                self.training.lr_schedule != "plateau",
                "training.refit",
                "false with training.lr_schedule=plateau (that schedule watches the hold-out, which the refit trains on)",
                self.training.refit,
            )
        if self.pretrain.epochs:
            # The language model reads the first LSTM layer's output at every step.
            _check(
                self.model.lstm_layers > 1 or self.model.pooling != "last",
                "pretrain.epochs",
                "0 with model.pooling=last and one LSTM layer (its LSTM returns no sequence to pretrain on)",
                self.pretrain.epochs,
            )
            _check(
                self.finetune.init_from is None,
                "pretrain.epochs",
                "0 with finetune.init_from (--init-from): the base model's encoder is trained already",
                self.pretrain.epochs,
            )
            _check(
                not self.model.freeze_embeddings,
                "pretrain.epochs",
                "0 with model.freeze_embeddings (the embedding it pretrains stays fixed)",
                self.pretrain.epochs,
            )
            _check(
                self.training.strategy != "multi-worker",
                "pretrain.epochs",
                "0 with training.strategy=multi-worker (pretraining runs in one process)",
                self.pretrain.epochs,
            )
        # A base model's embedding rows replace pretrained vectors: only rows new to its
        # vocabulary keep them, and without --extend-vocab there are none.
        _check(
            self.finetune.init_from is None or self.model.embeddings_file is None or bool(self.finetune.extend_vocab),
            "model.embeddings_file",
            "null with finetune.init_from (--init-from) unless finetune.extend_vocab (--extend-vocab N) adds "
            "tokens for the vectors: the base model's own rows are kept",
            self.model.embeddings_file,
        )
        return self

    def refits(self) -> bool:
        """Whether a run with this config trains again on the whole training split after
        its held-out run (training.refit; None refits whenever it can)."""
        training = self.training
        if training.refit is None:
            return (
                self.data.val_fraction > 0 and training.strategy != "multi-worker" and training.lr_schedule != "plateau"
            )
        return training.refit

    def lstm_steps(self) -> int:
        """The most time steps the LSTM reads: the vectorizer's max_length, or
        model.lstm_length when that is shorter and the n-gram bag reads the whole window.
        Batches are bucketed by length up to it: longer texts cost the LSTM the same."""
        length = self.model.lstm_length if self.model.ngram_order else None
        return min(self.vectorizer.max_length, length or self.vectorizer.max_length)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready nested dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "config") -> Config:
        """Build a validated Config from a nested mapping; unknown keys are errors."""
        return cls._unchecked(data, origin).validate()

    @classmethod
    def _unchecked(cls, data: Mapping[str, Any], origin: str, base: Config | None = None) -> Config:
        # Each value's type is checked as it is set; the ranges and the rules between keys
        # only once all are set, so that --set can repair a file's combination. Keys the
        # file lacks keep base's values (a preset's), else the defaults.
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{origin}: the top level must be a mapping of sections; {describe('a mapping', type(data).__name__)}"
            )
        config = cls() if base is None else copy.deepcopy(base)
        for section_name, values in data.items():
            section = _section(config, section_name, origin)
            if not isinstance(values, Mapping):
                raise ConfigError(
                    f"{origin}: section {section_name!r} must be a mapping of keys; {describe('a mapping', values)}"
                )
            for key, value in values.items():
                _set_field(section, section_name, key, value, origin)
        return config

    def with_overrides(self, overrides: Iterable[str]) -> Config:
        """Return a copy with ``section.key=value`` overrides applied and validated.

        Values are parsed as JSON when they can be (``3``, ``0.5``, ``true``, ``null``,
        ``[64, 32]``) and taken as plain strings otherwise.
        """
        return self._overridden(overrides).validate()

    def _overridden(self, overrides: Iterable[str]) -> Config:
        if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
            # A bare string would be read as one override per character.
            raise ConfigError(f"bad overrides; {describe('a list of section.key=value strings', overrides)}")
        config = Config._unchecked(self.to_dict(), "config")
        for item in overrides:
            if not isinstance(item, str):
                raise ConfigError(f"bad --set value; {describe('a section.key=value string', item)}")
            name, sep, raw = item.partition("=")
            if not sep or "." not in name:
                raise ConfigError(f"bad --set value; {describe('section.key=value', item)}")
            section_name, _, key = name.strip().partition(".")
            section = _section(config, section_name, "--set")
            _set_field(section, section_name, key, _parse_scalar(raw.strip()), "--set")
        return config


# Keys added after models were first saved, with the value that rebuilds a model saved
# before them: its config.json lacks the key, and today's default would describe another
# architecture (older models have no n-gram path, or one joined by concatenation at scale 1),
# another choice of kept epochs, or another hold-out (a resumed run must keep its split).
_SAVED_BEFORE = {
    ("model", "ngram_order"): 0,
    ("model", "ngram_join"): "concat",
    ("model", "ngram_scale"): 1.0,
    ("model", "lstm_tokens"): None,
    ("model", "lstm_length"): None,
    ("model", "ngram_mix"): "mean",
    ("model", "ngram_weighting"): "none",
    ("model", "naive_bayes_bag"): False,
    ("training", "min_epoch_steps"): 0,
    ("training", "member_epochs"): "shared",
    ("data", "holdout_by"): "key",
    ("training", "refit"): False,
}


def saved_config(data: Mapping[str, Any], origin: str = "config") -> Config:
    """The Config of a saved model or run (config.json, export metadata, checkpoint):
    like `Config.from_dict`, except that a key the file lacks because it was written before
    the key existed takes the value that matches how that model was built."""
    if isinstance(data, Mapping):
        data = dict(data)
        for (section, key), value in _SAVED_BEFORE.items():
            values = data.get(section)
            if isinstance(values, Mapping) and key not in values:
                data[section] = {**values, key: value}
    return Config.from_dict(data, origin=origin)


def allowed_keys() -> list[str]:
    """Every dotted key that a config file or --set accepts."""
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(Config)
        for f in dataclasses.fields(_section_type(section.name))
    ]


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (), preset: str | None = None) -> Config:
    """Load a config file (JSON, YAML or TOML, by extension), then apply overrides.

    With no path the documented defaults are used. A preset (`textlstm.presets`) changes
    the defaults it names before the file and the overrides are applied; it is a
    ConfigError when the result lacks the part the preset tunes, or is a fine-tuning run
    (finetune.init_from), whose architecture comes from its base model.
    """
    chosen = None if preset is None else get_preset(preset)
    base = Config() if chosen is None else Config()._overridden(chosen.overrides)
    if path is None:
        config = base.with_overrides(overrides)
    else:
        # Validated once the overrides are in: a file whose keys conflict (a setting that a
        # later default made invalid, say) can be repaired with --set.
        given = overrides if isinstance(overrides, (str, bytes)) else list(overrides)
        config = Config._unchecked(_read_file(Path(path)), origin=str(path), base=base)._overridden(given)
        try:
            config.validate()
        except ConfigError as exc:
            raise ConfigError(f"{path}{' with --set' if given else ''}: {exc}") from None
    if chosen is not None:
        _check_preset(chosen, base, config)
    return config


def _check_preset(preset: Preset, base: Config, config: Config) -> None:
    """Refuse a preset that the finished config makes void; log the keys it set that
    --config or --set did not change again."""
    names = [item.partition("=")[0] for item in preset.overrides]
    if config.finetune.init_from is not None:
        # A fine-tuning run takes its architecture from the base model: the preset's keys
        # would be dropped without a word.
        raise ConfigError(
            f"preset {preset.name!r} sets {', '.join(names)}, which a fine-tuning run takes from its base model; "
            f"{describe('no preset with finetune.init_from (--init-from)', preset.name)}"
        )
    if not preset.applies(config):
        raise ConfigError(
            f"preset {preset.name!r} has no effect on this configuration; expected {preset.needs}; "
            f"received {preset.found(config)}"
        )
    kept, replaced = [], []
    for item, name in zip(preset.overrides, names, strict=True):
        section, _, key = name.partition(".")
        if getattr(getattr(config, section), key) == getattr(getattr(base, section), key):
            kept.append(item)
        else:
            replaced.append(name)
    log.info(
        "preset %s: %s%s",
        preset.name,
        " ".join(kept) or "nothing",
        f" ({', '.join(replaced)} replaced by --config or --set)" if replaced else "",
    )


# YAML 1.1 (PyYAML) reads 1e-3 as a string, for want of a dot; YAML 1.2, JSON and TOML
# read it as the number the README writes learning rates as.
_YAML_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _yaml_load(text: str, path: Path) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that reads 1e-3 as a float and refuses a key given twice."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults`: a key written after it may override a merged one
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    # PyYAML keeps the last value silently: a setting written twice would
                    # quietly lose one of them.
                    raise ConfigError(
                        f"config file {path} line {key_node.start_mark.line + 1}: key {key!r} given twice in "
                        "one mapping; expected each key once"
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _json_load(text: str, path: Path) -> Any:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                # json keeps the last value silently (TOML refuses a repeated key itself).
                raise ConfigError(f"config file {path}: key {key!r} given twice in one object; expected each key once")
            seen.add(key)
        return dict(pairs)

    return json.loads(text, object_pairs_hook=unique)


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"config file not found; {describe('an existing .json, .yaml or .toml file', str(path))}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid UTF-8 (byte {exc.start}); expected UTF-8 text") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _json_load(text, path)
        if suffix in (".yaml", ".yml"):
            return _yaml_load(text, path) or {}
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - depends on the interpreter
                import tomli as tomllib
            return tomllib.loads(text)
    except ConfigError:
        raise
    except Exception as exc:  # each parser has its own exception type
        # One line, but all of it: YAML's first line says only where the parser was.
        detail = " ".join(str(exc).split()) if str(exc) else type(exc).__name__
        raise ConfigError(
            f"config file {path} could not be parsed as {suffix[1:].upper()}: {detail}; expected valid {suffix[1:].upper()}"
        ) from exc
    raise ConfigError(f"unsupported config file type; {describe('a .json, .yaml, .yml or .toml file', str(path))}")


def _section_type(name: str) -> type:
    return typing.get_type_hints(Config)[name]


def _section(config: Config, name: str, origin: str) -> Any:
    names = [f.name for f in dataclasses.fields(config)]
    if name not in names:
        raise ConfigError(f"{origin}: unknown config section {name!r}; expected one of {names}")
    return getattr(config, name)


def _set_field(section: Any, section_name: str, key: str, value: Any, origin: str) -> None:
    hints = typing.get_type_hints(type(section))
    if key not in hints:
        raise ConfigError(
            f"{origin}: unknown config key {section_name}.{key}; allowed keys are: {', '.join(allowed_keys())}"
        )
    setattr(section, key, _coerce(value, hints[key], f"{section_name}.{key}", origin))


def _coerce(value: Any, hint: Any, name: str, origin: str) -> Any:
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin_type in (typing.Union, types.UnionType):  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, name, origin)
    if origin_type is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, str):
            items = [v for v in value.replace(",", " ").split()]
        return tuple(_coerce(_parse_scalar(v) if isinstance(v, str) else v, args[0], name, origin) for v in items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{origin}: {name} must be true or false; {describe('a boolean', value)}")
    if hint is int:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or (not isinstance(value, numbers.Integral) and not math.isfinite(value))
            or int(value) != value
        ):
            raise ConfigError(f"{origin}: {name} must be an integer; {describe('an integer', value)}")
        low, high = _INT_RANGES.get(name, (-INT_LIMIT - 1, INT_LIMIT))
        if not low <= int(value) <= high:
            # Sizes, counts and seeds end up in int32/int64 tensors and loops, where a
            # 20-digit number fails with a traceback far from the flag that set it.
            raise ConfigError(
                f"{origin}: {name} is out of range; {describe(f'an integer from {low} to {high}', value)}"
            )
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{origin}: {name} must be a number; {describe('a number', value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(f"{origin}: {name} must be a finite number; {describe('a finite number', value)}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{origin}: {name} must be a string; {describe('a string', value)}")
        return str(value)
    raise ConfigError(f"{origin}: {name} has an unsupported type {hint!r}")  # pragma: no cover


def _parse_scalar(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        return raw


def _check(ok: bool, name: str, expected: str, received: Any) -> None:
    if not ok:
        raise ConfigError(f"invalid value for {name}; {describe(expected, received)}")
