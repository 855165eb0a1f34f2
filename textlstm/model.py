"""The classifier: token ids -> probabilities, and the string-in model around it."""

from __future__ import annotations

from typing import Any

import keras

from textlstm.config import Config, ModelConfig
from textlstm.layers import MaskedPooling, MemberMix, NgramBag, SequenceWindow, VocabularyCap

CLASSIFIER_NAME = "classifier"
VECTORIZER_NAME = "vectorizer"
# Pretrained word vectors are written into this layer (textlstm/embeddings.py).
EMBEDDING_NAME = "embedding"
HEAD_NAME = "probabilities"
NGRAM_BAG_NAME = "ngram_bag"
# With model.naive_bayes_bag: the second bag, beside NGRAM_BAG_NAME.
NAIVE_BAYES_BAG_NAME = "naive_bayes_bag"
VOCABULARY_CAP_NAME = "lstm_vocabulary"
LSTM_WINDOW_NAME = "lstm_window"
# With model.ngram_join=average: the output layers of the member paths (the LSTM, the bag,
# and with model.naive_bayes_bag the naive Bayes bag), each trained on its own loss
# (`training_model`); HEAD_NAME then mixes them (`MemberMix`, or the mean).
MEMBER_HEADS = ("lstm_probabilities", "ngram_probabilities", "naive_bayes_probabilities")
# How logs, manifests and reports name each member.
MEMBER_NAMES = dict(zip(MEMBER_HEADS, ("LSTM", "n-gram bag", "naive Bayes bag"), strict=True))
# Each member's own layers beside its output layer (the LSTM path's: every other layer).
_MEMBER_LAYERS = {MEMBER_HEADS[1]: NGRAM_BAG_NAME, MEMBER_HEADS[2]: NAIVE_BAYES_BAG_NAME}


def build_classifier(
    config: ModelConfig,
    vocab_size: int,
    num_labels: int,
    multi_label: bool = False,
    base_vocab_size: int | None = None,
    keep: str = "start",
) -> keras.Model:
    """Embedding (masking padding) -> bidirectional LSTM stack -> pooling -> Dense -> head,
    with, when ``config.ngram_order`` is set, a bag of hashed n-grams beside it that either
    joins the pooled states (``ngram_join="concat"``) or has its own head, the output then
    being the mean of both heads' probabilities (``"average"``; see `training_model`), or
    with ``ngram_mix="tuned"`` their weighted mean (`MemberMix`, set after training).
    With ``config.naive_bayes_bag`` a naive Bayes bag with its own output layer is a third
    member of that mix.

    The head is a softmax over ``num_labels`` classes (two for binary tasks, which is the
    same model as a sigmoid unit and keeps one output layout for every task), or, with
    ``multi_label``, one independent sigmoid per label.

    Under ``config.lstm_length`` the LSTM reads only that many of the window's tokens (the
    first or, with ``keep="end"`` as the vectorizer keeps them, the last), while the bag
    reads them all.
    """
    config.validate()
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x, rows = ids, vocab_size
    if config.lstm_length is not None and config.ngram_order:
        x = SequenceWindow(config.lstm_length, keep, name=LSTM_WINDOW_NAME)(ids)
    # Tokens a fine-tuning run appended follow the base vocabulary, beyond any cap.
    base = vocab_size if base_vocab_size is None else base_vocab_size
    if config.lstm_tokens is not None and config.lstm_tokens < base:
        x = VocabularyCap(config.lstm_tokens, base, name=VOCABULARY_CAP_NAME)(x)
        rows = config.lstm_tokens + vocab_size - base
    x = keras.layers.Embedding(rows, config.embedding_dim, mask_zero=True, name=EMBEDDING_NAME)(x)
    if config.spatial_dropout:
        x = keras.layers.SpatialDropout1D(config.spatial_dropout, name="spatial_dropout")(x)
    for i in range(config.lstm_layers):
        last = i == config.lstm_layers - 1
        return_sequences = not (last and config.pooling == "last")
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(config.lstm_units, return_sequences=return_sequences),
            name=f"bilstm_{i + 1}",
        )(x)
        if not last and config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"lstm_dropout_{i + 1}")(x)
    if config.pooling != "last":
        x = MaskedPooling(config.pooling, name="pooling")(x)
    bag = None
    if config.ngram_order:
        naive_bayes = config.ngram_weighting == "naive_bayes"
        bag = NgramBag(
            vocab_size,
            config.ngram_order,
            config.ngram_buckets,
            # NBSVM's linear model: one weight per label.
            num_labels if naive_bayes else config.ngram_dim,
            config.ngram_scale,
            weighting=config.ngram_weighting,
            l2=config.ngram_l2 if naive_bayes else 0.0,
            name=NGRAM_BAG_NAME,
        )(ids)
        if config.ngram_join == "concat":
            x, bag = keras.layers.Concatenate(name="features")([x, bag]), None
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="pooled_dropout")(x)
    for i, units in enumerate(config.dense_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
        if config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dense_dropout_{i + 1}")(x)

    def head(features: Any, name: str, fixed_identity: bool = False) -> Any:
        # float32 whatever the dtype policy: under mixed precision a float16 softmax would
        # round probabilities and overflow the loss.
        layer = keras.layers.Dense(
            num_labels,
            activation="sigmoid" if multi_label else "softmax",
            kernel_initializer="identity" if fixed_identity else "glorot_uniform",
            dtype="float32",
            name=name,
        )
        output = layer(features)
        if fixed_identity:
            # A naive Bayes bag's outputs are already its logits. A trainable kernel after
            # them could grow where the bag's L2 penalty does not reach, scaling every logit
            # up; only the bias trains.
            layer.kernel.trainable = False
        return output

    if bag is None:
        return keras.Model(ids, head(x, HEAD_NAME), name=CLASSIFIER_NAME)
    linear_bag = config.ngram_weighting == "naive_bayes"
    if config.dropout and not linear_bag:
        bag = keras.layers.Dropout(config.dropout, name="ngram_dropout")(bag)
    members = [head(x, MEMBER_HEADS[0]), head(bag, MEMBER_HEADS[1], fixed_identity=linear_bag)]
    if config.has_naive_bayes_bag():
        second = NgramBag(
            vocab_size,
            config.naive_bayes_order or config.ngram_order,
            config.naive_bayes_buckets,
            num_labels,
            config.naive_bayes_scale,
            weighting="naive_bayes",
            l2=config.ngram_l2,
            name=NAIVE_BAYES_BAG_NAME,
        )(ids)
        members.append(head(second, MEMBER_HEADS[2], fixed_identity=True))
    if config.ngram_mix == "tuned":
        mixed = MemberMix(len(members), dtype="float32", name=HEAD_NAME)(members)
    else:
        mixed = keras.layers.Average(dtype="float32", name=HEAD_NAME)(members)
    return keras.Model(ids, mixed, name=CLASSIFIER_NAME)


def embedded_tokens(classifier: keras.Model, vocabulary: list[str]) -> list[str]:
    """The tokens of the LSTM embedding's rows, in row order: the whole vocabulary, or
    under ``model.lstm_tokens`` the capped head and any tokens appended after the base."""
    names = {layer.name for layer in classifier.layers}
    if VOCABULARY_CAP_NAME not in names:
        return list(vocabulary)
    cap = classifier.get_layer(VOCABULARY_CAP_NAME)
    return [*vocabulary[: cap.limit], *vocabulary[cap.offset :]]


def training_model(classifier: keras.Model) -> keras.Model:
    """The model `fit` trains: the classifier itself, or, when it mixes member paths,
    a model sharing its layers whose outputs are the mix and each member's
    probabilities, so that every member gets a loss of its own."""
    heads = member_heads(classifier)
    if not heads:
        return classifier
    members = [classifier.get_layer(name).output for name in heads]
    return keras.Model(classifier.inputs, [classifier.outputs[0], *members], name="trainer")


def member_heads(classifier: keras.Model) -> list[str]:
    """The output layers of a classifier's member paths, in `MEMBER_HEADS` order (the
    LSTM's, the bag's and any naive Bayes bag's); [] for a single network."""
    names = {layer.name for layer in classifier.layers}
    if not all(name in names for name in MEMBER_HEADS[:2]):
        return []
    return [name for name in MEMBER_HEADS if name in names]


def member_weight_slots(classifier: keras.Model) -> list[list[int]]:
    """For a classifier that mixes member paths, the indices into ``classifier.weights``
    of each member's own weights, in `member_heads` order: a bag and its head for each
    bag, every other layer's for the LSTM path, the mix's own weight in none."""
    owner = {}
    for layer in classifier.layers:
        for variable in layer.weights:
            owner[id(variable)] = layer.name
    heads = member_heads(classifier)
    member_of = {}
    for member, head in enumerate(heads[1:], start=1):
        member_of[head] = member_of[_MEMBER_LAYERS[head]] = member
    slots: list[list[int]] = [[] for _ in heads]
    for index, variable in enumerate(classifier.weights):
        name = owner.get(id(variable))
        if name == HEAD_NAME:
            continue
        slots[member_of.get(name, 0)].append(index)
    return slots


def build_text_model(vectorizer: Any, classifier: keras.Model, config: Config) -> keras.Model:
    """Wrap the classifier so that it takes a batch of raw strings (shape [None])."""
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = vectorizer(text)
    ids = SequenceWindow(config.vectorizer.max_length, config.vectorizer.keep, name="window")(ids)
    return keras.Model(text, classifier(ids), name="text_classifier")


def split_text_model(model: keras.Model) -> tuple[Any, keras.Model]:
    """Return the (vectorizer, classifier) inside a string-in model."""
    return model.get_layer(VECTORIZER_NAME), model.get_layer(CLASSIFIER_NAME)
