"""Dropout whose mask is drawn on the host, so it is identical on every backend and device.

The mask comes from ``portnn.array.random.keep_mask``: PCG64 seeded with ``ctx.key`` = (model seed, layer index,
epoch, batch) while training; in inference the layer is the identity. Inverted dropout: kept values are scaled by
1 / (1 - p). A data-parallel rank draws the global batch's mask and keeps its rows, so N ranks equal one process.
"""

from __future__ import annotations

import math
from typing import Any

from ..array import host
from ..array import random as host_random
from ..array.types import Array
from .layer import Context, Grads, Layer


class Dropout(Layer):
    """Zero each input with probability ``p`` while training and scale the rest by 1 / (1 - p); identity otherwise."""

    keyed = True

    def __init__(self, p: float = 0.5) -> None:
        try:
            p = float(p)
        except (TypeError, ValueError) as err:
            raise TypeError(f"Dropout: p must be a number, got {p!r}") from err
        if not (math.isfinite(p) and 0.0 <= p < 1.0):
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        if not ctx.training or ctx.key is None or self.p == 0.0:
            return x, None
        rows = ctx.rows
        shape = tuple(x.shape) if rows is None else (rows[2], *tuple(x.shape)[1:])
        scale = host_random.dropout_scale(ctx.key, shape, self.p, None if rows is None else rows[:2])
        mask = host.from_numpy(scale, ctx.xp, device=x.device, dtype=x.dtype)
        return x * mask, mask

    def backward(self, params: dict[str, Array], mask: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        return (dy if mask is None else dy * mask), {}

    def config(self) -> dict[str, Any]:
        return {"p": self.p}
