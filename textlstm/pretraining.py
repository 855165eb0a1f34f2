"""Language-model pretraining of a classifier's word embedding on its training texts.

The embedding and the first bidirectional LSTM layer of a `build_classifier` model learn
to predict each text's next token from the forward direction's state and its previous
token from the backward direction's (Dai & Le 2015, with the two directions of a
bidirectional language model). The language model shares those layers with the
classifier. Afterwards the classifier keeps the embedding, each row rescaled to the mean
norm the rows had at initialisation, and its LSTM goes back to its initial weights.

Why not keep more (measured on 6,000 IMDB training reviews, a plain BiLSTM, one epoch of
pretraining, validation loss 0.374 without it): keeping the pretrained LSTM left the
classifier at chance (0.693): its max- and mean-pooled states were nearly the same for
every text (they encode the frequent words a language model needs, which every text has),
and the head's dropout drowned what varied. Keeping the embedding as trained did too
(0.669): the language model grows the rows of frequent words about seven times (their
norms from 0.29 to 2.0), and they then saturate a fresh LSTM's gates. The embedding's
directions with the initial scale gave 0.361.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from textlstm.config import Config
from textlstm.model import EMBEDDING_NAME
from textlstm.optimization import make_optimizer
from textlstm.pipeline import batched
from textlstm.runtime import tensorflow

tf = tensorflow()
log = logging.getLogger(__name__)
# The first bidirectional LSTM layer of `build_classifier`: the language model's encoder
# (a second layer's forward state reads the first layer's backward states, which have
# seen the next token).
FIRST_LSTM_NAME = "bilstm_1"
# The [UNK] id (padding is 0): the target of tokens outside the language model's vocabulary.
_UNKNOWN = 1


class LanguageModelLoss(keras.layers.Layer):
    """The mean cross-entropy of a bidirectional language model over a batch: the forward
    half of each step's state [B, T, 2U] predicts the next token id, the backward half the
    previous one, each through a softmax of its own over ``classes`` ids (ids from
    ``classes`` on count as [UNK]). Steps whose target or input is padding are left out.
    Returns the batch's mean loss per token, repeated once per row (Keras averages the
    rows back to it)."""

    def __init__(self, classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Accepts the LSTM's padding mask (padding is read from the ids) and passes none on.
        self.supports_masking = True
        self.classes = classes
        # float32 whatever the dtype policy, as the classifier's head: a 16-bit softmax
        # over thousands of tokens would round the loss.
        self.forward_head = keras.layers.Dense(classes, dtype="float32", name="next_token")
        self.backward_head = keras.layers.Dense(classes, dtype="float32", name="previous_token")

    def build(self, input_shape: Any) -> None:
        """Create both heads' weights for states of half the sequence's width."""
        units = input_shape[1][-1] // 2
        self.forward_head.build((None, None, units))
        self.backward_head.build((None, None, units))

    def call(self, inputs: list[Any], mask: Any = None) -> Any:
        """``inputs``: the ids the embedding read [B, T] and the LSTM's states [B, T, 2U]
        (``mask``, the states' padding mask, is not needed: padding is where ids are 0)."""
        ids, states = inputs
        ids = ops.cast(ids, "int32")
        units = ops.shape(states)[-1] // 2
        targets = ops.where(ids >= self.classes, _UNKNOWN, ids)
        # Rows are right-padded, so a pair of neighbouring steps is real when both are.
        real = ops.cast(ops.logical_and(ops.not_equal(ids[:, :-1], 0), ops.not_equal(ids[:, 1:], 0)), "float32")
        forward = self.forward_head(states[:, :-1, :units])
        backward = self.backward_head(states[:, 1:, units:])
        losses = keras.losses.sparse_categorical_crossentropy(
            targets[:, 1:], forward, from_logits=True
        ) + keras.losses.sparse_categorical_crossentropy(targets[:, :-1], backward, from_logits=True)
        mean = ops.sum(ops.cast(losses, "float32") * real) / ops.maximum(2.0 * ops.sum(real), 1.0)
        return ops.broadcast_to(mean, ops.shape(ids)[:1])

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        """No mask: the output has one value per row."""
        return None

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        return {**super().get_config(), "classes": self.classes}


def language_model(classifier: keras.Model, vocabulary: int) -> keras.Model:
    """A model sharing ``classifier``'s layers up to its first LSTM layer whose output is
    `LanguageModelLoss` over the ids its embedding reads (after any token window and
    vocabulary cap), predicting ``vocabulary`` ids at most."""
    embedding = classifier.get_layer(EMBEDDING_NAME)
    states = classifier.get_layer(FIRST_LSTM_NAME).output
    classes = min(vocabulary, embedding.input_dim)
    loss = LanguageModelLoss(classes, name="language_model")([embedding.input, states])
    return keras.Model(classifier.inputs, loss, name="language_model")


def pretrain_embedding(
    classifier: keras.Model,
    train_ids: Any,
    config: Config,
    steps_per_epoch: int,
    verbose: int | str = "auto",
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Train ``classifier``'s embedding with its first LSTM layer as a bidirectional
    language model on the ``(ids, label)`` examples of ``train_ids`` for
    ``config.pretrain.epochs`` epochs of ``steps_per_epoch`` batches of ``batch_size``
    (default: training.batch_size; a run on several replicas passes its global batch),
    bucketed by length, the data reshuffled each pass, with Adam at
    ``config.pretrain.learning_rate`` decayed to 0 (cosine) and the training section's
    gradient clipping and weight decay; then rescale every embedding row to the rows'
    initial mean norm and put the LSTM layer's initial weights back (see the module's
    docstring for why).

    Returns what the manifest records: epochs, steps, the loss of each epoch (the mean of
    its batches' mean loss per token, [UNK] targets included), the last epoch's perplexity
    (exp of that loss), the language model's vocabulary and the seconds taken.
    """
    pretrain, training = config.pretrain, config.training
    started = time.time()
    embedding, lstm = classifier.get_layer(EMBEDDING_NAME), classifier.get_layer(FIRST_LSTM_NAME)
    initial_lstm = lstm.get_weights()
    initial_norm = float(np.linalg.norm(embedding.get_weights()[0], axis=1).mean())
    model = language_model(classifier, pretrain.vocabulary)
    schedule = dataclasses.replace(
        training, epochs=pretrain.epochs, lr_schedule="cosine", warmup_epochs=0.0, ema_momentum=0.0
    )
    model.compile(
        optimizer=make_optimizer(schedule, pretrain.learning_rate, steps_per_epoch),
        # The model's output is its loss already.
        loss=lambda _, loss: loss,
    )
    # Its own seed, so that pretraining does not shift the classifier's batch order.
    stream = train_ids.shuffle(config.data.shuffle_buffer, seed=training.seed + 7, reshuffle_each_iteration=True)
    batches = batched(stream.repeat(), batch_size or training.batch_size, config.lstm_steps()).map(
        lambda ids, *_: (ids, tf.zeros(tf.shape(ids)[:1]))
    )
    classes = model.get_layer("language_model").classes
    log.info(
        "pretraining the embedding in a language model over %d tokens: %d epochs of %d batches",
        classes,
        pretrain.epochs,
        steps_per_epoch,
    )
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # Keras prints its progress bar to stdout; stdout is kept for results.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        fit = model.fit(
            batches, epochs=pretrain.epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=verbose
        )
    (table,) = embedding.get_weights()
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    embedding.set_weights([table * (initial_norm / np.maximum(norms, 1e-12))])
    lstm.set_weights(initial_lstm)
    losses = [round(float(value), 4) for value in fit.history["loss"]]
    for epoch, value in enumerate(losses, start=1):
        log.info("pretraining epoch %d/%d: loss %.4f (perplexity %.1f)", epoch, pretrain.epochs, value, math.exp(value))
    return {
        "epochs": pretrain.epochs,
        "steps": pretrain.epochs * steps_per_epoch,
        "vocabulary": classes,
        "loss": losses,
        "perplexity": round(math.exp(losses[-1]), 2),
        "seconds": round(time.time() - started, 1),
    }
