"""Starting a run from a trained model (`train --init-from`): its configuration, its
vocabulary (optionally extended), and its weights copied into the new classifier."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from textlstm import artifacts
from textlstm.config import Config, VectorizerConfig
from textlstm.layers import MemberMix, NgramBag
from textlstm.model import (
    EMBEDDING_NAME,
    HEAD_NAME,
    MEMBER_HEADS,
    VOCABULARY_CAP_NAME,
    split_text_model,
)
from textlstm.pipeline import texts_only
from textlstm.vectorizer import make_vectorizer, strip_special_tokens

log = logging.getLogger(__name__)

# Output layers: their weights carry over only for the same label set.
_HEADS = (HEAD_NAME, *MEMBER_HEADS)


@dataclass
class BaseModel:
    """A trained run to start from."""

    path: Path
    config: Config
    labels: list[str]
    multi_label: bool
    vocabulary: list[str]
    classifier: keras.Model
    # The training data's fingerprint (manifest.json), to tell whether a fine-tuning run
    # reads the same corpus again.
    data_fingerprint: str | None = None

    @property
    def vocabulary_cap(self) -> tuple[int, int] | None:
        """The (limit, offset) of the LSTM's vocabulary cap, or None when it embeds the
        whole vocabulary. A run fine-tuned from it keeps both: tokens appended now follow
        those an earlier fine-tuning appended, after the same offset."""
        names = {layer.name for layer in self.classifier.layers}
        if VOCABULARY_CAP_NAME not in names:
            return None
        cap = self.classifier.get_layer(VOCABULARY_CAP_NAME)
        return cap.limit, cap.offset


def load_base(path: str | Path) -> BaseModel:
    """Load the run directory ``path`` (ModelDirError naming any missing file)."""
    info = artifacts.read_run_info(path)
    vectorizer, classifier = split_text_model(artifacts.load_text_model(info.path))
    return BaseModel(
        path=info.path,
        config=info.config,
        labels=info.labels,
        multi_label=bool(info.config.data.multi_label),
        vocabulary=list(vectorizer.get_vocabulary()),
        classifier=classifier,
        data_fingerprint=(info.manifest.get("data") or {}).get("fingerprint"),
    )


def holdout_mismatch(base: BaseModel, config: Config, fingerprint: str) -> str | None:
    """Why a fine-tuning run on the base's own training data would validate on texts the
    base trained on (its hold-out drawn otherwise: another seed, share or ``holdout_by``),
    or None when the data differs or the hold-out is drawn as the base's was."""
    if base.data_fingerprint != fingerprint or base.config.data.train_split != config.data.train_split:
        return None
    was, now = base.config, config
    draws = {
        "training.seed": (was.training.seed, now.training.seed),
        "data.val_fraction": (was.data.val_fraction, now.data.val_fraction),
        "data.holdout_by": (was.data.holdout_by, now.data.holdout_by),
    }
    return ", ".join(f"{name}={old}" for name, (old, new) in draws.items() if old != new) or None


def finetune_config(config: Config, base: BaseModel) -> Config:
    """``config`` with the base model's vectorizer and model sections: the architecture
    and the text processing must stay those the weights were trained with."""
    vectorizer = dataclasses.replace(base.config.vectorizer, vocab_file=None)
    # Pretrained vectors asked for now still apply (to rows the base vocabulary lacks).
    cap = base.vocabulary_cap
    model = dataclasses.replace(
        base.config.model,
        embeddings_file=config.model.embeddings_file,
        freeze_embeddings=config.model.freeze_embeddings,
        # A base that embeds its whole vocabulary keeps doing so as the vocabulary grows.
        lstm_tokens=None if cap is None else cap[0],
    )
    return dataclasses.replace(config, vectorizer=vectorizer, model=model)


def extend_vocabulary(vocabulary: list[str], train_texts: Any, config: VectorizerConfig, extra: int) -> list[str]:
    """The base vocabulary followed by up to ``extra`` of the new corpus's most frequent
    tokens that it lacks (old token ids keep their meaning)."""
    old = strip_special_tokens(vocabulary)
    # The len(old) + extra most frequent new tokens hold at least `extra` unseen ones.
    adapter = make_vectorizer(dataclasses.replace(config, max_tokens=len(old) + extra + 2), ragged=True)
    adapter.adapt(texts_only(train_texts))
    known = set(old)
    added = [t for t in strip_special_tokens(adapter.get_vocabulary()) if t not in known][:extra]
    log.info("vocabulary extended by %d tokens of the new corpus (%d asked for)", len(added), extra)
    return [*vocabulary[: len(vocabulary) - len(old)], *old, *added]


def label_plan(base: BaseModel, labels: list[str], multi_label: bool) -> tuple[list[str], dict[str, Any]]:
    """The label order of the new run and a JSON-ready description of the label overlap.

    The same label set (and the same single/multi-label mode) keeps the base's order, so
    its output layer continues; otherwise a new output layer is trained on the old encoder.
    """
    shared = sorted(set(base.labels) & set(labels))
    same = set(base.labels) == set(labels) and base.multi_label == multi_label
    plan = {
        "base_labels": base.labels,
        "new_labels": sorted(labels),
        "shared_labels": shared,
        "head": "continued" if same else "new",
    }
    return (list(base.labels) if same else labels), plan


def transfer_weights(base: BaseModel, classifier: keras.Model, continue_head: bool) -> None:
    """Copy the base classifier's weights into ``classifier`` (same architecture): every
    layer as it is, the embedding's old rows (new rows keep their random start), and the
    output layers only when ``continue_head``. The n-gram table keeps its old token rows
    and its hash buckets, which follow the token rows and so move when the vocabulary
    grows (n-grams of the new tokens then share buckets with old ones, as any do). A tuned
    ensemble mix is not copied: the new run starts at the mean and tunes its own. A naive
    Bayes bag (one column per label) is copied with its ratios only when the head is
    continued; with new labels it keeps the ratios counted on the new data and starts at 0."""
    for layer in classifier.layers:
        if not layer.weights or (layer.name in _HEADS and not continue_head) or isinstance(layer, MemberMix):
            continue
        if isinstance(layer, NgramBag) and layer.naive_bayes and not continue_head:
            continue
        old = base.classifier.get_layer(layer.name).get_weights()
        if layer.name == EMBEDDING_NAME:
            matrix = layer.get_weights()[0]
            matrix[: old[0].shape[0]] = old[0]
            old = [matrix]
        elif isinstance(layer, NgramBag):
            # The table (and a naive Bayes bag's ratios): rows of new tokens keep their start.
            old_vocab = base.classifier.get_layer(layer.name).vocab_size
            arrays = layer.get_weights()
            for array, before in zip(arrays, old, strict=True):
                array[:old_vocab] = before[:old_vocab]
                array[layer.vocab_size :] = before[old_vocab:]
            old = arrays
        layer.set_weights(old)


def freeze_layers(classifier: keras.Model, mode: str, frozen: bool, new_head: bool = False) -> list[str]:
    """Set the layers of ``mode`` (embedding: the embedding and n-gram tables; encoder:
    those and the LSTM layers) to not trainable (``frozen``) or trainable; return their
    names. With ``new_head`` (new labels) a naive Bayes bag is left out: it starts at 0
    (`transfer_weights`), and frozen it would add nothing but its bias."""
    if mode == "none":
        return []
    # The n-gram table is an embedding too.
    bags = [
        layer.name
        for layer in classifier.layers
        if isinstance(layer, NgramBag) and not (new_head and layer.naive_bayes)
    ]
    names = [EMBEDDING_NAME, *bags]
    if mode == "encoder":
        names += [layer.name for layer in classifier.layers if layer.name.startswith("bilstm_")]
    for name in names:
        classifier.get_layer(name).trainable = not frozen
    return names
