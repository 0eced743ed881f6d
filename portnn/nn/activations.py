"""Element-wise activation layers; each backward reuses the saved output or input (no recomputation)."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ..array.types import Array
from ..array.validation import FRACTION
from .layer import Context, Grads, Layer


def scalar(value: float, x: Array, xp: Any) -> Array:
    """``value`` as a 0-d array of ``x``'s dtype on its device, for ``maximum(x, scalar(0.0, x, xp))``: with a Python
    float there, array-api-compat's torch ``maximum``/``minimum`` ask ``torch.result_type``, which breaks
    torch.compile's graph (its tracer cannot return a dtype), so the rest of the step recompiled for every shape."""
    return xp.full((), value, dtype=x.dtype, device=array_api_compat.device(x))


def sigmoid(x: Array, xp: Any) -> Array:
    """1 / (1 + exp(-x)) as (1 + tanh(x/2)) / 2, which cannot overflow: the one sigmoid (Sigmoid, SiLU, GRU, LSTM)."""
    return 0.5 + 0.5 * xp.tanh(0.5 * x)


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)) (``sigmoid``); any shape, kept."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        y = sigmoid(x, ctx.xp)
        return y, y

    def backward(self, params: dict[str, Array], y: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        return (dy * (y * (1.0 - y)) if ctx.need_dx else None), {}


class Tanh(Layer):
    """y = tanh(x) elementwise; any shape, kept."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        y = ctx.xp.tanh(x)
        return y, y

    def backward(self, params: dict[str, Array], y: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        return (dy * (1.0 - y * y) if ctx.need_dx else None), {}


class ReLU(Layer):
    """y = max(x, 0) elementwise; any shape, kept."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        y = ctx.xp.maximum(x, scalar(0.0, x, ctx.xp))
        return y, y

    def backward(self, params: dict[str, Array], y: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        # a 0/1 multiply, not xp.where: NumPy's where on a random mask is much slower (branch misprediction)
        return dy * ctx.xp.astype(y > 0.0, dy.dtype), {}


class LeakyReLU(Layer):
    """y = x for x > 0, alpha * x otherwise (alpha a Python float, so float32 stays float32); any shape, kept."""

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = FRACTION(alpha, "alpha", "LeakyReLU")

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        return ctx.xp.maximum(x, self.alpha * x), x  # max(x, alpha x) is right because 0 <= alpha < 1

    def backward(self, params: dict[str, Array], x: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        return dy * (self.alpha + (1.0 - self.alpha) * ctx.xp.astype(x > 0.0, dy.dtype)), {}

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Softmax(Layer):
    """y = exp(x - max x) / sum(exp(x - max x)) over the last axis (any shape, kept); the shift keeps exp from
    overflowing.

    For training a classifier prefer raw logits with SoftmaxCrossEntropy (exact, cheaper); this layer turns logits
    into probabilities, e.g. for a model that predicts them."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        xp = ctx.xp
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        y = e / xp.sum(e, axis=-1, keepdims=True)
        return y, y

    def backward(self, params: dict[str, Array], y: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j), without forming the (k, k) Jacobian.
        return y * (dy - ctx.xp.sum(dy * y, axis=-1, keepdims=True)), {}


class Identity(Layer):
    """y = x (a linear output layer made explicit); any shape, kept."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, None]:
        return x, None

    def backward(self, params: dict[str, Array], saved: None, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        return (dy if ctx.need_dx else None), {}
