"""2-D max and average pooling on NCHW data, in the Array API standard only (windows by strided slicing)."""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from . import windows
from .layer import Context, Grads, Layer


class _Pool2D(Layer):
    """Shared shape logic: kernel_size and stride (default: the kernel size), no padding."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Any = None) -> None:
        name = type(self).__name__
        self.kernel_size = windows.pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else windows.pair(stride, "stride", name, 1)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return windows.out_size(h, kh, sh, 0), windows.out_size(w, kw, sw, 0)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 4:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, channels, height, width), "
                             f"got shape {tuple(shape)}")
        oh, ow = self._out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} is smaller than the kernel "
                             f"{self.kernel_size}")
        return (shape[0], shape[1], oh, ow)

    def _windows(self, x: Array, xp: Any) -> Array:
        """(N, C, K, OH, OW) windows of x."""
        return windows.windows(x, self.kernel_size, self.stride, self._out_hw(x.shape[2], x.shape[3]), xp)

    def config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(_Pool2D):
    """Maximum of each window: (N, C, H, W) -> (N, C, OH, OW), OH = (H - kh) // stride + 1 (no padding). Backward
    routes each output's gradient to one input: the first maximum of its window in row-major order (as PyTorch on
    the CPU); where windows overlap, an input gets the sum."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        cols = self._windows(x, xp)
        argmax = xp.argmax(cols, axis=2)  # first occurrence of the maximum (the standard's rule)
        _, c, k, oh, ow = cols.shape
        # the reshape (a view) restates the static shape, which a tracer's max may lose (ndonnx's, for ONNX export)
        return xp.reshape(xp.max(cols, axis=2), (-1, c, oh, ow)), (argmax, k, (x.shape[2], x.shape[3]))

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        xp = ctx.xp
        argmax, k, in_hw = saved
        offsets = xp.arange(k, dtype=argmax.dtype, device=ctx.device)
        hit = offsets[:, None, None] == argmax[:, :, None, :, :]  # (N, C, K, OH, OW)
        dcols = dy[:, :, None, :, :] * xp.astype(hit, dy.dtype)
        return windows.fold(dcols, self.kernel_size, self.stride, in_hw, xp), {}


class AvgPool2D(_Pool2D):
    """Mean of each window: (N, C, H, W) -> (N, C, OH, OW) as MaxPool2D; backward spreads each output's gradient
    evenly over its window."""

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        cols = self._windows(x, ctx.xp)
        return ctx.xp.mean(cols, axis=2), (cols.shape, (x.shape[2], x.shape[3]))

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        if not ctx.need_dx:
            return None, {}
        xp = ctx.xp
        cols_shape, in_hw = saved
        share = dy[:, :, None, :, :] * (1.0 / cols_shape[2])
        return windows.fold(xp.broadcast_to(share, cols_shape), self.kernel_size, self.stride, in_hw, xp), {}
