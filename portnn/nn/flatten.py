"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), the bridge from convolution/pooling to Dense layers."""

from __future__ import annotations

import math
from typing import Any

from ..array.types import Array
from .layer import Context, Grads, Layer


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...): keep the batch axis, merge the rest in C order (torch.flatten(x, 1))."""

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) < 2:
            raise ValueError(f"{where} (Flatten) expects input with a batch axis and at least one more, "
                             f"got shape {tuple(shape)}")
        return (shape[0], math.prod(shape[1:]))

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        features = math.prod(x.shape[1:])
        # -1: the batch size is None while an ONNX export traces a symbolic batch (no features: -1 is ambiguous)
        return ctx.xp.reshape(x, (-1 if features else x.shape[0], features)), tuple(x.shape)

    def backward(self, params: dict[str, Array], shape: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        return (ctx.xp.reshape(dy, shape) if ctx.need_dx else None), {}
