"""Custom Keras layers used by the classifier; registered so saved models reload."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from textlstm.config import POOLING_MODES
from textlstm.errors import ConfigError, describe


@keras.saving.register_keras_serializable(package="textlstm")
class SequenceWindow(keras.layers.Layer):
    """Truncate id sequences to ``max_length`` and keep at least one time step.

    TextVectorization pads a batch to its longest text; a batch of empty strings would
    otherwise have zero time steps, which the LSTM cannot run on.
    """

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_length < 1:
            raise ConfigError(f"SequenceWindow max_length must be positive; {describe('an integer >= 1', max_length)}")
        self.max_length = max_length

    def call(self, ids: Any) -> Any:
        """Return ids[:, :max_length], right-padded with one 0 column if empty."""
        ids = ids[:, : self.max_length]
        pad = ops.maximum(1 - ops.shape(ids)[1], 0)
        return ops.pad(ids, [[0, 0], [0, pad]])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="textlstm")
class MaskedPooling(keras.layers.Layer):
    """Pool a sequence over its unmasked time steps: ``max``, ``mean`` or both concatenated.

    Keras' GlobalMaxPooling1D ignores masks, so padding would leak into the maximum.
    A sequence with no unmasked step (an empty text) pools to zeros.
    """

    def __init__(self, mode: str = "max_mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in POOLING_MODES or mode == "last":
            raise ConfigError(f"unknown pooling mode; {describe(str(['max_mean', 'max', 'mean']), mode)}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        """Pool [batch, time, features] to [batch, features] (or 2x features for max_mean)."""
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        has_any = ops.cast(ops.sum(valid, axis=1) > 0, inputs.dtype)
        pooled = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.stop_gradient(ops.min(inputs)) - 1.0
            masked = ops.where(valid > 0, inputs, lowest)
            pooled.append(ops.max(masked, axis=1) * has_any)
        if self.mode in ("mean", "max_mean"):
            total = ops.sum(inputs * valid, axis=1)
            pooled.append(total / ops.maximum(ops.sum(valid, axis=1), 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        """The pooled output has no time axis, so no mask."""
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """[batch, features * (2 if max_mean else 1)]."""
        features = input_shape[-1]
        if features is not None and self.mode == "max_mean":
            features *= 2
        return (input_shape[0], features)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "mode": self.mode}
