"""What the estimators refuse at fit, before any training (issue 23): a ``layers`` network whose output width is not
the number of classes (or targets), and a ``random_state`` scikit-learn cannot seed from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import portnn
from portnn.sklearn import NeuralNetClassifier, NeuralNetRegressor

X = np.random.default_rng(0).standard_normal((40, 4))
LABELS = np.array([0, 1] * 20)


def three_logits(n_features: int, n_outputs: int) -> list[portnn.Layer]:
    return [portnn.Dense(n_features, 3)]  # ignores n_outputs


def test_a_network_with_more_logits_than_classes_is_refused_at_fit() -> None:
    clf = NeuralNetClassifier(three_logits, max_iter=1)
    with pytest.raises(ValueError, match=r"NeuralNetClassifier: layers\(4, 2\) builds a network with output shape "
                                         r"\(40, 3\); it must be \(40, 2\): one logit per class \(2 classes\)"):
        clf.fit(X, LABELS)
    assert not hasattr(clf, "model_")


def test_a_regressor_network_of_the_wrong_width_is_refused_at_fit() -> None:
    with pytest.raises(ValueError, match=r"NeuralNetRegressor: layers\(4, 1\) builds a network with output shape "
                                         r"\(40, 3\); it must be \(40, 1\)"):
        NeuralNetRegressor(three_logits, max_iter=1).fit(X, X[:, 0])


def test_a_network_of_the_right_width_still_fits() -> None:
    clf = NeuralNetClassifier(lambda n, k: [portnn.Dense(n, k)], max_iter=2).fit(X, LABELS)
    assert clf.predict(X).shape == (40,)


@pytest.mark.parametrize("random_state", [-1, "abc", 1.5, 2**32, True, [1]])
def test_a_random_state_that_cannot_seed_is_refused_naming_it(random_state: Any) -> None:
    with pytest.raises(ValueError, match=r"NeuralNetClassifier: random_state must be an int in "
                                         r"\[0, 4294967295\] or a numpy RandomState or None"):
        NeuralNetClassifier(max_iter=1, random_state=random_state).fit(X, LABELS)


@pytest.mark.parametrize("random_state", [None, 0, 2**32 - 1, np.int64(3), np.random.RandomState(0)])
def test_the_random_states_scikit_learn_takes_are_taken(random_state: Any) -> None:
    NeuralNetClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=random_state).fit(X, LABELS)
