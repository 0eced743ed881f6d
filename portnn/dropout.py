"""Dropout whose mask is drawn on the host, so it is identical on every backend and device.

The mask comes from ``host_random.keep_mask``: numpy's PCG64 seeded with (model seed, layer index, epoch, batch),
which ``Sequential`` sets as ``training_key`` before each training forward pass; in ``predict``/``evaluate`` the
key is None and the layer is the identity. Inverted dropout: kept values are scaled by 1 / (1 - p).
"""

from __future__ import annotations

import math
from typing import Any

from . import host, host_random
from .checkpoint import register_layer
from .layer import Layer


@register_layer
class Dropout(Layer):
    """Zero each input with probability ``p`` while training and scale the rest by 1 / (1 - p); identity otherwise."""

    keyed = True

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        try:
            p = float(p)
        except (TypeError, ValueError) as err:
            raise TypeError(f"Dropout: p must be a number, got {p!r}") from err
        if not (math.isfinite(p) and 0.0 <= p < 1.0):
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: Any, xp: Any) -> Any:
        key = self.training_key
        if key is None or self.p == 0.0:
            self.mask = None
            return x
        rows = self.training_rows  # a data-parallel rank: draw the global batch's mask, keep this rank's rows
        shape = tuple(x.shape) if rows is None else (rows[2], *tuple(x.shape)[1:])
        keep = host_random.keep_mask(key, shape, self.p)
        if rows is not None:
            keep = keep[rows[0]:rows[1]]
        self.mask = host.from_numpy(keep / (1.0 - self.p), xp, device=x.device, dtype=x.dtype)
        return x * self.mask

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        return dy if self.mask is None else dy * self.mask

    def config(self) -> dict[str, Any]:
        return {"p": self.p}
