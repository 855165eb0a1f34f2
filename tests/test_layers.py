"""Custom layers: the sequence window and masked pooling."""

from __future__ import annotations

import numpy as np
import pytest

from textlstm.errors import ConfigError
from textlstm.layers import MaskedPooling, SequenceWindow

IDS = np.array([[5, 6, 7, 8, 9], [3, 4, 0, 0, 0], [0, 0, 0, 0, 0]], dtype="int64")


@pytest.mark.parametrize(
    ("keep", "length", "expected"),
    [
        ("start", 3, [[5, 6, 7], [3, 4, 0], [0, 0, 0]]),
        ("end", 3, [[7, 8, 9], [3, 4, 0], [0, 0, 0]]),
        ("end", 10, IDS.tolist()),
        ("start", 10, IDS.tolist()),
    ],
)
def test_layers_sequence_window_keeps_the_right_tokens(keep: str, length: int, expected: list) -> None:
    assert np.asarray(SequenceWindow(length, keep)(IDS)).tolist() == expected


@pytest.mark.parametrize("keep", ["start", "end"])
def test_layers_sequence_window_never_returns_zero_steps(keep: str) -> None:
    assert np.asarray(SequenceWindow(4, keep)(np.zeros((2, 0), dtype="int64"))).shape == (2, 1)


def test_layers_sequence_window_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="keep mode; expected"):
        SequenceWindow(3, "middle")
    with pytest.raises(ConfigError, match="max_length must be positive"):
        SequenceWindow(0)


def test_layers_masked_pooling_ignores_padding() -> None:
    x = np.array([[[1.0, -2.0], [3.0, -4.0], [100.0, 100.0]], [[-1.0, -1.0], [9.0, 9.0], [9.0, 9.0]]], dtype="float32")
    mask = np.array([[True, True, False], [True, False, False]])
    out = np.asarray(MaskedPooling("max_mean")(x, mask=mask))
    np.testing.assert_allclose(out, [[3.0, -2.0, 2.0, -3.0], [-1.0, -1.0, -1.0, -1.0]])


def test_layers_masked_pooling_all_masked_row_is_zero() -> None:
    x = np.full((1, 2, 3), -5.0, dtype="float32")
    out = np.asarray(MaskedPooling("max")(x, mask=np.array([[False, False]])))
    np.testing.assert_allclose(out, np.zeros((1, 3)))
