"""1-D convolution (cross-correlation, as PyTorch's Conv1d) on (N, C, L) data, by the 2-D code: a length-L signal
is a 1 x L image, so forward and backward reshape (N, C, L) -> (N, C, 1, L) and the weight (O, C, k) -> (O, C, 1, k)
and run Conv2D's im2col pass with kernel (1, k), stride (1, s) and padding (0, p). No window code is copied."""

from __future__ import annotations

from typing import Any

from ..array.types import Array
from ..array.validation import Integer
from . import windows
from .affine import _Affine
from .conv import Conv2D
from .layer import Context, Grads

_Size1 = int | tuple[int] | list[int]  # an int, or a one-element tuple/list of one as PyTorch allows


def _single(value: Any, name: str, minimum: int) -> int:
    """``value`` (an int, or a one-element tuple/list of one as PyTorch allows) as an int >= ``minimum``."""
    values = value if isinstance(value, tuple | list) else (value,)
    rule = Integer(minimum)
    if len(values) != 1:
        raise ValueError(f"Conv1D: {name} must be {rule.describe()}, got {value!r}")
    return rule(values[0], name, "Conv1D")


class Conv1D(_Affine):
    """(N, in_channels, L) -> (N, out_channels, OL), OL = (L + 2 padding - kernel_size) // stride + 1; weight
    (out, in, kernel_size) and bias (out,) as PyTorch's Conv1d."""

    sizes = ("in_channels", "out_channels")
    in_channels: int
    out_channels: int

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size1, stride: _Size1 = 1,
                 padding: _Size1 = 0, bias: bool = True, init: str = "he_uniform", bias_init: str = "zeros") -> None:
        self._affine(in_channels, out_channels, bias, init, bias_init)
        self.kernel_size = _single(kernel_size, "kernel_size", 1)
        self.stride = _single(stride, "stride", 1)
        self.padding = _single(padding, "padding", 0)
        # the 2-D layer that does the work on (N, C, 1, L); configuration only, like this one
        self._conv2d = Conv2D(in_channels, out_channels, (1, self.kernel_size), stride=(1, self.stride),
                              padding=(0, self.padding), bias=self.bias, init=init)

    def weight_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels, self.kernel_size)  # fan-in: in_channels * kernel_size

    def geometry(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _out_length(self, length: int) -> int:
        return windows.out_size(length, self.kernel_size, self.stride, self.padding)

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3 or shape[1] != self.in_channels:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, {self.in_channels}, length), "
                             f"got shape {tuple(shape)}")
        windows.check_padding(shape[2], self.kernel_size, self.padding, "length", f"{where} ({self!r})")
        out = self._out_length(shape[2])
        if out < 1:
            raise ValueError(f"{where} ({self!r}): input of shape {tuple(shape)} is too short for kernel "
                             f"{self.kernel_size} with padding {self.padding} (output length would be {out})")
        return (shape[0], self.out_channels, out)

    def _as_2d(self, params: dict[str, Array], xp: Any) -> dict[str, Array]:
        """The parameters as Conv2D's: weight (O, C, k) -> (O, C, 1, k); the bias as it is."""
        w = params["weight"]
        return {**params, "weight": xp.reshape(w, (w.shape[0], w.shape[1], 1, w.shape[2]))}

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        _, c, length = x.shape  # the batch size is None while an ONNX export traces a symbolic batch: -1
        y, saved = self._conv2d.forward(self._as_2d(params, xp), xp.reshape(x, (-1, c, 1, length)), ctx)
        return xp.reshape(y, (-1, self.out_channels, y.shape[3])), saved

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp = ctx.xp
        n, o, out = dy.shape
        dx, grads = self._conv2d.backward(self._as_2d(params, xp), saved, xp.reshape(dy, (n, o, 1, out)), ctx)
        grads = {**grads, "weight": xp.reshape(grads["weight"], (o, self.in_channels, self.kernel_size))}
        return (None if dx is None else xp.reshape(dx, (n, self.in_channels, dx.shape[3]))), grads
