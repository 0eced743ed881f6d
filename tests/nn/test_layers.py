"""Losses and initialisers: loss gradient checks on every backend (float64), stability, values against independent
formulas, and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.nn import init
from portnn.testing import gradcheck_loss

RNG = np.random.default_rng(11)


def _ctx(case) -> portnn.Context:
    return portnn.Context(case.xp, case.device, case.dtype, training=True)


LOSSES = {
    "bce": (portnn.BinaryCrossEntropy, RNG.random((5, 2))),  # soft targets in [0, 1]
    "bce-hard": (portnn.BinaryCrossEntropy, (RNG.random((5, 1)) > 0.5).astype(np.float64)),
    "softmax-ce-labels": (portnn.SoftmaxCrossEntropy, np.array([0, 2, 1, 2, 0])),
    "softmax-ce-onehot": (portnn.SoftmaxCrossEntropy, np.eye(3)[[1, 0, 2, 2, 1]]),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients(case64, name: str) -> None:
    make, y = LOSSES[name]
    width = y.shape[1] if y.ndim == 2 else 3
    yhat = RNG.standard_normal((5, width)) * 3.0
    err = gradcheck_loss(make(), yhat, y, case64.xp, case64.device)
    assert err < 1e-7, f"{name}: scaled gradient error {err:.2e}"


def test_bce_equals_the_textbook_formula(numpy64) -> None:
    z, y = RNG.standard_normal((6, 2)), RNG.random((6, 2))
    p = 1.0 / (1.0 + np.exp(-z))
    expected = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    loss = portnn.BinaryCrossEntropy()
    value, _ = loss.forward(numpy64.asarray(z), numpy64.asarray(y), _ctx(numpy64))
    assert portnn.host.to_float(value) == pytest.approx(expected, rel=1e-13)


def test_bce_and_softmax_are_stable_for_huge_logits(case) -> None:
    ctx = _ctx(case)
    loss = portnn.BinaryCrossEntropy()
    z = case.asarray([[1000.0], [-1000.0], [1e4], [-1e4]])
    value, saved = loss.forward(z, case.asarray([[1.0], [0.0], [1.0], [0.0]]), ctx)
    assert portnn.host.to_float(value) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(portnn.to_numpy(loss.backward(saved, ctx))))
    wrong, _ = loss.forward(z, case.asarray([[0.0], [1.0], [0.0], [1.0]]), ctx)
    assert portnn.host.to_float(wrong) == pytest.approx(
        (1000 + 1000 + 1e4 + 1e4) / 4, rel=1e-6)  # log(1 + e^z) ~ z, no overflow to inf

    y, _ = portnn.Softmax().forward({}, case.asarray([[1000.0, 0.0, -1000.0], [3.0, 3.0, 3.0]]), ctx)
    assert y.dtype == case.dtype
    np.testing.assert_allclose(portnn.to_numpy(y), [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)


def test_leaky_relu_values_and_alpha_checks(numpy64) -> None:
    y, _ = portnn.LeakyReLU(0.2).forward({}, numpy64.asarray([[-2.0, 0.0, 3.0]]), _ctx(numpy64))
    np.testing.assert_array_equal(portnn.to_numpy(y), [[-0.4, 0.0, 3.0]])
    with pytest.raises(ValueError, match=r"LeakyReLU: alpha must be a finite number in \[0, 1\), got 1.5"):
        portnn.LeakyReLU(1.5)
    with pytest.raises(TypeError, match="LeakyReLU: alpha must be a number"):
        portnn.LeakyReLU("a")  # type: ignore[arg-type]  # the wrong type is the point


@pytest.mark.parametrize(("name", "std"), [("glorot_normal", np.sqrt(2 / (200 + 300))), ("he_normal", np.sqrt(2 / 200)),
                                           ("glorot_uniform", np.sqrt(2 / (200 + 300))),
                                           ("he_uniform", np.sqrt(2 / 200))])
def test_initialiser_scales(name: str, std: float) -> None:
    w = init.initializer(name)(np.random.default_rng(0), (200, 300))
    # 60000 draws: the sample std is within ~0.3% of the target (3 sigma); 2% leaves room, a wrong formula misses.
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 0.02 * std  # the mean's standard error is 0.004 std


def test_initialisers_come_from_the_seed_only() -> None:
    a = portnn.Sequential(portnn.Dense(4, 3, init="he_normal"), seed=5).state_dict()["0.weight"]
    b = portnn.Sequential(portnn.Dense(4, 3, init="he_normal"), seed=5).state_dict()["0.weight"]
    c = portnn.Sequential(portnn.Dense(4, 3, init="he_normal"), seed=6).state_dict()["0.weight"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_conv_weight_fans_follow_pytorch() -> None:
    # (out_channels, in_channels, kh, kw): fan_in = in * kh * kw, fan_out = out * kh * kw
    assert init.fans((8, 3, 3, 3)) == (27, 72)
    assert init.fans((64, 10)) == (64, 10)


def test_unknown_initialiser_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Dense: init must be one of .*'he_normal'.*, got 'lecun'"):
        portnn.Dense(2, 2, init="lecun")
