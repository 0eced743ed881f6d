"""Finite-difference gradient checks of the losses and whole models, and that the checks catch a wrong backward
(every layer's own check: test_finite_differences.py)."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.testing import gradcheck_layer, gradcheck_loss, gradcheck_model

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3))

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


class _BadTanh(portnn.Tanh):  # a leading underscore keeps it out of the layer registry
    def backward(self, params, y, dy, ctx):
        return dy * (1.0 - y), {}  # missing the square


class _BadDense(portnn.Dense):
    def backward(self, params, x, dy, ctx):
        dx, grads = super().backward(params, x, dy, ctx)
        return dx, {**grads, "weight": 1.01 * grads["weight"]}  # 1% off in the weight only


class _BadMSE(portnn.MSE):
    def backward(self, diff, ctx):
        return diff / float(diff.shape[0] * diff.shape[1])  # d mean(diff^2) / d out without the 2


def test_gradcheck_catches_a_wrong_gradient(numpy64) -> None:
    """The checker itself must fail on a layer whose backward is wrong."""
    assert gradcheck_layer(portnn.Tanh(), X, numpy64.xp, numpy64.device) < 1e-7  # the same check passes the right one
    err = gradcheck_layer(_BadTanh(), X, numpy64.xp, numpy64.device)
    assert err > 1e-3


def test_gradcheck_catches_a_wrong_parameter_gradient(numpy64) -> None:
    params = portnn.Dense(3, 4).init(np.random.default_rng(0))
    assert gradcheck_layer(portnn.Dense(3, 4), X, numpy64.xp, numpy64.device, params=params) < 1e-7
    assert gradcheck_layer(_BadDense(3, 4), X, numpy64.xp, numpy64.device, params=params) > 1e-3


def test_gradcheck_catches_a_wrong_loss_gradient(numpy64) -> None:
    yhat, y = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    assert gradcheck_loss(portnn.MSE(), yhat, y, numpy64.xp, numpy64.device) < 1e-7
    assert gradcheck_loss(_BadMSE(), yhat, y, numpy64.xp, numpy64.device) > 1e-3


def test_gradcheck_model_catches_a_wrong_layer_inside(numpy64) -> None:
    """A wrong backward in a hidden layer shows in the first layer's gradients; the model is left unchanged."""
    y = RNG.standard_normal((5, 2))

    def model(hidden: portnn.Layer) -> portnn.Sequential:
        return portnn.Sequential(portnn.Dense(3, 4), hidden, portnn.Dense(4, 2), seed=1).to(numpy64.xp, dtype="float64")

    good, bad = model(portnn.Tanh()), model(_BadTanh())
    before = bad.state_dict()
    assert gradcheck_model(good, X, y, portnn.MSE()) < 1e-7
    assert gradcheck_model(bad, X, y, portnn.MSE()) > 1e-3
    for k, v in bad.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_softmax_ce_is_stable_for_huge_logits(case64) -> None:
    loss = portnn.SoftmaxCrossEntropy()
    ctx = portnn.Context(case64.xp, case64.device, case64.dtype, training=True)
    logits = case64.asarray([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    labels = case64.asarray([0, 1], dtype=case64.xp.int64)
    value, saved = loss.forward(logits, labels, ctx)
    assert portnn.host.to_float(value) == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(portnn.to_numpy(loss.backward(saved, ctx))))
