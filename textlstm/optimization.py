"""How the classifier is optimised: optimizer and learning-rate schedule, class weights and
the weighted multi-label loss."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import keras
import numpy as np

from textlstm.config import TrainingConfig
from textlstm.errors import ConfigError, describe


def make_optimizer(
    training: TrainingConfig, learning_rate: float, steps_per_epoch: int, start_step: int = 0
) -> keras.optimizers.Optimizer:
    """Adam (AdamW when ``training.weight_decay`` > 0) with the configured schedule,
    gradient clipping and, when ``training.ema_momentum`` > 0, a moving average of the
    weights. ``learning_rate`` is the peak rate (training's or fine-tuning's).

    The cosine schedule is a function of the optimizer's step counter, so restoring the
    optimizer's variables restores the position in the schedule as well; ``start_step``
    shifts it for an optimizer that takes over mid-run (after unfreezing layers), whose
    own counter starts at 0 so that Adam's bias correction fits its fresh moments. The
    plateau schedule keeps a plain rate that the trainer lowers between epochs.
    """
    rate: float | keras.optimizers.schedules.LearningRateSchedule = learning_rate
    if training.lr_schedule == "cosine":
        total = max(1, steps_per_epoch * training.epochs)
        warmup = min(total - 1, int(round(training.warmup_epochs * steps_per_epoch)))
        if warmup > 0:
            rate = keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=total - warmup, warmup_target=learning_rate, warmup_steps=warmup
            )
        else:
            rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
        if start_step:
            rate = OffsetSchedule(rate, start_step)
    # The average lives in the optimizer's variables, so checkpoints and resuming keep it.
    ema = {"use_ema": True, "ema_momentum": training.ema_momentum} if training.ema_momentum > 0 else {}
    if training.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(rate, weight_decay=training.weight_decay, clipnorm=training.clipnorm, **ema)
        # Decaying biases only pulls them to zero without regularising anything.
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        return optimizer
    return keras.optimizers.Adam(rate, clipnorm=training.clipnorm, **ema)


@keras.saving.register_keras_serializable(package="textlstm")
class OffsetSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule read ``offset`` steps further on: the rate at step ``s`` is
    ``schedule(s + offset)``."""

    def __init__(self, schedule: keras.optimizers.schedules.LearningRateSchedule, offset: int) -> None:
        self.schedule = schedule
        self.offset = int(offset)

    def __call__(self, step: Any) -> Any:
        """The wrapped schedule's rate ``offset`` steps later."""
        return self.schedule(keras.ops.cast(step, "float32") + float(self.offset))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "offset": self.offset}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OffsetSchedule:
        """Rebuild from `get_config`."""
        return cls(keras.optimizers.schedules.deserialize(config["schedule"]), config["offset"])


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer applies at its current step."""
    rate = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(rate))


def class_weights(
    setting: str, label_names: list[str], counts: Mapping[str, int], examples: int, multi_label: bool
) -> np.ndarray | None:
    """The per-label weight vector for ``training.class_weight`` (None for "none").

    ``counts`` holds each label's number of training examples (for multi-label corpora,
    the examples carrying it) and ``examples`` the number of training examples.
    Single-label weights multiply each example's loss by its class's weight; multi-label
    weights multiply the positive term of each label's binary cross-entropy.
    """
    if setting == "none":
        return None
    n = len(label_names)
    if setting == "balanced":
        count = np.array([max(int(counts.get(name, 0)), 0) for name in label_names], dtype=np.float64)
        if multi_label:
            # Positives of a label are weighted up to balance its negatives (as PyTorch's
            # pos_weight); a label without positives gets 1, having nothing to balance.
            weights = np.divide(examples - count, count, out=np.ones(n), where=count > 0)
            return np.maximum(weights, 1e-3).astype(np.float32)
        weights = np.divide(count.sum(), n * count, out=np.ones(n), where=count > 0)
        return weights.astype(np.float32)
    return _weights_file(Path(setting), label_names)


def _weights_file(path: Path, label_names: list[str]) -> np.ndarray:
    expected = "none, balanced, or a JSON file mapping label names to positive numbers"
    if not path.is_file():
        raise ConfigError(f"training.class_weight names no file; {describe(expected, str(path))}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"class-weight file {path} is not valid JSON ({exc}); expected {expected}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"class-weight file {path} is not a JSON object; {describe(expected, type(data).__name__)}")
    unknown = sorted(set(data) - set(label_names))
    if unknown:
        raise ConfigError(
            f"class-weight file {path} names labels the data does not have: {unknown}; expected labels among {label_names}"
        )
    weights = np.ones(len(label_names), dtype=np.float32)
    for i, name in enumerate(label_names):
        value = data.get(name, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"class-weight file {path} gives {name!r} the weight {value!r}; expected a number > 0")
        weights[i] = value
    return weights


@keras.saving.register_keras_serializable(package="textlstm")
class PositiveWeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy whose positive term is multiplied by a per-label weight, for
    multi-label corpora whose rare labels would otherwise be predicted as always absent."""

    def __init__(self, pos_weight: Any, name: str = "positive_weighted_bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in np.asarray(pos_weight).reshape(-1)]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Mean over labels of -(w * y * log p + (1 - y) * log(1 - p))."""
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        weight = ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        terms = weight * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p)
        return -ops.mean(terms, axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "pos_weight": self.pos_weight}
