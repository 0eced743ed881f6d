"""Reductions of batch-first sequences (N, T, F) over time to one vector per sequence (N, F), the bridge from a
sequence layer to a Dense head: the last step (``LastStep``) or the mean over every step (``GlobalAvgPoolTime``,
the channels-last counterpart of GlobalAvgPool1D, which averages (N, C, L) over its last axis)."""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from .layer import Context, Grads, Layer


def _sequence_shape(layer: Layer, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    if len(shape) != 3 or shape[1] < 1:
        raise ValueError(f"{where} ({layer!r}) expects input of shape (batch, time >= 1, features), got shape "
                         f"{tuple(shape)}")
    return (shape[0], shape[2])


class LastStep(Layer):
    """(N, T, F) -> (N, F): x[:, T-1]; backward puts dy at the last step and zeros before it."""

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return _sequence_shape(self, shape, where)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        return x[:, -1, :], x.shape[1]

    def backward(self, params: dict[str, Array], steps: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        xp = ctx.xp
        before = xp.zeros((dy.shape[0], steps - 1, dy.shape[1]), dtype=dy.dtype, device=ctx.device)
        return xp.concat([before, dy[:, None, :]], axis=1), {}


class GlobalAvgPoolTime(Layer):
    """(N, T, F) -> (N, F): the mean over T; backward spreads dy / T over every step."""

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        return _sequence_shape(self, shape, where)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        return ctx.xp.mean(x, axis=1), x.shape[1]

    def backward(self, params: dict[str, Array], steps: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        xp = ctx.xp
        share = dy * (1.0 / steps)
        return xp.stack([share] * steps, axis=1), {}
