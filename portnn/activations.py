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
        self.positive = x > 0.0
        return xp.where(self.positive, x, 0.0)

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return xp.where(self.positive, dy, 0.0)
