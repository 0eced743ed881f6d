"""Dropout: the host-drawn mask is identical on every backend, keyed by (model seed, layer, epoch, batch), and the
layer is the identity outside training."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn import backends, to_numpy
from portnn.nn import threefry
from portnn.testing import gradcheck_layer

KEY = (1, 2, 3, 4)


def test_mask_is_identical_on_every_backend(case) -> None:
    layer = portnn.Dropout(0.3)
    ctx = portnn.Context(case.xp, case.device, case.dtype, training=True, key=KEY)
    x = np.ones((5, 3, 4, 4))
    y, mask = layer.forward({}, case.asarray(x), ctx)
    expected = (threefry.keep(threefry.key(*KEY), x.shape, 0.3, np, "cpu") / 0.7).astype(case.dtype_name)
    assert to_numpy(y).dtype == case.dtype_name
    np.testing.assert_array_equal(to_numpy(y), expected)  # bit-identical: the same counter-based bits everywhere
    dx, grads = layer.backward({}, mask, case.asarray(np.full(x.shape, 2.0)), ctx)
    np.testing.assert_array_equal(to_numpy(dx), (2.0 * expected).astype(case.dtype_name))
    assert grads == {}
    same, _ = layer.forward({}, case.asarray(x), portnn.Context(case.xp, case.device, case.dtype, training=False))
    np.testing.assert_array_equal(to_numpy(same), x.astype(case.dtype_name))  # identity in inference


def test_dropout_gradcheck(case64) -> None:
    layer = portnn.Dropout(0.5)  # gradcheck_layer runs it in training with key (seed, 0, 0, 0): a fixed mask
    err = gradcheck_layer(layer, np.random.default_rng(0).standard_normal((4, 6)), case64.xp, case64.device)
    assert err < 1e-7


def _net(p: float) -> portnn.Sequential:
    return portnn.Sequential(portnn.Dense(4, 16), portnn.ReLU(), portnn.Dropout(p), portnn.Dense(16, 3), seed=3)


def test_dropout_is_identity_in_predict_and_evaluate(numpy64) -> None:
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    net = _net(0.5)
    net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=2, batch_size=8)
    plain = portnn.Sequential(portnn.Dense(4, 16), portnn.ReLU(), portnn.Dense(16, 3))
    state = net.state_dict()
    plain.load_state_dict({"0.weight": state["0.weight"], "0.bias": state["0.bias"],
                           "2.weight": state["3.weight"], "2.bias": state["3.bias"]})
    np.testing.assert_array_equal(to_numpy(net.predict(X)), to_numpy(plain.predict(X)))
    assert net.evaluate(X, y)["loss"] == pytest.approx(plain.evaluate(X, y, loss=portnn.SoftmaxCrossEntropy())["loss"],
                                                       rel=0, abs=0)


def test_dropout_changes_training_and_is_reproducible(numpy64) -> None:
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)

    def train(p: float) -> dict[str, np.ndarray]:
        net = _net(p)
        net.fit(X, y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=2, batch_size=8)
        return net.state_dict()

    a, b, none = train(0.5), train(0.5), train(0.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["3.weight"], none["3.weight"])


def test_dropout_training_matches_numpy_on_every_backend(case64) -> None:
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)

    def train(xp, device, asarray) -> dict[str, np.ndarray]:
        net = _net(0.4).to(xp, device, "float64")
        net.fit(asarray(X), asarray(y, dtype=None), loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1),
                epochs=2, batch_size=8)
        return net.state_dict()

    got = train(case64.xp, case64.device, case64.asarray)
    ref = train(*backends.load("numpy"), lambda a, dtype="model": np.asarray(a, dtype=dtype and np.float64))
    for k, v in ref.items():
        assert np.max(np.abs(got[k] - v) / np.maximum(1.0, np.abs(v))) <= case64.tol(), k


def test_only_keyed_layers_are_given_the_training_key(numpy64) -> None:
    """Sequential hands (model seed, layer index, epoch, batch) to layers whose class says keyed = True, while
    training only (None in predict); other layers never get one."""
    seen: dict[bool, list[tuple | None]] = {True: [], False: []}

    class Probe(portnn.Identity):
        def forward(self, params, x, ctx):
            seen[self.keyed].append(ctx.key if ctx.training else None)
            return x, None

    class KeyedProbe(Probe):
        keyed = True

    net = portnn.Sequential(portnn.Dense(3, 2), KeyedProbe(), Probe(), portnn.Tanh(), seed=7)
    X, y = np.ones((6, 3)), np.zeros((6, 2))
    net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.1), epochs=2, batch_size=4, shuffle=False)
    assert seen[True] == [(7, 1, 0, 0), (7, 1, 0, 1), (7, 1, 1, 0), (7, 1, 1, 1)]
    assert seen[False] == [None] * 4
    net.predict(X)
    assert seen[True][-1] is None
