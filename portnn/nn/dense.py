"""Fully connected layer: y = x @ W + b, with W of shape (in_features, out_features), on the last axis of an input of
any rank >= 2 (as torch's Linear): leading axes are folded into rows for one 2-D matmul and unfolded after."""

from __future__ import annotations

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

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Array]:
        flat = x if x.ndim == 2 else ctx.xp.reshape(x, (-1, x.shape[-1]))  # leading axes folded into rows
        y = flat @ params["weight"]
        y = y + params["bias"] if self.bias else y
        return (y if x.ndim == 2 else ctx.xp.reshape(y, (*x.shape[:-1], self.out_features))), x

    def backward(self, params: dict[str, Array], x: Array, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, shape = ctx.xp, x.shape
        if x.ndim != 2:  # as in forward: the weight gradient sums over every leading axis
            x, dy = xp.reshape(x, (-1, shape[-1])), xp.reshape(dy, (-1, dy.shape[-1]))
        grads = {"weight": x.T @ dy}
        if self.bias:
            grads["bias"] = xp.sum(dy, axis=0)
        if not ctx.need_dx:
            return None, grads
        dx = dy @ params["weight"].T
        return (dx if len(shape) == 2 else xp.reshape(dx, tuple(shape))), grads
