"""Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat

from ..array.types import Device, Namespace, Params
from ..array.validation import BOOLEAN, FRACTION, NON_NEGATIVE, POSITIVE, Rule
from .optimizer import Optimizer, OptState, decayed, zeros_like


class SGD(Optimizer):
    """g <- g + wd p;  v <- momentum v + g;  p <- p - lr (g + momentum v if nesterov else v)  (v = g without
    momentum)."""

    constraints: ClassVar[dict[str, Rule]] = {"lr": POSITIVE, "momentum": FRACTION, "weight_decay": NON_NEGATIVE,
                                              "nesterov": BOOLEAN}

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov

    def _relations(self, changed: str) -> None:
        if getattr(self, "nesterov", False) and getattr(self, "momentum", 0.0) == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (("velocity",) if self.momentum else ()), ()

    def init_state(self, params: Params, xp: Namespace, device: Device) -> OptState:
        return {"velocity": zeros_like(params, xp, device)} if self.momentum else {}

    def _update(self, params: Params, grads: Params, state: OptState, lr: Any) -> tuple[Params, OptState]:
        mu = self.momentum
        if not isinstance(lr, float):  # a schedule's 0-d float64 rate, rounded once to the parameters' dtype
            lr = _as_dtype(lr, params)
        if self.weight_decay:
            grads = decayed(params, grads, self.weight_decay)
        if mu == 0.0:  # parameter-free layers ({}) pass through as they are
            return [{n: p - lr * g[n] for n, p in layer.items()} if layer else layer
                    for layer, g in zip(params, grads, strict=True)], state
        velocity = [{n: mu * v[n] + g[n] for n in g} for v, g in zip(state["velocity"], grads, strict=True)]
        step = [{n: g[n] + mu * v[n] for n in g} for v, g in zip(velocity, grads, strict=True)] if self.nesterov \
            else velocity
        new = [{n: p - lr * s[n] for n, p in layer.items()} for layer, s in zip(params, step, strict=True)]
        return new, {"velocity": velocity}

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


def _as_dtype(lr: Any, params: Params) -> Any:
    """A 0-d rate in the parameters' dtype (a float64 rate would promote float32 parameters)."""
    first = next((p for layer in params for p in layer.values()), None)
    if first is None:
        return lr
    xp = array_api_compat.array_namespace(first)
    return xp.astype(lr, first.dtype)
