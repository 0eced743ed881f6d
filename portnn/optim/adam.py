"""Adam (Kingma & Ba) with optional L2 weight decay, as ``torch.optim.Adam``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import array_api_compat

from ..array.placement import widest
from ..array.types import Device, Namespace, Params
from ..array.validation import FRACTION, NON_NEGATIVE, POSITIVE, Pair, Rule
from .optimizer import Optimizer, OptState, decayed, zeros_like


class Adam(Optimizer):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).

    The step counter t is a 0-d int64 array in the state, and the bias corrections are computed from it on the
    device in float64 and rounded once to the parameters' dtype, so the update is a pure function of arrays. Where
    the namespace has no float64 (JAX at its defaults), 1 - b^t is -expm1(t log b), which float32 holds to an ulp
    (1 - b^t itself would cancel: 1 - 0.999 in float32 is off by 1e-5 relative)."""

    constraints: ClassVar[dict[str, Rule]] = {"lr": POSITIVE, "betas": Pair(FRACTION, "a pair (beta1, beta2)"),
                                              "eps": POSITIVE, "weight_decay": NON_NEGATIVE}

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("m", "v"), ("step",)

    def init_state(self, params: Params, xp: Namespace, device: Device) -> OptState:
        return {"step": xp.asarray(0, dtype=widest(xp, "int64", xp.int32), device=device),
                "m": zeros_like(params, xp, device),
                "v": zeros_like(params, xp, device)}

    def _update(self, params: Params, grads: Params, state: OptState, lr: Any) -> tuple[Params, OptState]:
        if self.weight_decay:
            grads = decayed(params, grads, self.weight_decay)
        return adam_step(params, grads, state, lr, self.betas, self.eps)

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}


def adam_step(params: Params, grads: Params, state: OptState, lr: Any, betas: tuple[float, float],
              eps: float) -> tuple[Params, OptState]:
    """Adam's update of ``params`` by ``grads`` (Adam and AdamW): a pure function of arrays and Python floats, which
    constructs nothing (a compiler traces it as it is)."""
    leaves = [p for layer in params for p in layer.values()]
    if not leaves:
        return params, state
    xp = array_api_compat.array_namespace(leaves[0])  # once per step
    dtype = leaves[0].dtype
    b1, b2 = betas
    t = state["step"] + 1
    correction1, correction2 = _corrections(xp, t, (b1, b2), dtype, array_api_compat.device(leaves[0]))
    step_size = xp.astype(lr / correction1, dtype)
    root_bias = xp.astype(xp.sqrt(correction2), dtype)
    m = [{n: b1 * m_[n] + (1.0 - b1) * g[n] for n in g} for m_, g in zip(state["m"], grads, strict=True)]
    v = [{n: b2 * v_[n] + (1.0 - b2) * (g[n] * g[n]) for n in g} for v_, g in zip(state["v"], grads, strict=True)]
    new = [{n: p - step_size * (m_[n] / (xp.sqrt(v_[n]) / root_bias + eps)) for n, p in layer.items()}
           for layer, m_, v_ in zip(params, m, v, strict=True)]
    return new, {"step": t, "m": m, "v": v}


def _corrections(xp: Namespace, t: Any, betas: tuple[float, float], dtype: Any, device: Device) -> tuple[Any, Any]:
    """(1 - b1^t, 1 - b2^t) in float64 where the namespace has it (rounded later, once), else in ``dtype``."""
    wide = widest(xp, "float64", None)
    if wide is None:
        tf = xp.astype(t, dtype)
        logs = [math.log(b) if b > 0.0 else -math.inf for b in betas]  # b = 0: no correction (t >= 1)
        return -xp.expm1(tf * logs[0]), -xp.expm1(tf * logs[1])
    tf = xp.astype(t, wide)
    # xp.pow, not **: NumPy turns a 0-d result into a scalar, whose ** is the C library's pow, not the power ufunc
    # that array-api-strict (and a 0-d array) uses
    b1t, b2t = (xp.pow(xp.asarray(b, dtype=wide, device=device), tf) for b in betas)
    return 1.0 - b1t, 1.0 - b2t
