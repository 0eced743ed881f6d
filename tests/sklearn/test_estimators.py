"""portnn.sklearn: scikit-learn's own estimator checks, use in pipelines, searches and cross-validation, partial_fit,
pickling, determinism, and the same predictions on every backend."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import portnn
from portnn import backends
from portnn.array.tree import leaves
from portnn.sklearn import NeuralNetClassifier, NeuralNetRegressor

ROOT = Path(__file__).resolve().parents[2]
SMALL: dict[str, Any] = {"hidden_layer_sizes": (16,), "max_iter": 40, "lr": 0.01}  # what scikit-learn's checks train
FAST: dict[str, Any] = {"hidden_layer_sizes": (16,), "max_iter": 30, "lr": 0.01, "batch_size": 32, "random_state": 0}


def installed(name: str) -> bool:
    return backends.get(name).installed()


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# ---- scikit-learn's estimator checks ----------------------------------------------------------------------------
# The Array API checks need SCIPY_ARRAY_API=1 before scipy is imported: they run in a fresh process below (here they
# would only skip), unless this session was started with it.
_CHECKS = parametrize_with_checks([NeuralNetClassifier(**SMALL), NeuralNetRegressor(**SMALL)])
_IN_PROCESS = [p for p in _CHECKS.args[1]
               if os.environ.get("SCIPY_ARRAY_API") == "1" or "array_api" not in str(p[1])]


@pytest.mark.parametrize(_CHECKS.args[0], _IN_PROCESS, **_CHECKS.kwargs)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


def test_no_check_is_expected_to_fail() -> None:
    tags = NeuralNetClassifier().__sklearn_tags__()
    assert tags.array_api_support
    assert not tags.non_deterministic
    assert not tags.classifier_tags.poor_score
    assert NeuralNetRegressor().__sklearn_tags__().target_tags.multi_output
    assert len(_IN_PROCESS) >= 100  # both estimators' checks were collected, not silently dropped


@pytest.fixture(scope="module")
def array_api_run() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.sklearn._array_api_worker"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not (installed("torch") and installed("array_api_strict")), reason="needs torch and strict")
def test_sklearn_array_api_checks_pass(array_api_run: dict[str, Any]) -> None:
    for name, results in array_api_run["checks"].items():
        failed = [r for r in results if r[1] not in ("passed", "skipped")]
        assert not failed, f"{name}: {failed}"
        passed = [r[0] for r in results if r[1] == "passed"]
        # numpy, array_api_strict, torch cpu float64 and float32, strict -> torch mixed inputs, same namespace
        assert passed.count("check_array_api_input") >= 4, (name, results)
        assert "check_array_api_mixed_inputs" in passed
        assert "check_array_api_same_namespace" in passed


@pytest.mark.skipif(not (installed("torch") and installed("array_api_strict")), reason="needs torch and strict")
def test_array_api_dispatch_keeps_the_inputs_namespace(array_api_run: dict[str, Any]) -> None:
    facts = array_api_run["dispatch"]
    assert facts["proba"] == ["torch", "cpu", "torch.float64"]
    assert facts["labels"] == ["torch", "cpu", "torch.int64"]
    assert facts["proba_diff"] <= 1e-12
    assert facts["labels_equal"]
    assert facts["score"] > 0.9
    assert facts["classes_type"] == "numpy"
    assert "must use the same namespace" in facts["mixed_error"]
    assert "predict()" in facts["mixed_error"]
    assert facts["regression"][0].startswith("array_api_strict")
    assert "device1" in facts["regression"][1]
    assert facts["regression_outside"] == ["numpy", "cpu", "float64"]


# ---- everyday use ------------------------------------------------------------------------------------------------
def test_default_classifier_works_as_is() -> None:
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    clf = NeuralNetClassifier(random_state=0).fit(X_train, y_train)  # 100 ReLU units, Adam 1e-3, 200 epochs
    assert clf.score(X_test, y_test) >= 0.9
    assert isinstance(clf.model_, portnn.Sequential)
    assert clf.n_features_in_ == 4
    assert clf.n_outputs_ == 3
    assert [type(layer).__name__ for layer in clf.model_.layers] == ["Dense", "ReLU", "Dense"]
    first = clf.model_.layers[0]
    assert isinstance(first, portnn.Dense)
    assert first.out_features == 100
    assert 1 <= clf.n_iter_ <= 200
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_pipeline_reaches_90_percent_on_digits() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("net", NeuralNetClassifier(hidden_layer_sizes=(32,), max_iter=20, lr=0.01, random_state=0))])
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) >= 0.95  # measured 0.978
    assert pipe.named_steps["net"].classes_.tolist() == list(range(10))


def test_grid_search_over_lr_and_hidden_sizes(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    grid = {"lr": [1e-4, 1e-2], "hidden_layer_sizes": [(4,), (16,)]}
    search = GridSearchCV(NeuralNetClassifier(max_iter=30, batch_size=32, random_state=0), grid, cv=3, n_jobs=1)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["lr"] == 1e-2  # lr 1e-4 barely moves in 30 epochs
    assert search.best_score_ > 0.85
    assert search.best_estimator_.model_.layers[0].out_features == search.best_params_["hidden_layer_sizes"][0]


def test_cross_val_score(iris: tuple[np.ndarray, np.ndarray]) -> None:
    scores = cross_val_score(NeuralNetClassifier(**FAST), *iris, cv=5)
    assert scores.shape == (5,)
    assert scores.mean() > 0.85


def test_get_params_set_params_round_trip() -> None:
    clf = NeuralNetClassifier(hidden_layer_sizes=(5, 3), lr=0.05, backend="torch")
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (5, 3)
    assert params["lr"] == 0.05
    assert params["max_iter"] == 200
    other = NeuralNetClassifier()
    assert other.set_params(**params) is other
    assert other.get_params() == params
    copied = clone(clf)
    assert copied is not clf
    assert copied.get_params() == params
    assert not hasattr(copied, "model_")


def test_constructor_only_stores_and_fit_checks() -> None:
    bad: list[dict[str, Any]] = [
        {"activation": "swish"}, {"optimizer": "rmsprop"}, {"lr": 0}, {"lr": float("nan")}, {"max_iter": 0},
        {"batch_size": "big"}, {"hidden_layer_sizes": (4, 0)}, {"dtype": "float16"}, {"compile": "yes"},
        {"validation_fraction": 1.0}, {"tol": -1.0}, {"layers": "mlp"}, {"shuffle": 1}]
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    for params in bad:
        clf = NeuralNetClassifier(**params)  # never raises here
        name = next(iter(params))
        with pytest.raises(ValueError, match=name):
            clf.fit(X, y)


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        NeuralNetClassifier(backend="nope").fit(np.eye(4), [0, 1, 0, 1])


# ---- partial_fit -------------------------------------------------------------------------------------------------
def test_partial_fit_continues_and_the_loss_falls(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    clf = NeuralNetClassifier(**FAST)
    for _ in range(15):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 15
    assert len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert clf.model_.epoch == 15  # one model trained on, not rebuilt


def test_partial_fit_equals_fit_bit_for_bit(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    settings = {**FAST, "max_iter": 4, "tol": None}
    whole = NeuralNetClassifier(**settings).fit(X, y)
    steps = NeuralNetClassifier(**settings)
    for _ in range(4):
        steps.partial_fit(X, y)  # classes default to y's on the first call
    for key, value in whole.model_.state_dict().items():
        np.testing.assert_array_equal(value, steps.model_.state_dict()[key])
    assert whole.loss_curve_ == steps.loss_curve_
    whole.partial_fit(X, y)  # after fit: one more epoch with the same Adam state
    assert whole.n_iter_ == 5
    assert int(portnn.to_numpy(whole.model_.optimizer_state["step"])) == 5 * 5


def test_partial_fit_refuses_new_labels_and_other_classes() -> None:
    X, y = np.eye(4), np.array(["a", "b", "a", "b"])
    clf = NeuralNetClassifier(**FAST).partial_fit(X, y)
    with pytest.raises(ValueError, match="previously unseen labels"):
        clf.partial_fit(X, np.array(["a", "c", "a", "b"]))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)


# ---- classifier outputs ------------------------------------------------------------------------------------------
def test_probabilities_and_predictions_agree(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    clf = NeuralNetClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(proba >= 0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(clf.decision_function(X).argmax(axis=1), proba.argmax(axis=1))
    assert clf.score(X, y) > 0.9


def test_binary_decision_function_is_one_column() -> None:
    X, y = load_iris(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[y < 2]), y[y < 2]
    clf = NeuralNetClassifier(**FAST).fit(X, y)
    decision = clf.decision_function(X)
    assert decision.shape == (100,)
    assert clf.predict_proba(X).shape == (100, 2)
    np.testing.assert_array_equal(clf.classes_[(decision > 0).astype(int)], clf.predict(X))


def test_string_labels(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NeuralNetClassifier(**FAST).fit(X, names)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    predicted = clf.predict(X)
    assert predicted.dtype.kind == "U"
    assert set(predicted) <= set(clf.classes_)
    assert clf.score(X, names) > 0.9


def test_float_labels_keep_their_dtype() -> None:
    X, y = np.eye(4, dtype=np.float32), np.array([0.0, 1.0, 0.0, 1.0])
    predicted = NeuralNetClassifier(**FAST).fit(X, y).predict(X)
    assert predicted.dtype == np.float64  # the labels' dtype, not the float32 precision of X
    assert set(predicted.tolist()) <= {0.0, 1.0}


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="only one class"):
        NeuralNetClassifier().fit(np.eye(3), ["x", "x", "x"])


# ---- stopping ----------------------------------------------------------------------------------------------------
def test_tol_stops_after_n_iter_no_change(iris: tuple[np.ndarray, np.ndarray]) -> None:
    clf = NeuralNetClassifier(**{**FAST, "tol": 10.0, "n_iter_no_change": 3}).fit(*iris)
    assert clf.n_iter_ == 4  # the first epoch improves on nothing, then 3 epochs without a gain of 10
    assert NeuralNetClassifier(**{**FAST, "tol": None}).fit(*iris).n_iter_ == FAST["max_iter"]


def test_early_stopping_on_a_validation_split(iris: tuple[np.ndarray, np.ndarray]) -> None:
    settings = {**FAST, "max_iter": 200, "early_stopping": True, "n_iter_no_change": 3, "validation_fraction": 0.2}
    clf = NeuralNetClassifier(**settings).fit(*iris)
    assert clf.n_iter_ < 200
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    curve = clf.validation_loss_curve_
    assert min(curve[-3:]) > min(curve[:-3]) - 1e-4  # stopped: 3 epochs without a gain of tol on the best
    assert clf.score(*iris) > 0.9


def test_verbose_prints_the_loss(iris: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]) -> None:
    NeuralNetClassifier(**{**FAST, "max_iter": 2, "verbose": 1}).fit(*iris)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Iteration 1, loss = ")


# ---- custom networks ---------------------------------------------------------------------------------------------
def tanh_net(n_features: int, n_outputs: int) -> list[portnn.Layer]:
    return [portnn.Dense(n_features, 8), portnn.Tanh(), portnn.Dense(8, n_outputs)]


def not_layers(n_features: int, n_outputs: int) -> Any:
    return "not layers"


def test_layers_callable_builds_the_network(iris: tuple[np.ndarray, np.ndarray]) -> None:
    clf = NeuralNetClassifier(tanh_net, **FAST).fit(*iris)
    assert [type(layer).__name__ for layer in clf.model_.layers] == ["Dense", "Tanh", "Dense"]
    last = clf.model_.layers[-1]
    assert isinstance(last, portnn.Dense)
    assert last.out_features == 3
    assert clf.score(*iris) > 0.9
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(iris[0]), clf.predict_proba(iris[0]))
    with pytest.raises(TypeError, match="must return a list of portnn layers"):
        NeuralNetClassifier(not_layers, **FAST).fit(*iris)


def test_hidden_layers_and_activation() -> None:
    clf = NeuralNetRegressor(hidden_layer_sizes=(6, 5), activation="tanh", max_iter=1).fit(np.eye(4), np.ones(4))
    assert [type(layer).__name__ for layer in clf.model_.layers] == ["Dense", "Tanh", "Dense", "Tanh", "Dense"]
    linear = NeuralNetRegressor(hidden_layer_sizes=(), max_iter=1).fit(np.eye(4), np.ones(4))
    assert [type(layer).__name__ for layer in linear.model_.layers] == ["Dense"]


# ---- determinism -------------------------------------------------------------------------------------------------
def test_random_state_decides_everything(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    a = NeuralNetClassifier(**{**FAST, "random_state": 7}).fit(X, y).predict_proba(X)
    b = NeuralNetClassifier(**{**FAST, "random_state": 7}).fit(X, y).predict_proba(X)
    c = NeuralNetClassifier(**{**FAST, "random_state": 8}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    none = {**FAST, "random_state": None}  # None: seeds drawn from NumPy's global generator, as scikit-learn does
    np.random.seed(3)  # noqa: NPY002 - random_state=None means NumPy's global generator
    d = NeuralNetClassifier(**none).fit(X, y).predict_proba(X)
    np.random.seed(3)  # noqa: NPY002
    np.testing.assert_array_equal(d, NeuralNetClassifier(**none).fit(X, y).predict_proba(X))
    assert np.abs(NeuralNetClassifier(**none).fit(X, y).predict_proba(X) - d).max() > 1e-3


# ---- pickling ----------------------------------------------------------------------------------------------------
def test_pickle_keeps_predictions_and_optimizer_state(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    clf = NeuralNetClassifier(**{**FAST, "max_iter": 5}).fit(X, y)
    clf.predict(X)  # placed and used: the model now holds a namespace module and cached forward passes
    restored = pickle.loads(pickle.dumps(clf))
    assert isinstance(restored.model_, portnn.Sequential)
    assert restored.model_ is not clf.model_
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.loss_curve_ == clf.loss_curve_
    assert restored.n_iter_ == 5
    deep = copy.deepcopy(clf)
    for estimator in (clf, restored, deep):  # one more epoch from the same Adam state and shuffle stream
        estimator.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(deep.predict_proba(X), clf.predict_proba(X))
    assert restored.model_.epoch == 6


def test_pickle_holds_only_host_arrays(iris: tuple[np.ndarray, np.ndarray]) -> None:
    clf = NeuralNetRegressor(**FAST).fit(iris[0], iris[0][:, 0])
    state = clf.__getstate__()
    frozen = state["model_"]
    assert isinstance(frozen, dict)
    assert frozen["layers"] == clf.model_.layers
    arrays = leaves(frozen["training"].arrays())
    assert arrays
    assert all(type(a) is np.ndarray for a in arrays)
    assert clf.__dict__["model_"] is clf.model_  # pickling did not touch the live estimator


@pytest.mark.skipif(not installed("array_api_strict"), reason="array-api-strict is not installed")
def test_pickle_of_a_model_on_another_backend(iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    clf = NeuralNetClassifier(**{**FAST, "max_iter": 3}, backend="array_api_strict", device="device1").fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    unpickled = restored.model_.placement
    assert unpickled is None  # placed again where it was fitted at its first use
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    placed = restored.model_.placement
    assert placed is not None
    assert "device1" in str(placed.device)


# ---- backends and dtypes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("backend", "device"), [("array_api_strict", "device1"), ("torch", None)])
def test_backends_give_numpys_predictions(iris: tuple[np.ndarray, np.ndarray], backend: str,
                                          device: str | None) -> None:
    if not installed(backend):
        pytest.skip(f"{backend} is not installed")
    X, y = iris
    reference = NeuralNetClassifier(**FAST).fit(X, y)
    other = NeuralNetClassifier(**FAST, backend=backend, device=device).fit(X, y)
    assert backend in type(other.model_.params[0]["weight"]).__module__
    proba = other.predict_proba(X)
    assert type(proba) is np.ndarray  # NumPy in, NumPy out, wherever the network trained
    np.testing.assert_allclose(proba, reference.predict_proba(X), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(other.predict(X), reference.predict(X))
    np.testing.assert_allclose(other.loss_curve_, reference.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_float32_stays_float32(iris: tuple[np.ndarray, np.ndarray], backend: str) -> None:
    if not installed(backend):
        pytest.skip(f"{backend} is not installed")
    X, y = iris
    clf = NeuralNetClassifier(**FAST, dtype="float32", backend=backend).fit(X, y)
    dtypes = {str(a.dtype).rsplit(".", 1)[-1] for layer in clf.model_.params for a in layer.values()}
    dtypes |= {str(a.dtype).rsplit(".", 1)[-1] for layer in clf.model_.optimizer_state["m"] for a in layer.values()}
    assert dtypes == {"float32"}
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float64  # results follow the input's precision, as scikit-learn's
    np.testing.assert_array_equal(clf.predict_proba(X).astype(np.float32), clf.predict_proba(X.astype(np.float32)))
    assert clf.score(X, y) > 0.9
    double = NeuralNetClassifier(**FAST, backend=backend).fit(X, y).predict_proba(X)
    assert 0 < np.abs(clf.predict_proba(X) - double).max() < 1e-3  # float32 rounding, not another model


# ---- regressor ---------------------------------------------------------------------------------------------------
def test_regressor_1d_and_2d_targets() -> None:
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), y / y.std()
    settings: dict[str, Any] = {"hidden_layer_sizes": (32,), "max_iter": 100, "lr": 0.01, "batch_size": 32,
                                "random_state": 0}
    one = NeuralNetRegressor(**settings).fit(X, y)
    assert one.predict(X).shape == (200,)
    assert one.score(X, y) > 0.95
    assert one.n_outputs_ == 1
    Y = np.column_stack([y, -2.0 * y])
    two = NeuralNetRegressor(**settings).fit(X, Y)
    assert two.predict(X).shape == (200, 2)
    assert two.score(X, Y) > 0.95
    assert two.n_outputs_ == 2
    column = NeuralNetRegressor(**settings).fit(X, y[:, None])
    assert column.predict(X).shape == (200, 1)
    np.testing.assert_array_equal(column.predict(X)[:, 0], one.predict(X))  # same model, only the shape differs
    with pytest.raises(ValueError, match="y has 2 outputs"):
        one.partial_fit(X, Y)
    assert not hasattr(one, "predict_proba")
    assert not hasattr(one, "classes_")
