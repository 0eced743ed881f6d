"""RMSprop (Hinton), as ``torch.optim.RMSprop``: optional L2 weight decay, momentum and the centered variant."""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat

from ..array.types import Device, Namespace, Params
from ..array.validation import BOOLEAN, FRACTION, NON_NEGATIVE, POSITIVE, Rule
from .optimizer import Optimizer, OptState, decayed, zeros_like
from .sgd import _as_dtype


class RMSprop(Optimizer):
    """g <- g + wd p;  s <- alpha s + (1-alpha) g^2;  centered: a <- alpha a + (1-alpha) g, s' = s - a^2;
    d = sqrt(s') + eps;  with momentum: b <- momentum b + g / d, p <- p - lr b;  else p <- p - lr g / d."""

    constraints: ClassVar[dict[str, Rule]] = {
        "lr": POSITIVE, "alpha": FRACTION, "eps": POSITIVE, "weight_decay": NON_NEGATIVE, "momentum": FRACTION,
        "centered": BOOLEAN,
    }

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> None:
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("square_avg", *(("momentum_buffer",) if self.momentum else ()),
                *(("grad_avg",) if self.centered else ())), ()

    def init_state(self, params: Params, xp: Namespace, device: Device) -> OptState:
        return {slot: zeros_like(params, xp, device) for slot in self.slot_names()[0]}

    def _update(self, params: Params, grads: Params, state: OptState, lr: Any) -> tuple[Params, OptState]:
        leaves = [p for layer in params for p in layer.values()]
        if not leaves:
            return params, state
        xp = array_api_compat.array_namespace(leaves[0])  # once per step
        if not isinstance(lr, float):  # a schedule's 0-d float64 rate, rounded once to the parameters' dtype
            lr = _as_dtype(lr, params)
        a, eps, mu = self.alpha, self.eps, self.momentum
        grads = decayed(params, grads, self.weight_decay)
        square = [{n: a * s[n] + (1.0 - a) * (g[n] * g[n]) for n in g} for s, g in zip(state["square_avg"], grads,
                                                                                         strict=True)]
        new: OptState = {"square_avg": square}
        if self.centered:
            new["grad_avg"] = [{n: a * m[n] + (1.0 - a) * g[n] for n in g} for m, g in zip(state["grad_avg"], grads,
                                                                                             strict=True)]
            root = [{n: xp.sqrt(s[n] - m[n] * m[n]) + eps for n in s} for s, m in zip(square, new["grad_avg"],
                                                                                      strict=True)]
        else:
            root = [{n: xp.sqrt(s[n]) + eps for n in s} for s in square]
        step = [{n: g[n] / d[n] for n in g} for g, d in zip(grads, root, strict=True)]
        if mu:
            step = [{n: mu * b[n] + s[n] for n in s} for b, s in zip(state["momentum_buffer"], step, strict=True)]
            new["momentum_buffer"] = step
        new_params = [layer and {n: p - lr * s[n] for n, p in layer.items()}
                      for layer, s in zip(params, step, strict=True)]
        return new_params, new

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}
