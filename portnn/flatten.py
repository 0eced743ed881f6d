"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), the bridge from convolution/pooling to Dense layers."""

from __future__ import annotations

import math
from typing import Any

from .checkpoint import register_layer
from .layer import Layer


@register_layer
class Flatten(Layer):
    """Keep the batch axis, merge the rest in C order (as torch.flatten(x, 1))."""

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) < 2:
            raise ValueError(f"{where} (Flatten) expects input with a batch axis and at least one more, "
                             f"got shape {tuple(shape)}")
        return (shape[0], math.prod(shape[1:]))

    def forward(self, x: Any, xp: Any) -> Any:
        self.in_shape = tuple(x.shape)
        return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        return xp.reshape(dy, self.in_shape) if need_dx else None
