"""Element-wise activation layers; each backward reuses the cached output or input (no recomputation)."""

from __future__ import annotations

from typing import Any

from .layer import Layer


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2, which cannot overflow."""

    def forward(self, x: Any, xp: Any) -> Any:
        self.y = 0.5 + 0.5 * xp.tanh(0.5 * x)
        return self.y

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return dy * (self.y * (1.0 - self.y))


class Tanh(Layer):
    """y = tanh(x)."""

    def forward(self, x: Any, xp: Any) -> Any:
        self.y = xp.tanh(x)
        return self.y

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return dy * (1.0 - self.y * self.y)


class ReLU(Layer):
    """y = max(x, 0)."""

    def forward(self, x: Any, xp: Any) -> Any:
        self.y = xp.maximum(x, 0.0)
        return self.y

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        # a 0/1 multiply, not xp.where: NumPy's where on a random mask is ~17x slower (branch misprediction)
        return dy * xp.astype(self.y > 0.0, dy.dtype)


class LeakyReLU(Layer):
    """y = x for x > 0, alpha * x otherwise (alpha a Python float, so float32 stays float32)."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        try:
            self.alpha = float(alpha)
        except (TypeError, ValueError) as err:
            raise TypeError(f"LeakyReLU: alpha must be a number, got {alpha!r}") from err
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")

    def forward(self, x: Any, xp: Any) -> Any:
        self.x = x
        return xp.maximum(x, self.alpha * x)  # valid because 0 <= alpha < 1

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return dy * (self.alpha + (1.0 - self.alpha) * xp.astype(self.x > 0.0, dy.dtype))

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Softmax(Layer):
    """y = exp(x - max x) / sum(exp(x - max x)) over the last axis; the shift keeps exp from overflowing.

    For training a classifier prefer raw logits with SoftmaxCrossEntropy (exact, cheaper); this layer turns logits
    into probabilities, e.g. for a model that predicts them."""

    def forward(self, x: Any, xp: Any) -> Any:
        e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
        self.y = e / xp.sum(e, axis=-1, keepdims=True)
        return self.y

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j), without forming the (k, k) Jacobian.
        return self.y * (dy - xp.sum(dy * self.y, axis=-1, keepdims=True))


class Identity(Layer):
    """y = x (a linear output layer made explicit)."""

    def forward(self, x: Any, xp: Any) -> Any:
        return x

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return dy
