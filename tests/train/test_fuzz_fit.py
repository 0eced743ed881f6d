"""Fuzzing fit/predict/evaluate: random backends (numpy, array-api-strict on both devices), dtypes, shapes, layer
stacks, losses, optimizers, extreme hyper-parameters and damaged data. Every call either returns finite outputs and a
finite model, or raises ValueError/TypeError/FloatingPointError whose message names the argument or layer; a
ValueError/TypeError leaves the model untouched, and after a FloatingPointError the model is finite.

CI runs a fixed, derandomised sample (FUZZ_EXAMPLES, default 400); set PORTNN_FUZZ_EXAMPLES=5000 PORTNN_FUZZ_RANDOM=1
for a longer, randomised campaign.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import portnn
from portnn import backends
from portnn.train.trainer import readable

FUZZ_EXAMPLES = int(os.environ.get("PORTNN_FUZZ_EXAMPLES", "400"))
RANDOM = os.environ.get("PORTNN_FUZZ_RANDOM") == "1"
TARGETS = [("numpy", "cpu"), ("array_api_strict", "CPU_DEVICE"), ("array_api_strict", "device1")]
RUNNABLE = [t for t in TARGETS if backends.get(t[0]).installed()]
NAMED = re.compile(r"^(fit|predict|evaluate|Sequential|SGD|Adam|Dense|Conv2D|MaxPool2D|AvgPool2D|Dropout|LeakyReLU|"
                   r"Flatten|BatchNorm1d|BatchNorm2d|SoftmaxCrossEntropy|BinaryCrossEntropy|SSE|MSE|load_state_dict|X|y)\b")
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
ACTIVATIONS = [portnn.Sigmoid, portnn.Tanh, portnn.ReLU, portnn.Identity, portnn.Softmax,
               lambda: portnn.LeakyReLU(0.1), lambda: portnn.Dropout(0.3)]


@st.composite
def magnitudes(draw: Any) -> float:
    """Scales from tiny to near float64's maximum (one in four), and now and then (one in twenty) a bad one."""
    pick = draw(st.integers(0, 19))
    if pick == 0:
        return draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf")]))
    if pick <= 5:
        return draw(st.sampled_from([1e3, 1e30, 1e100, 1e200, 1e307, 1e308]))
    return 10.0 ** draw(st.floats(-8.0, 1.0))


@st.composite
def dense_stack(draw: Any, features: int, outputs: int) -> list[Any]:
    layers: list[portnn.Layer] = []
    width = features
    for _ in range(draw(st.integers(0, 2))):
        hidden = draw(st.integers(1, 6))
        layers.append(portnn.Dense(width, hidden, bias=draw(st.booleans())))
        if draw(st.integers(0, 3)) == 0:  # BatchNorm: batch statistics and running state (a batch of 1 included)
            layers.append(portnn.BatchNorm1d(hidden, momentum=draw(st.sampled_from([0.1, 1.0]))))
        layers.append(draw(st.sampled_from(ACTIVATIONS))())
        width = hidden
    wrong = draw(st.sampled_from([0] * 9 + [1]))  # now and then a Dense that does not fit its input
    layers.append(portnn.Dense(width + wrong, outputs))
    if draw(st.booleans()):
        layers.append(draw(st.sampled_from(ACTIVATIONS))())
    return layers


@st.composite
def conv_stack(draw: Any, channels: int, outputs: int, size: int) -> list[Any]:
    out_channels, kernel = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.integers(0, 1))
    side = size + 2 * padding - kernel + 1
    layers: list[portnn.Layer] = [portnn.Conv2D(channels, out_channels, kernel, padding=padding)]
    if draw(st.integers(0, 2)) == 0:
        layers.append(portnn.BatchNorm2d(out_channels))
    layers.append(draw(st.sampled_from(ACTIVATIONS))())
    if side >= 2 and draw(st.booleans()):
        pool = draw(st.sampled_from([portnn.MaxPool2D, portnn.AvgPool2D]))
        layers.append(pool(2))
        side //= 2
    layers += [portnn.Flatten(), portnn.Dense(out_channels * max(side, 1) ** 2, outputs)]
    return layers


@st.composite
def problems(draw: Any) -> dict[str, Any]:
    target = draw(st.sampled_from(RUNNABLE))
    dtype = draw(st.sampled_from(["float64", "float32"]))
    rows = draw(st.sampled_from([1, 2, 3, 5, 8, 13] * 3 + [0]))
    loss = draw(st.sampled_from(["SSE", "MSE", "SoftmaxCrossEntropy", "BinaryCrossEntropy"]))
    outputs = draw(st.integers(1, 4))
    conv = draw(st.booleans()) and draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(magnitudes())
    if conv:
        channels, size = draw(st.integers(1, 2)), draw(st.integers(2, 5))
        X = rng.standard_normal((rows, channels, size, size)) * scale
        layers = draw(conv_stack(channels, outputs, size))
    else:
        features = draw(st.integers(1, 5))
        X = rng.standard_normal((rows, features)) * scale
        layers = draw(dense_stack(features, outputs))
    if draw(st.integers(0, 19)) == 0 and X.size:  # a damaged value
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    kind = draw(st.sampled_from(["fits"] * 8 + ["labels", "floats", "wide"]))
    if loss == "SoftmaxCrossEntropy" and kind in ("fits", "labels"):
        y = rng.integers(-1 if kind == "labels" else 0, outputs + (kind == "labels"), rows)
    elif loss == "BinaryCrossEntropy" and kind == "fits":
        y = rng.integers(0, 2, (rows, outputs)).astype(np.float64)
    elif kind == "wide":
        y = rng.standard_normal((rows, outputs + 1))
    else:
        y = rng.standard_normal((rows, outputs)) * draw(magnitudes())
    if draw(st.booleans()):
        optimizer = ("SGD", dict(lr=draw(magnitudes()), momentum=draw(st.sampled_from([0.0, 0.5, 0.9] * 3 + [1.0])),
                                 weight_decay=draw(st.sampled_from([0.0, 1e-4, 1.0]))))
    else:
        optimizer = ("Adam", dict(lr=draw(magnitudes()), betas=(draw(st.sampled_from([0.0, 0.9] * 4 + [1.0])), 0.999),
                                  eps=draw(st.sampled_from([1e-8, 1e-300, 1.0]))))
    return dict(target=target, dtype=dtype, X=X, y=y, loss=loss, layers=layers, optimizer=optimizer,
                epochs=draw(st.integers(0, 3)), batch_size=draw(st.sampled_from([None, 1, 2, 4, 100] * 3 + [0])),
                seed=draw(st.integers(0, 3)))


def model_arrays(net: portnn.Sequential) -> dict[str, np.ndarray]:
    arrays = dict(net.state_dict())
    arrays.update({k: portnn.to_numpy(a) for k, a in readable(net.training).items() if k.startswith("optim/")})
    return arrays


def assert_finite_model(net: portnn.Sequential) -> None:
    for key, value in model_arrays(net).items():
        assert np.all(np.isfinite(value)), f"{key} holds non-finite values"


def assert_named(err: BaseException) -> None:
    assert NAMED.match(str(err)), f"message does not name the argument or layer: {type(err).__name__}: {err}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings are expected here
@pytest.mark.skipif(not RUNNABLE, reason="no fuzz backend installed")
@FUZZ
@given(problem=problems())
def test_fit_returns_a_finite_model_or_raises_a_named_error(problem: dict[str, Any]) -> None:
    xp, device = backends.load(*problem["target"])
    dtype = getattr(xp, problem["dtype"])

    def put(a: np.ndarray) -> Any:
        return xp.asarray(a, dtype=dtype if a.dtype.kind == "f" else xp.int64, device=device)

    try:
        net = portnn.Sequential(*problem["layers"], seed=problem["seed"]).to(xp, device, problem["dtype"])
        kind, kwargs = problem["optimizer"]
        optimizer = getattr(portnn, kind)(**kwargs)
        loss = getattr(portnn, problem["loss"])()
    except (ValueError, TypeError) as err:
        assert_named(err)
        event("refused at construction: " + re.sub(r"[0-9(), ]+", " ", str(err))[:50])
        return
    X, y = put(problem["X"]), put(problem["y"])
    before, epoch = model_arrays(net), net.epoch
    try:
        history = net.fit(X, y, loss=loss, optimizer=optimizer, epochs=problem["epochs"],
                          batch_size=problem["batch_size"])
    except (ValueError, TypeError) as err:
        assert_named(err)
        assert net.epoch == epoch
        after = model_arrays(net)
        assert after.keys() == before.keys()
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value, err_msg=f"{key} changed by a refused fit")
        event(f"fit refused: {type(err).__name__}: " + re.sub(r"[0-9(), ]+", " ", str(err))[:60])
        return
    except FloatingPointError as err:
        assert_named(err)
        assert_finite_model(net)
        event("fit stopped: FloatingPointError")
        return
    event("fit returned")
    assert_finite_model(net)
    assert all(np.isfinite(v) for values in history.metrics.values() for v in values)
    assert all(v.dtype == np.dtype(problem["dtype"]) for k, v in model_arrays(net).items() if k != "optim/step")
    for call in (lambda: net.predict(X), lambda: net.evaluate(X, y)):
        try:
            result = call()
        except FloatingPointError as err:  # finite weights can still overflow on these inputs
            assert_named(err)
            event("predict/evaluate: FloatingPointError")
            continue
        values = list(result.values()) if isinstance(result, dict) else portnn.to_numpy(result)
        assert np.all(np.isfinite(values))
