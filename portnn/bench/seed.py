"""The seed net benchmark: the 3-4-1 sigmoid net on XOR (float64, SSE, full-batch gradient descent, lr 1), timed
per iteration in portnn, in the seed article's hand-written NumPy (with and without reading the loss each step),
and in torch with autograd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..array import host
from ..data import datasets, recipes
from .runtime import Runtime

LR = 1.0


def seed_data() -> tuple[np.ndarray, np.ndarray]:
    """XOR as float64 host arrays: X (4, 3), y (4, 1)."""
    X, y = datasets.xor()
    return X.astype(np.float64), y.astype(np.float64)


def seed_weights(seed: int = 1) -> list[np.ndarray]:
    """Initial [W0 (3, 4), W1 (4, 1)] of the seed recipe's net, as float64 host arrays."""
    net = recipes.get("seed").model(seed)
    return [np.asarray(layer["weight"], dtype=np.float64).copy() for layer in net.params if layer]


def portnn_run(rt: Runtime, iterations: int) -> Callable[[], float]:
    """``iterations`` steps of the seed recipe through ``Sequential.fit`` (one fit call)."""
    recipe = recipes.get("seed")
    net = recipe.model(1)
    net.to(rt.xp, rt.device, "float64")
    X_host, y_host = seed_data()
    X, y = rt.asarray(X_host), rt.asarray(y_host)
    loss, opt = recipe.loss(), recipe.optimizer(LR)

    def run() -> float:
        return net.fit(X, y, loss=loss, optimizer=opt, epochs=iterations)[-1]

    return run


def flat_run(rt: Runtime, iterations: int) -> Callable[[], float]:
    """portnn's own arithmetic for the seed net written as one flat loop: the same array-API calls in the same
    order (tanh-form sigmoid, SSE through ``xp.sum``, the loss read on the host, functional updates), with no
    layers, Trainer or history around them. It ends with bit-identical weights, so portnn / this row is the cost
    of portnn's structure alone, and this row / hand-written NumPy the cost of its numerics."""
    xp = rt.xp
    X_host, y_host = seed_data()
    X, y = rt.asarray(X_host), rt.asarray(y_host)
    weights = [rt.asarray(w) for w in seed_weights()]

    def run() -> float:
        W0, W1 = weights
        value = 0.0
        for _ in range(iterations):
            h = 0.5 + 0.5 * xp.tanh(0.5 * (X @ W0))
            out = 0.5 + 0.5 * xp.tanh(0.5 * (h @ W1))
            diff = out - y
            value = host.to_float(xp.sum(diff * diff))
            dz = (2.0 * diff) * (out * (1.0 - out))
            g1 = h.T @ dz
            dh = (dz @ W1.T) * (h * (1.0 - h))
            g0 = X.T @ dh
            W0, W1 = W0 - LR * g0, W1 - LR * g1
        weights[:] = [W0, W1]
        return value

    return run


def hand_run(np_like: Any, iterations: int, read_loss: bool) -> Callable[[], float]:
    """The article's loop (sigmoid, backprop by hand, in-place updates) on the same loss (sum of squared errors)
    and step; ``read_loss`` also moves the loss to the host each step, as ``fit`` does."""
    X_host, y_host = seed_data()
    X, y = np_like.asarray(X_host), np_like.asarray(y_host)
    weights = [np_like.asarray(w) for w in seed_weights()]

    def run() -> float:
        W0, W1 = weights  # updated in place below
        value = 0.0
        for _ in range(iterations):
            l1 = 1.0 / (1.0 + np_like.exp(-(X @ W0)))
            l2 = 1.0 / (1.0 + np_like.exp(-(l1 @ W1)))
            diff = l2 - y
            if read_loss:
                value = float((diff * diff).sum())
            d2 = 2.0 * diff * (l2 * (1.0 - l2))
            d1 = (d2 @ W1.T) * (l1 * (1.0 - l1))
            W1 -= LR * (l1.T @ d2)
            W0 -= LR * (X.T @ d1)
        return value

    return run


def torch_run(torch_device: str, iterations: int) -> Callable[[], float]:
    """The same net in torch: leaf tensors with requires_grad, autograd backward, update under no_grad,
    ``loss.item()`` every step."""
    import torch

    dev = torch.device(torch_device)
    X_host, y_host = seed_data()
    X, y = torch.from_numpy(X_host).to(dev), torch.from_numpy(y_host).to(dev)
    ws = [torch.from_numpy(w).to(dev).requires_grad_(True) for w in seed_weights()]

    def run() -> float:
        value = 0.0
        for _ in range(iterations):
            out = torch.sigmoid(torch.sigmoid(X @ ws[0]) @ ws[1])
            loss = ((out - y) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                for w in ws:
                    assert w.grad is not None
                    w -= LR * w.grad
                    w.grad = None
            value = loss.item()
        return value

    return run
