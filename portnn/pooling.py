"""2-D max and average pooling on NCHW data, in the Array API standard only (windows by strided slicing)."""

from __future__ import annotations

from typing import Any

from . import im2col
from .checkpoint import register_layer
from .layer import Layer


class _Pool2D(Layer):
    """Shared shape logic: kernel_size and stride (default: the kernel size), no padding."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = im2col.pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else im2col.pair(stride, "stride", name, 1)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return im2col.out_size(h, kh, sh, 0), im2col.out_size(w, kw, sw, 0)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 4:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, channels, height, width), "
                             f"got shape {tuple(shape)}")
        oh, ow = self._out_hw(shape[2], shape[3])
        if oh < 1 or ow < 1:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} is smaller than the kernel "
                             f"{self.kernel_size}")
        return (shape[0], shape[1], oh, ow)

    def _windows(self, x: Any, xp: Any) -> Any:
        """(N, C, K, OH, OW) windows of x; remembers the shapes backward needs."""
        self.in_hw = (x.shape[2], x.shape[3])
        return im2col.windows(x, self.kernel_size, self.stride, self._out_hw(*self.in_hw), xp)

    def config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


@register_layer
class MaxPool2D(_Pool2D):
    """Maximum of each window. Backward routes each output's gradient to one input: the first maximum of its
    window in row-major order (as PyTorch on the CPU); where windows overlap, an input gets the sum."""

    def forward(self, x: Any, xp: Any) -> Any:
        cols = self._windows(x, xp)
        self.argmax = xp.argmax(cols, axis=2)  # first occurrence of the maximum (the standard's rule)
        self.k = cols.shape[2]
        return xp.max(cols, axis=2)

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        offsets = xp.arange(self.k, dtype=self.argmax.dtype, device=self.argmax.device)
        hit = offsets[:, None, None] == self.argmax[:, :, None, :, :]  # (N, C, K, OH, OW)
        dcols = dy[:, :, None, :, :] * xp.astype(hit, dy.dtype)
        return im2col.fold(dcols, self.kernel_size, self.stride, self.in_hw, xp)


@register_layer
class AvgPool2D(_Pool2D):
    """Mean of each window; backward spreads each output's gradient evenly over its window."""

    def forward(self, x: Any, xp: Any) -> Any:
        cols = self._windows(x, xp)
        self.cols_shape = cols.shape
        return xp.mean(cols, axis=2)

    def backward(self, dy: Any, xp: Any, need_dx: bool = True) -> Any:
        if not need_dx:
            return None
        share = dy[:, :, None, :, :] * (1.0 / self.cols_shape[2])
        return im2col.fold(xp.broadcast_to(share, self.cols_shape), self.kernel_size, self.stride, self.in_hw, xp)
