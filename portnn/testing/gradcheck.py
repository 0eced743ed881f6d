"""Finite-difference gradient checks on any backend: one routine (``gradcheck``) behind the checks of a layer, a
loss and a whole model. The bookkeeping is host NumPy; every forward pass runs on the backend being checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..array import host, tree
from ..array.types import Array, Device, Namespace
from ..nn.layer import Context, Layer
from ..nn.losses import Loss
from ..train import inputs


def gradcheck(value: Callable[[dict[str, np.ndarray]], float], inputs: dict[str, np.ndarray],
              analytic: dict[str, Array], eps: float = 1e-6) -> float:
    """Max scaled error |analytic - numeric| / max(1, |numeric|) over every named input, where numeric is the
    central difference of the scalar ``value(inputs)`` with respect to each element of each input."""
    worst = 0.0
    for name, values in inputs.items():
        numeric = np.zeros_like(values)
        for idx in np.ndindex(values.shape):
            plus, minus = values.copy(), values.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric[idx] = (value({**inputs, name: plus}) - value({**inputs, name: minus})) / (2 * eps)
        got = host.to_numpy(analytic[name])
        if got.shape != numeric.shape:
            raise AssertionError(f"gradient of {name!r} has shape {got.shape}, expected {numeric.shape}")
        error = np.max(np.abs(got - numeric) / np.maximum(1.0, np.abs(numeric)), initial=0.0)
        worst = max(worst, float(error))
    return worst


def gradcheck_layer(layer: Layer, x: np.ndarray, xp: Namespace, device: Device, *,
                    params: dict[str, np.ndarray] | None = None, eps: float = 1e-6, seed: int = 0) -> float:
    """Max scaled error of dL/dx and every dL/dparam of ``layer`` for L = sum(layer(x) * R) with a fixed random R,
    in float64 on ``xp``/``device``; ``params`` default to ``layer.init`` drawn from ``seed``. A layer that takes
    integer ids (``integer_input``, as Embedding) is checked on its parameters only, its ids kept as given."""
    ctx = Context(xp, device, xp.float64, training=True, key=(seed, 0, 0, 0))
    rng = np.random.default_rng(seed)
    start = {k: np.asarray(v, dtype=np.float64) for k, v in (params or layer.init(rng)).items()}

    def put(values: dict[str, np.ndarray]) -> dict[str, Array]:
        return {k: host.from_numpy(v, xp, device=device, dtype=xp.float64) for k, v in values.items()}

    ids = layer.integer_input
    x_fixed = host.from_numpy(np.asarray(x), xp, device=device, dtype=None) if ids else None
    inputs = start if ids else {"x": np.asarray(x, dtype=np.float64), **start}

    def run(values: dict[str, np.ndarray]) -> tuple[Array, Any]:
        arrays = put(values)
        return layer.forward({k: arrays[k] for k in start}, x_fixed if ids else arrays["x"], ctx)

    y, saved = run(inputs)
    r = host.from_numpy(rng.standard_normal(tuple(y.shape)), xp, device=device, dtype=xp.float64)
    dx, grads = layer.backward(put(start), saved, r, ctx)
    if ids and dx is not None:
        raise AssertionError(f"{layer!r} takes integer ids, which have no gradient, but its backward gave dx")
    return gradcheck(lambda values: host.to_float(xp.sum(run(values)[0] * r)), inputs,
                     grads if ids else {"x": dx, **grads}, eps)


def gradcheck_loss(loss: Loss, yhat: np.ndarray, y: np.ndarray, xp: Namespace, device: Device, *,
                   eps: float = 1e-6) -> float:
    """Max scaled error of dL/dyhat from ``loss.backward`` against central differences, in float64."""
    ctx = Context(xp, device, xp.float64, training=True)
    y_dev = host.from_numpy(y, xp, device=device, dtype=None if np.asarray(y).dtype.kind in "iu" else xp.float64)

    def value(values: dict[str, np.ndarray]) -> float:
        out = host.from_numpy(values["yhat"], xp, device=device, dtype=xp.float64)
        return host.to_float(loss.forward(out, y_dev, ctx)[0])

    yhat = np.asarray(yhat, dtype=np.float64)
    _, saved = loss.forward(host.from_numpy(yhat, xp, device=device, dtype=xp.float64), y_dev, ctx)
    return gradcheck(value, {"yhat": yhat}, {"yhat": loss.backward(saved, ctx)}, eps)


def gradcheck_model(net: Any, X: Any, y: Any, loss: Loss, *, eps: float = 1e-6) -> float:
    """Max scaled error of every parameter gradient of ``net`` (placed, float64) for ``loss`` on (X, y) as one
    batch, against central differences of the whole network's loss; the model is unchanged."""
    p, x_all, y_all, _ = inputs.training_data(net, X, y, loss, "gradcheck_model")
    step, key = net.step(loss), (net.epoch, 0)
    _, grads, _, _ = step.gradients(net.params, net.state, x_all, y_all, key)
    analytic = tree.flatten(grads)
    start = {k: host.to_numpy(a) for k, a in tree.flatten(net.params).items()}

    def value(values: dict[str, np.ndarray]) -> float:
        placed = {k: host.from_numpy(v, p.xp, device=p.device, dtype=p.dtype) for k, v in values.items()}
        out, _ = step.forward(tree.unflatten(placed, net.params), net.state, x_all, key)
        return host.to_float(loss.forward(out, y_all, step.training)[0])

    return gradcheck(value, start, analytic, eps)
