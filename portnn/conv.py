"""2-D convolution (cross-correlation, as PyTorch's Conv2d) on NCHW data, in the Array API standard only.

Forward: zero-pad, gather the kh x kw strided windows by slicing and stacking (im2col), one matmul with the
weight. Backward: dW by one tensordot of dy with the kept windows, dx by one matmul back to window gradients and
``im2col.fold`` (``array_api_extra.at`` adds: in place where writeable, ``.at[].add`` on immutable JAX arrays).

Chosen by measurement (``portnn.bench_conv.dx_variants``: float64, batch 64, 8 -> 16 channels, 8x8, 3x3, padding
1, best of 30 on a shared 2-core machine), in ms for numpy / torch / array-api-strict / jax:
dx by one ``xpx.at(...).add`` per kernel offset (chosen) 0.83 / 0.60 / 2.5 / 13.7; by interleaving zeros and
padding per offset 3.7 / 2.5 / 10.8 / 13.8; per group of non-overlapping offsets 3.6 / 2.6 / 10.4 / 28.8.
Forward contraction as batched matmul (chosen) 0.24 / 0.27 / 0.31 / 0.70 vs tensordot + transpose
0.55 / 0.50 / 0.59 / 0.87.
"""

from __future__ import annotations

from typing import Any

from . import im2col
from .checkpoint import register_layer
from .init import initializer
from .layer import Layer


@register_layer
class Conv2D(Layer):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW); weight (out, in, kh, kw), bias (out,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, bias: bool = True, init: str = "he_uniform") -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Conv2D: {name} must be a positive int, got {value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = im2col.pair(kernel_size, "kernel_size", "Conv2D", 1)
        self.stride = im2col.pair(stride, "stride", "Conv2D", 1)
        self.padding = im2col.pair(padding, "padding", "Conv2D", 0)
        self.bias, self.init = bool(bias), init
        self._draw = initializer(init)  # fails early on an unknown initialiser name

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": (self.out_channels, self.in_channels, *self.kernel_size)}
        return {**shapes, "bias": (self.out_channels,)} if self.bias else shapes

    def init_params(self, rng: Any) -> dict[str, Any]:
        """Weight from the initialiser (fan-in = in_channels * kh * kw); bias zeros; drawn on the host."""
        shapes = self.param_shapes()
        params = {"weight": self._draw(rng, shapes["weight"])}
        if self.bias:
            params["bias"] = initializer("zeros")(rng, shapes["bias"])
        return params

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return im2col.out_size(h, kh, sh, ph), im2col.out_size(w, kw, sw, pw)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, {self.in_channels}, height, width), "
                             f"got shape {tuple(shape)}")
        oh, ow = self._out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} is too small for kernel "
                             f"{self.kernel_size} with padding {self.padding} (output would be {oh}x{ow})")
        return (shape[0], self.out_channels, oh, ow)

    def forward(self, x: Any, xp: Any) -> Any:
        n, c, h, w = x.shape
        oh, ow = self._out_hw(h, w)
        self.in_shape, self.out_hw = (n, c, h, w), (oh, ow)
        k = self.kernel_size[0] * self.kernel_size[1]
        cols = im2col.windows(im2col.pad2d(x, self.padding, xp), self.kernel_size, self.stride, (oh, ow), xp)
        self.cols = xp.reshape(cols, (n, c * k, oh * ow))  # (N, C*K, P), kept for dW
        y = xp.reshape(self.params["weight"], (self.out_channels, c * k)) @ self.cols  # (N, O, P)
        if self.bias:
            y = y + self.params["bias"][:, None]
        return xp.reshape(y, (n, self.out_channels, oh, ow))

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        n, c, h, w = self.in_shape
        (oh, ow), (kh, kw), (ph, pw) = self.out_hw, self.kernel_size, self.padding
        dy = xp.reshape(dy, (n, self.out_channels, oh * ow))
        dw = xp.tensordot(dy, self.cols, axes=([0, 2], [0, 2]))  # (O, C*K)
        self.grads["weight"] = xp.reshape(dw, (self.out_channels, c, kh, kw))
        if self.bias:
            self.grads["bias"] = xp.sum(dy, axis=(0, 2))
        if not need_dx:
            return None
        w2 = xp.reshape(self.params["weight"], (self.out_channels, c * kh * kw))
        dcols = xp.reshape(w2.T @ dy, (n, c, kh * kw, oh, ow))
        dx = im2col.fold(dcols, self.kernel_size, self.stride, (h + 2 * ph, w + 2 * pw), xp)
        return dx[:, :, ph:ph + h, pw:pw + w] if ph or pw else dx

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "bias": self.bias, "init": self.init}
