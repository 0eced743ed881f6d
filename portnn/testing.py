"""Finite-difference gradient checks for layers and losses, on any backend (host-side bookkeeping in NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import host
from .layer import Layer
from .losses import Loss


def _numeric(f: Any, values: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of scalar ``f(values)`` with respect to every element of ``values``."""
    grad = np.zeros_like(values)
    for idx in np.ndindex(values.shape):
        plus, minus = values.copy(), values.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _error(analytic: Any, numeric: np.ndarray) -> float:
    a = host.to_numpy(analytic)
    if a.shape != numeric.shape:
        raise AssertionError(f"gradient has shape {a.shape}, expected {numeric.shape}")
    return float(np.max(np.abs(a - numeric) / np.maximum(1.0, np.abs(numeric)), initial=0.0))


def gradcheck_layer(layer: Layer, x: np.ndarray, xp: Any, device: Any, *, eps: float = 1e-6, seed: int = 0) -> float:
    """Max scaled error |analytic - numeric| / max(1, |numeric|) of dL/dx and every dL/dparam of ``layer``
    for L = sum(layer(x) * R) with a fixed random R, computed on backend ``xp``/``device`` in float64."""
    dtype = xp.float64
    params = {k: host.to_numpy(v).astype(np.float64) for k, v in layer.params.items()}

    def put(values: dict[str, np.ndarray]) -> None:
        layer.params = {k: host.from_numpy(v, xp, device=device, dtype=dtype) for k, v in values.items()}

    def value(x_host: np.ndarray) -> float:
        return host.to_float(xp.sum(layer.forward(host.from_numpy(x_host, xp, device=device, dtype=dtype), xp) * r))

    put(params)
    x = np.asarray(x, dtype=np.float64)
    out_shape = tuple(layer.forward(host.from_numpy(x, xp, device=device, dtype=dtype), xp).shape)
    r = host.from_numpy(np.random.default_rng(seed).standard_normal(out_shape), xp, device=device, dtype=dtype)
    layer.forward(host.from_numpy(x, xp, device=device, dtype=dtype), xp)
    dx = layer.backward(r, xp)
    grads = dict(layer.grads)
    errors = [_error(dx, _numeric(value, x, eps))]
    for name in params:
        def with_param(v: np.ndarray, name: str = name) -> float:
            put({**params, name: v})
            return value(x)

        errors.append(_error(grads[name], _numeric(with_param, params[name], eps)))
    put(params)
    return max(errors)


def gradcheck_loss(loss: Loss, yhat: np.ndarray, y: np.ndarray, xp: Any, device: Any, *, eps: float = 1e-6) -> float:
    """Max scaled error of dL/dyhat from ``loss.backward`` against central differences, in float64."""
    dtype = xp.float64
    y_dev = host.from_numpy(y, xp, device=device, dtype=None if np.asarray(y).dtype.kind in "iu" else dtype)

    def value(v: np.ndarray) -> float:
        return host.to_float(loss.forward(host.from_numpy(v, xp, device=device, dtype=dtype), y_dev, xp))

    yhat = np.asarray(yhat, dtype=np.float64)
    loss.forward(host.from_numpy(yhat, xp, device=device, dtype=dtype), y_dev, xp)
    return _error(loss.backward(xp), _numeric(value, yhat, eps))


def gradcheck_model(net: Any, X: Any, y: Any, loss: Loss, *, eps: float = 1e-6) -> float:
    """Max scaled error of every parameter gradient of ``net`` (placed, float64) for ``loss`` on (X, y), against
    central differences of the whole network's loss. Runs one backward pass; parameters are left as they were."""
    p = net.placement
    xp = p.xp
    params = net.parameters()
    host_params = {k: host.to_numpy(v) for k, v in params.items()}

    def value_at(key: Any, values: np.ndarray) -> float:
        net._set_parameters({key: host.from_numpy(values, xp, device=p.device, dtype=p.dtype)})
        return host.to_float(loss.forward(net._forward(X, xp), y, xp))

    loss.forward(net._forward(X, xp), y, xp)
    net._backward(loss.backward(xp), xp)
    grads = net.gradients()
    errors = []
    for key, values in host_params.items():
        errors.append(_error(grads[key], _numeric(lambda v, key=key: value_at(key, v), values, eps)))
        net._set_parameters({key: params[key]})
    return max(errors, default=0.0)
