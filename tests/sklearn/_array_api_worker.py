"""Run in a fresh process by test_estimators.py: scikit-learn's Array API dispatch needs SCIPY_ARRAY_API=1 before
scipy is imported, which a test session cannot promise. Prints one JSON object of what it saw."""

from __future__ import annotations

import json
import os
from typing import Any

os.environ["SCIPY_ARRAY_API"] = "1"  # before scipy and scikit-learn are imported

import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from portnn import backends, host
from portnn.sklearn import NeuralNetClassifier, NeuralNetRegressor

SMALL: dict[str, Any] = {"hidden_layer_sizes": (16,), "max_iter": 40, "lr": 0.01}


def array_api_checks() -> dict[str, list[list[str]]]:
    """scikit-learn's Array API checks of both estimators: [check name, status, error] for each."""
    found = {}
    for estimator in (NeuralNetClassifier(**SMALL), NeuralNetRegressor(**SMALL)):
        results = check_estimator(estimator, on_fail=None)
        found[type(estimator).__name__] = [[r["check_name"], r["status"], repr(r["exception"])[:500]]
                                           for r in results if "array_api" in r["check_name"]]
    return found


def describe(a: Any) -> list[str]:
    """[namespace module, device, dtype] of an array."""
    return [type(a).__module__, str(getattr(a, "device", "cpu")), str(a.dtype)]


def dispatch() -> dict[str, object]:
    """Torch tensors and array-api-strict arrays in, under array_api_dispatch: where the results come out."""
    import torch

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    settings: dict[str, Any] = {"hidden_layer_sizes": (8,), "max_iter": 20, "lr": 0.01, "batch_size": 32,
                                "random_state": 0}
    reference = NeuralNetClassifier(**settings).fit(X, y)
    facts: dict[str, object] = {}
    with sklearn.config_context(array_api_dispatch=True):
        X_t, y_t = torch.asarray(X), torch.asarray(y)
        clf = NeuralNetClassifier(**settings).fit(X_t, y_t)
        proba, labels = clf.predict_proba(X_t), clf.predict(X_t)
        facts["proba"], facts["labels"] = describe(proba), describe(labels)
        facts["proba_diff"] = float(np.max(np.abs(proba.numpy() - reference.predict_proba(X))))
        facts["labels_equal"] = bool(np.array_equal(labels.numpy(), reference.predict(X)))
        facts["score"] = clf.score(X_t, y_t)
        facts["classes_type"] = type(clf.classes_).__module__
        try:
            clf.predict(X)  # NumPy input to a model fitted on torch tensors
            facts["mixed_error"] = ""
        except ValueError as err:
            facts["mixed_error"] = str(err)
        xp, device = backends.load("array_api_strict", "device1")
        X_s = host.from_numpy(X, xp, device=device, dtype=xp.float64)
        y_s = host.from_numpy(X[:, 0] * 2.0 - X[:, 1], xp, device=device, dtype=xp.float64)
        reg = NeuralNetRegressor(**settings).fit(X_s, y_s)
        facts["regression"] = describe(reg.predict(X_s))
    facts["regression_outside"] = describe(reg.predict(X))  # without dispatch: NumPy in, NumPy out
    return facts


if __name__ == "__main__":
    print(json.dumps({"checks": array_api_checks(), "dispatch": dispatch()}))
