"""Classification metrics on hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textlstm.metrics import classification_metrics


def test_metrics_hand_checked_three_classes() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    # predicted: 0, 1, 1, 1, 0, 2
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]]
    )
    m = classification_metrics(labels, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_label"]["b"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert m["per_label"]["a"]["f1"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    expected_loss = -np.mean(np.log([0.8, 0.2, 0.8, 0.6, 0.4, 0.8]))
    assert m["loss"] == pytest.approx(expected_loss)


def test_metrics_label_never_predicted_scores_zero_not_nan() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.6, 0.4]]), ["x", "y"])
    assert m["per_label"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert not math.isnan(m["macro_f1"])


def test_metrics_best_mix_weighs_the_better_member() -> None:
    from textlstm.metrics import best_mix

    labels = np.array([0, 1, 1, 0])
    sharp = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.8, 0.2]])
    blunt = np.array([[0.5, 0.5], [0.6, 0.4], [0.5, 0.5], [0.4, 0.6]])
    assert best_mix(labels, [sharp, blunt])[0] == 1.0
    assert best_mix(labels, [blunt, sharp])[0] == 0.0
    weight, losses = best_mix(labels, [sharp, sharp])
    assert weight == 0.5 and len(set(round(v, 12) for v in losses.values())) == 1
    # Multi-label: binary cross-entropy over every label slot.
    targets = np.array([[1, 0], [0, 1]])
    assert best_mix(targets, [np.array([[0.9, 0.1], [0.1, 0.9]]), np.full((2, 2), 0.5)], multi_label=True)[0] == 1.0


def test_metrics_best_mix_of_three_members_searches_the_simplex() -> None:
    from textlstm.metrics import best_mix, cross_entropy, mixed

    labels = np.array([0, 1, 1, 0])
    sharp = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.8, 0.2]])
    blunt = np.array([[0.5, 0.5], [0.6, 0.4], [0.5, 0.5], [0.4, 0.6]])
    wrong = 1.0 - sharp
    weight, losses = best_mix(labels, [blunt, wrong, sharp])
    assert weight == (0.0, 0.0, 1.0)
    # Every point of the simplex in twentieths: 21 * 22 / 2 of them, each summing to 1.
    assert len(losses) == 231 and all(abs(sum(w) - 1.0) < 1e-12 for w in losses)
    # Equal members tie everywhere: a mix nearest the plain mean (1/3 each) wins.
    assert sorted(best_mix(labels, [sharp, sharp, sharp])[0]) == [0.3, 0.35, 0.35]
    # Two sharp members beside a wrong one: the best mix drops the wrong member and its
    # loss is the one `mixed` gives at that weight.
    weight, losses = best_mix(labels, [sharp, wrong, sharp])
    assert weight[1] == 0.0
    assert abs(losses[weight] - cross_entropy(labels, mixed(weight, sharp, wrong, sharp))) < 1e-6
