"""2-D convolution (cross-correlation, as PyTorch's Conv2d) on NCHW data, in the Array API standard only.

Forward: zero-pad, gather the kh x kw strided windows by slicing and stacking (im2col, ``windows``), one batched
matmul with the weight. Backward: dW by one tensordot of dy with the saved windows, dx by one matmul back to window
gradients and ``windows.fold``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..array.types import Array
from . import windows
from .affine import _Affine
from .layer import Context, Grads


class Saved(NamedTuple):
    """What Conv2D's forward keeps for backward."""

    cols: Array  # (N, C*K, P): the input's windows, for dW
    input_shape: tuple[Any, ...]  # (N, C, H, W); N is None while ONNX traces a symbolic batch
    output_hw: tuple[int, int]  # (OH, OW)


class Conv2D(_Affine):
    """(N, in_channels, H, W) -> (N, out_channels, OH, OW); weight (out, in, kh, kw), bias (out,)."""

    sizes = ("in_channels", "out_channels")
    in_channels: int
    out_channels: int

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, bias: bool = True, init: str = "he_uniform", bias_init: str = "zeros") -> None:
        self._affine(in_channels, out_channels, bias, init, bias_init)
        self.kernel_size = windows.pair(kernel_size, "kernel_size", "Conv2D", 1)
        self.stride = windows.pair(stride, "stride", "Conv2D", 1)
        self.padding = windows.pair(padding, "padding", "Conv2D", 0)

    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels, *self.kernel_size)  # fan-in: in_channels * kh * kw

    def geometry(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return windows.out_size(h, kh, sh, ph), windows.out_size(w, kw, sw, pw)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, {self.in_channels}, height, width), "
                             f"got shape {tuple(shape)}")
        for axis, size, k, pad in zip(("height", "width"), shape[2:], self.kernel_size, self.padding, strict=True):
            windows.check_padding(size, k, pad, axis, f"{where} ({self!r})")
        oh, ow = self._out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} is too small for kernel "
                             f"{self.kernel_size} with padding {self.padding} (output would be {oh}x{ow})")
        return (shape[0], self.out_channels, oh, ow)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        n, c, h, w = x.shape  # n is None while an ONNX export traces a symbolic batch: reshapes say -1
        oh, ow = self._out_hw(h, w)
        k = self.kernel_size[0] * self.kernel_size[1]
        cols = windows.windows(windows.pad2d(x, self.padding, xp), self.kernel_size, self.stride, (oh, ow), xp)
        cols = xp.reshape(cols, (-1, c * k, oh * ow))  # (N, C*K, P), saved for dW
        y = xp.reshape(params["weight"], (self.out_channels, c * k)) @ cols  # (N, O, P)
        if self.bias:
            y = y + params["bias"][:, None]
        return xp.reshape(y, (-1, self.out_channels, oh, ow)), Saved(cols, (n, c, h, w), (oh, ow))

    def backward(self, params: dict[str, Array], saved: Saved, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp = ctx.xp
        cols, (n, c, h, w), (oh, ow) = saved.cols, saved.input_shape, saved.output_hw
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        dy = xp.reshape(dy, (n, self.out_channels, oh * ow))
        dw = xp.tensordot(dy, cols, axes=([0, 2], [0, 2]))  # (O, C*K)
        grads = {"weight": xp.reshape(dw, (self.out_channels, c, kh, kw))}
        if self.bias:
            grads["bias"] = xp.sum(dy, axis=(0, 2))
        if not ctx.need_dx:
            return None, grads
        w2 = xp.reshape(params["weight"], (self.out_channels, c * kh * kw))
        dcols = xp.reshape(w2.T @ dy, (n, c, kh * kw, oh, ow))
        dx = windows.fold(dcols, self.kernel_size, self.stride, (h + 2 * ph, w + 2 * pw), xp)
        return (dx[:, :, ph:ph + h, pw:pw + w] if ph or pw else dx), grads
