"""Finite-difference gradient checks (float64) of every core layer, activation and loss, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.testing import gradcheck_layer, gradcheck_loss

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3))
X_AWAY_FROM_KINK = np.sign(X) * (0.1 + np.abs(X))  # ReLU is not differentiable at 0

LAYERS = {
    "dense": lambda: portnn.Dense(3, 4),
    "dense-no-bias": lambda: portnn.Dense(3, 4, bias=False),
    "sigmoid": portnn.Sigmoid,
    "tanh": portnn.Tanh,
    "relu": portnn.ReLU,
}


def _with_host_params(layer: portnn.Layer) -> portnn.Layer:
    layer.params = layer.init_params(np.random.default_rng(0))
    return layer


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients(case64, name: str) -> None:
    layer = _with_host_params(LAYERS[name]())
    err = gradcheck_layer(layer, X_AWAY_FROM_KINK, case64.xp, case64.device)
    assert err < 1e-7, f"{name}: scaled gradient error {err:.2e}"


LOSSES = {
    "sse": (portnn.SSE, RNG.standard_normal((5, 2))),
    "mse": (portnn.MSE, RNG.standard_normal((5, 2))),
    "softmax-ce-labels": (portnn.SoftmaxCrossEntropy, np.array([0, 2, 1, 2, 0])),
    "softmax-ce-onehot": (portnn.SoftmaxCrossEntropy, np.eye(3)[[1, 0, 2, 2, 1]]),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients(case64, name: str) -> None:
    make, y = LOSSES[name]
    width = 2 if y.ndim == 2 and y.shape[1] == 2 else 3
    yhat = RNG.standard_normal((5, width)) * 3.0
    err = gradcheck_loss(make(), yhat, y, case64.xp, case64.device)
    assert err < 1e-7, f"{name}: scaled gradient error {err:.2e}"


def test_gradcheck_catches_a_wrong_gradient(numpy64) -> None:
    """The checker itself must fail on a layer whose backward is wrong."""

    class BadTanh(portnn.Tanh):
        def backward(self, dy, xp, need_dx=True):
            return dy * (1.0 - self.y)  # missing the square

    err = gradcheck_layer(BadTanh(), X, numpy64.xp, numpy64.device)
    assert err > 1e-3


def test_softmax_ce_is_stable_for_huge_logits(case64) -> None:
    loss = portnn.SoftmaxCrossEntropy()
    logits = case64.asarray([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    labels = case64.asarray([0, 1], dtype=case64.xp.int64)
    value = portnn.host.to_float(loss.forward(logits, labels, case64.xp))
    assert value == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(portnn.to_numpy(loss.backward(case64.xp))))
