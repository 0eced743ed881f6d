"""Optimizers as pure updates: new parameters and state are built, never written in place (JAX arrays are immutable).

Parameters, gradients and state are keyed by (layer index, name), never by ``id()``.
"""

from __future__ import annotations

import math
from typing import Any

Key = tuple[int, str]


def _positive(owner: str, name: str, value: float) -> float:
    """``value`` as a Python float (never a NumPy scalar, which would promote float32); > 0 and finite."""
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from err
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return value


class Optimizer:
    """Base class. ``state`` maps a key to a dict of arrays; ``update`` is pure, the model commits its result."""

    def __init__(self) -> None:
        self.state: dict[Key, dict[str, Any]] = {}

    def update(
        self, params: dict[Key, Any], grads: dict[Key, Any], state: dict[Key, dict[str, Any]]
    ) -> tuple[dict[Key, Any], dict[Key, dict[str, Any]]]:
        """Return (new params, new state) for one step; inputs are left untouched."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class SGD(Optimizer):
    """Plain gradient descent: p <- p - lr * g."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = _positive("SGD", "lr", lr)

    def update(self, params, grads, state):  # noqa: ANN001, ANN201 - types as in Optimizer.update
        lr = self.lr
        return {k: p - lr * grads[k] for k, p in params.items()}, state

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr}
