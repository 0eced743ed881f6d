"""Property tests: random widths, depths, batch sizes and dtypes keep shapes and dtypes, and the whole-network
gradient matches finite differences, on numpy and array_api_strict (both devices)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import portnn
from portnn.testing import gradcheck_model

ACTIVATIONS = [portnn.Sigmoid, portnn.Tanh, portnn.ReLU]
CASES = [("numpy", "cpu"), ("array_api_strict", "CPU_DEVICE"), ("array_api_strict", "device1")]


@st.composite
def networks(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    bias = draw(st.booleans())
    acts = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=len(widths) - 2, max_size=len(widths) - 2))
    layers: list[portnn.Layer] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(portnn.Dense(a, b, bias=bias))
        if i < len(acts):
            layers.append(acts[i]())
    batch = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**16))
    return widths, layers, batch, seed


def _case(name: str, dev: str, dtype: str):
    pytest.importorskip(name)
    from tests.conftest import _case as make

    return make(name, dev, dtype)


@pytest.mark.parametrize(("backend", "device"), CASES, ids=[f"{b}-{d}" for b, d in CASES])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=networks(), dtype=st.sampled_from(["float32", "float64"]))
def test_shapes_and_dtypes_hold(backend: str, device: str, spec, dtype: str) -> None:
    widths, layers, batch, seed = spec
    case = _case(backend, device, dtype)
    rng = np.random.default_rng(seed)
    net = portnn.Sequential(*layers, seed=seed).to(case.xp, case.device, dtype)
    X, y = case.asarray(rng.standard_normal((batch, widths[0]))), case.asarray(rng.standard_normal((batch, widths[-1])))
    out = net.predict(X)
    assert tuple(out.shape) == (batch, widths[-1])
    assert out.dtype == case.dtype
    losses = net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.01), epochs=2)
    assert len(losses) == 2
    assert all(np.isfinite(losses))
    params, grads = net.parameters(), net.gradients(X, y, loss=portnn.MSE())
    assert set(grads) == set(params)
    for key, p in params.items():
        assert tuple(grads[key].shape) == tuple(p.shape), key
        assert grads[key].dtype == case.dtype, key
        assert p.dtype == case.dtype, key


@pytest.mark.parametrize(("backend", "device"), CASES, ids=[f"{b}-{d}" for b, d in CASES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=networks())
def test_network_gradient_matches_finite_differences(backend: str, device: str, spec) -> None:
    widths, layers, batch, seed = spec
    case = _case(backend, device, "float64")
    rng = np.random.default_rng(seed)
    net = portnn.Sequential(*layers, seed=seed).to(case.xp, case.device, "float64")
    # random (not zero) biases, so no ReLU pre-activation sits exactly on the kink at 0
    net.load_state_dict({k: rng.standard_normal(v.shape) for k, v in net.state_dict().items()})
    x_host = rng.standard_normal((batch, widths[0]))
    assume(min_relu_margin(net, x_host) > 1e-4)  # central differences with eps 1e-6 must not cross a ReLU kink
    X = case.asarray(x_host)
    y = case.asarray(rng.standard_normal((batch, widths[-1])))
    err = gradcheck_model(net, X, y, portnn.MSE())
    assert err < 1e-6


def min_relu_margin(net: portnn.Sequential, x: np.ndarray) -> float:
    """The smallest |input| of any ReLU of a Dense/activation stack on ``x`` (host float64); inf without ReLUs."""
    weights, a, margin = net.state_dict(), x, np.inf
    for i, layer in enumerate(net.layers):
        if isinstance(layer, portnn.Dense):
            a = a @ weights[f"{i}.weight"] + weights.get(f"{i}.bias", 0.0)
        elif isinstance(layer, portnn.ReLU):
            margin = min(margin, float(np.min(np.abs(a))))
            a = np.maximum(a, 0.0)
        else:
            smooth: dict[type[portnn.Layer], Callable[[np.ndarray], np.ndarray]] = {
                portnn.Sigmoid: lambda v: 1.0 / (1.0 + np.exp(-v)), portnn.Tanh: np.tanh}
            a = smooth[type(layer)](a)
    return margin
