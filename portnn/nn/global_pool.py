"""Global average pooling: the mean over every spatial position, (N, C, ...) -> (N, C), as torch's
adaptive_avg_pool to size 1 followed by flatten; the usual bridge from convolutions to a Dense head."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..array.types import Array
from .layer import Context, Grads, Layer


class _GlobalAvgPool(Layer):
    """Shared logic: the mean over the last ``spatial`` axes; backward spreads dy evenly over them."""

    spatial: ClassVar[int]
    axes_names: ClassVar[str]

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 2 + self.spatial:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, channels, {self.axes_names}), "
                             f"got shape {tuple(shape)}")
        if math.prod(shape[2:]) == 0:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} has no positions to average")
        return (shape[0], shape[1])

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        axes = tuple(range(2, 2 + self.spatial))
        return ctx.xp.mean(x, axis=axes), tuple(x.shape)

    def backward(self, params: dict[str, Array], shape: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        xp = ctx.xp
        # dx[n, c, ...] = dy[n, c] / (number of positions); times ones so dx is a real array, not a broadcast view
        share = xp.reshape(dy * (1.0 / math.prod(shape[2:])), (*shape[:2], *([1] * self.spatial)))
        return share * xp.ones(shape, dtype=dy.dtype, device=ctx.device), {}


class GlobalAvgPool1D(_GlobalAvgPool):
    """(N, C, L) -> (N, C): the mean over L (torch: adaptive_avg_pool1d(x, 1).flatten(1))."""

    spatial = 1
    axes_names = "length"


class GlobalAvgPool2D(_GlobalAvgPool):
    """(N, C, H, W) -> (N, C): the mean over H and W (torch: adaptive_avg_pool2d(x, 1).flatten(1))."""

    spatial = 2
    axes_names = "height, width"
