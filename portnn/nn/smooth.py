"""Smooth element-wise activations (GELU, SiLU, Softplus, ELU), each equal to its torch.nn.functional namesake.

Every hyper-parameter is a Python float, so float32 stays float32; every form is written so that no intermediate
overflows (no exp of a large positive number, no cube of a huge input). Each backward reuses what its forward saved.
"""

from __future__ import annotations

import math
from typing import Any

from ..array.types import Array
from ..array.validation import FINITE, POSITIVE
from .activations import scalar, sigmoid
from .layer import Context, Grads, Layer

_GELU_C = math.sqrt(2.0 / math.pi)  # sqrt(2/pi), torch's kBeta
_GELU_K = 0.044715  # torch's kKappa
_GELU_CLIP = 10.0  # tanh(sqrt(2/pi) (10 + 0.044715 * 10^3)) = tanh(43.0...) is exactly 1 in float64 and float32



class GELU(Layer):
    """y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh approximation: torch's gelu(approximate='tanh').

    The exact GELU, x Phi(x), needs erf, which the Array API standard does not have, so it is not offered. Inside
    the tanh x is clipped to +-10, where tanh is already exactly +-1, so x^3 cannot overflow; any shape."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        xc = xp.clip(x, -_GELU_CLIP, _GELU_CLIP)
        t = xp.tanh(_GELU_C * (xc + _GELU_K * (xc * xc * xc)))
        y = 0.5 * x * (1.0 + t)
        return y, (x, xc, t)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        x, xc, t = saved
        # dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)  (where clipped, 1 - t^2 is 0)
        dt = (1.0 - t * t) * (_GELU_C * (1.0 + 3.0 * _GELU_K * (xc * xc)))
        return dy * (0.5 * (1.0 + t) + 0.5 * x * dt), {}


class SiLU(Layer):
    """y = x sigmoid(x) (also called swish), as torch's silu; sigmoid as (1 + tanh(x/2)) / 2, so no overflow; any
    shape, kept."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        s = sigmoid(x, ctx.xp)
        y = x * s
        return y, (x, s)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        x, s = saved
        # dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
        return dy * (s * (1.0 + x * (1.0 - s))), {}


class Softplus(Layer):
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (linear there), as torch's softplus.

    Computed as (log1p(exp(-|beta x|)) + max(beta x, 0)) / beta, which neither overflows for large beta x nor
    loses the tiny values for very negative ones; beta > 0. Any shape, kept."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = POSITIVE(beta, "beta", "Softplus")
        self.threshold = FINITE(threshold, "threshold", "Softplus")

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        bx = self.beta * x
        linear = bx > self.threshold
        y = xp.where(linear, x, (xp.log1p(xp.exp(-xp.abs(bx))) + xp.maximum(bx, scalar(0.0, bx, xp))) / self.beta)
        return y, (bx, linear)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        bx, linear = saved
        # dy/dx = sigmoid(beta x), and 1 where the layer is linear
        return ctx.xp.where(linear, dy, dy * sigmoid(bx, ctx.xp)), {}

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.threshold}


class ELU(Layer):
    """y = x for x > 0, alpha (exp(x) - 1) otherwise (by expm1, exact near 0), as torch's elu; any shape."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = FINITE(alpha, "alpha", "ELU")

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        positive = x > 0.0
        y = xp.where(positive, x, self.alpha * xp.expm1(xp.minimum(x, scalar(0.0, x, xp))))  # no exp of large x
        return y, (positive, y)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        positive, y = saved
        # dy/dx = 1 for x > 0, alpha exp(x) = y + alpha otherwise (the saved output, no second exp)
        return ctx.xp.where(positive, dy, dy * (y + self.alpha)), {}

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}
