"""Fully connected layer: y = x @ W + b, with W of shape (in_features, out_features), on the last axis of an input of
any rank >= 2 (as torch's Linear): leading axes are folded into rows for one 2-D matmul and unfolded after."""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from .affine import _Affine
from .layer import Context, Grads


class Dense(_Affine):
    """Affine map from (batch, ..., in_features) to (batch, ..., out_features)."""

    in_features: int
    out_features: int

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "glorot_uniform",
                 bias_init: str = "zeros") -> None:
        self._affine(in_features, out_features, bias, init, bias_init)

    def weight_shape(self) -> tuple[int, ...]:
        return (self.in_features, self.out_features)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"{where} ({self!r}) expects input of shape (batch, {self.in_features}), got shape {tuple(shape)} "
                f"(or of rank > 2: (batch, ..., {self.in_features}))"
            )
        return (*shape[:-1], self.out_features)

    def _rows(self, a: Array, xp: Any) -> Array:
        """(batch, ..., k) -> (rows, k); a 2-D array as it is (so 2-D results stay bit for bit what they were)."""
        return a if a.ndim == 2 else xp.reshape(a, (-1, a.shape[-1]))

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        y = self._rows(x, ctx.xp) @ params["weight"]
        y = y + params["bias"] if self.bias else y
        return (y if x.ndim == 2 else ctx.xp.reshape(y, (*x.shape[:-1], self.out_features))), x

    def backward(self, params: dict[str, Array], x: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp = ctx.xp
        x2, dy2 = self._rows(x, xp), self._rows(dy, xp)  # the weight gradient sums over every leading axis
        grads = {"weight": x2.T @ dy2}
        if self.bias:
            grads["bias"] = xp.sum(dy2, axis=0)
        if not ctx.need_dx:
            return None, grads
        dx = dy2 @ params["weight"].T
        return (dx if x.ndim == 2 else xp.reshape(dx, tuple(x.shape))), grads
