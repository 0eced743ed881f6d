"""Dropout whose mask comes from a counter-based generator on the device (``threefry``), keyed by (model seed, layer
index, epoch, batch): the same bits on every backend, generated where the data is (also inside a compiled step),
and a resumed run draws the same masks. Inverted dropout: kept values are scaled by 1 / (1 - p); in inference the
layer is the identity. A data-parallel rank draws only its rows of the global batch's mask, so N ranks equal one
process.
"""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from ..array.validation import FRACTION
from . import threefry
from .layer import Context, Grads, Layer


class Dropout(Layer):
    """Zero each input with probability ``p`` while training and scale the rest by 1 / (1 - p); identity otherwise.
    Any shape, kept."""

    keyed = True

    def __init__(self, p: float = 0.5) -> None:
        self.p = FRACTION(p, "p", "Dropout")

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        if not ctx.training or ctx.key is None or self.p == 0.0:
            return x, None
        xp, rows = ctx.xp, ctx.rows
        shape = tuple(x.shape) if rows is None else (rows[2], *tuple(x.shape)[1:])
        seed, layer, epoch, batch = ctx.key  # (model seed, layer index, epoch, batch)
        k = threefry.key(seed, layer, epoch, batch, xp=xp, device=ctx.device)
        kept = threefry.keep(k, shape, self.p, xp, ctx.device, None if rows is None else rows[:2])
        mask = xp.astype(kept, x.dtype) * (1.0 / (1.0 - self.p))
        return x * mask, mask

    def backward(self, params: dict[str, Array], mask: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        return (dy if mask is None else dy * mask), {}

    def config(self) -> dict[str, Any]:
        return {"p": self.p}
