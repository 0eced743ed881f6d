"""Timing of one Conv2D forward + backward: portnn (any backend) vs hand-written NumPy im2col vs torch conv2d.

``compare_conv()`` is the entry the ``portnn bench`` command can call; ``dx_variants()`` times the scatter-free
alternatives considered for the backward pass (the figures behind the choice in ``portnn.conv``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import array_api_extra as xpx
import numpy as np

from . import backends, host, im2col
from .conv import Conv2D

SHAPE = {"batch": 64, "in_channels": 8, "out_channels": 16, "size": 8, "kernel": 3, "stride": 1, "padding": 1}


def _best(fn: Callable[[], Any], repeat: int, sync: Callable[[Any], Any] = lambda r: r) -> float:
    """Best wall time in seconds of ``fn`` over ``repeat`` runs (after one warm-up), ``sync`` forcing results."""
    sync(fn())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def _data(shape: dict[str, int], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n, c, o, s, k = (shape[key] for key in ("batch", "in_channels", "out_channels", "size", "kernel"))
    x = rng.standard_normal((n, c, s, s))
    w = rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)
    b = rng.standard_normal(o)
    oh = im2col.out_size(s, k, shape["stride"], shape["padding"])
    return x, w, b, rng.standard_normal((n, o, oh, oh))


def numpy_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray, dy: np.ndarray, stride: int, padding: int
                 ) -> tuple[np.ndarray, ...]:
    """Hand-written NumPy conv forward + backward: sliding_window_view im2col, tensordot, in-place col2im adds."""
    k = w.shape[2]
    xp_ = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp_, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    dw = np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))  # (O, C, k, k)
    db = dy.sum(axis=(0, 2, 3))
    dcols = np.tensordot(dy, w, axes=([1], [0]))  # (N, OH, OW, C, k, k)
    dxp = np.zeros_like(xp_)
    oh, ow = dy.shape[2], dy.shape[3]
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride] += \
                dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    dx = dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]
    return y, dx, dw, db


def _portnn_step(backend: str, device: str | None, dtype: str, data: tuple[np.ndarray, ...], shape: dict[str, int]
                 ) -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    xp, dev = backends.load(backend, device)
    x, w, b, dy = (host.from_numpy(a, xp, device=dev, dtype=getattr(xp, dtype)) for a in data)
    layer = Conv2D(shape["in_channels"], shape["out_channels"], shape["kernel"], stride=shape["stride"],
                   padding=shape["padding"])
    layer.params = {"weight": w, "bias": b}

    def step() -> Any:
        layer.forward(x, xp)
        return layer.backward(dy, xp)

    return step, lambda r: host.to_float(xp.sum(r))


def compare_conv(backends_: tuple[str, ...] = ("numpy", "array_api_strict", "torch", "jax"), dtype: str = "float32",
                 shape: dict[str, int] | None = None, repeat: int = 20, seed: int = 0) -> dict[str, float]:
    """Best seconds of one forward + backward (dx, dW, db) of one conv layer, by implementation:
    'portnn-<backend>' for each installed backend, 'numpy-im2col' (hand-written), 'torch-conv2d' (autograd)."""
    shape = {**SHAPE, **(shape or {})}
    data = _data(shape, seed)
    out: dict[str, float] = {}
    for name in backends_:
        if backends.get(name).installed():
            step, sync = _portnn_step(name, None, dtype, data, shape)
            out[f"portnn-{name}"] = _best(step, repeat, sync)
    host_data = [a.astype(dtype) for a in data]
    out["numpy-im2col"] = _best(lambda: numpy_im2col(*host_data, shape["stride"], shape["padding"]), repeat)
    if backends.get("torch").installed():
        out["torch-conv2d"] = _best(_torch_step(host_data, shape), repeat)
    return out


def _torch_step(data: list[np.ndarray], shape: dict[str, int]) -> Callable[[], Any]:
    import torch

    x, w, b, dy = (torch.from_numpy(a) for a in data)
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)

    def step() -> Any:
        x.grad = w.grad = b.grad = None
        y = torch.nn.functional.conv2d(x, w, b, stride=shape["stride"], padding=shape["padding"])
        y.backward(dy)
        return x.grad

    return step


def _spread(parts: list[Any], axis: int, step: int, length: int, xp: Any) -> Any:
    """Interleave ``parts`` (each with n entries along ``axis``, len(parts) <= step) into one array whose entry
    ``step*p + r`` along ``axis`` is parts[r][p]; missing r are zeros; trimmed or zero-padded to ``length``."""
    zeros = xp.zeros_like(parts[0])
    blocks = parts + [zeros] * (step - len(parts))
    stacked = xp.stack(blocks, axis=axis + 1)  # (..., n, step, ...)
    shape = list(parts[0].shape)
    shape[axis] *= step
    flat = xp.reshape(stacked, tuple(shape))
    if shape[axis] >= length:
        index = [slice(None)] * flat.ndim
        index[axis] = slice(0, length)
        return flat[tuple(index)]
    widths = [(0, 0)] * flat.ndim
    widths[axis] = (0, length - shape[axis])
    return xpx.pad(flat, tuple(widths), xp=xp)


def _fold_grouped(cols: Any, kernel: tuple[int, int], stride: tuple[int, int], size: tuple[int, int], xp: Any) -> Any:
    """Alternative fold, scatter-free without ``xpx.at``: offsets i = a*sh + r with the same a tile the rows without
    overlap (r = 0..sh-1), so they are placed together by interleaving zeros; only ceil(kh/sh) * ceil(kw/sw) shifted
    copies are summed (one when stride >= kernel)."""
    (kh, kw), (sh, sw), (h, w) = kernel, stride, size
    total = None
    for a in range(-(-kh // sh)):
        rows_i = [i for i in range(a * sh, min(kh, (a + 1) * sh))]
        for b in range(-(-kw // sw)):
            cols_j = [j for j in range(b * sw, min(kw, (b + 1) * sw))]
            # one row band: interleave the column offsets of each row offset, then the row offsets
            bands = [_spread([cols[:, :, i * kw + j, :, :] for j in cols_j], 3, sw, w - b * sw, xp)
                     for i in rows_i]
            block = _spread(bands, 2, sh, h - a * sh, xp)  # (N, C, h - a*sh, w - b*sw)
            if a or b:
                block = xpx.pad(block, ((0, 0), (0, 0), (a * sh, 0), (b * sw, 0)), xp=xp)
            total = block if total is None else total + block
    return total


def _dx_per_offset_pad(dcols: Any, kernel: tuple[int, int], stride: tuple[int, int], size: tuple[int, int],
                       xp: Any) -> Any:
    """Alternative fold: every kernel offset interleaved and padded into a full-size array on its own, then summed."""
    (kh, kw), (sh, sw) = kernel, stride
    total = None
    for i in range(kh):
        for j in range(kw):
            row = _spread([dcols[:, :, i * kw + j, :, :]], 3, sw, size[1] - j, xp)
            one = _spread([row], 2, sh, size[0] - i, xp)
            one = xpx.pad(one, ((0, 0), (0, 0), (i, 0), (j, 0)), xp=xp)
            total = one if total is None else total + one
    return total


def dx_variants(backend: str = "numpy", dtype: str = "float64", shape: dict[str, int] | None = None,
                repeat: int = 20, seed: int = 0) -> dict[str, float]:
    """Best seconds of the dx accumulation alone (window gradients -> input gradient) for each candidate, and of the
    forward with matmul vs tensordot: the measurements behind the choices in ``portnn.conv``."""
    shape = {**SHAPE, **(shape or {})}
    xp, dev = backends.load(backend, None)
    k, s, p = shape["kernel"], shape["stride"], shape["padding"]
    x, w, _, dy = (host.from_numpy(a, xp, device=dev, dtype=getattr(xp, dtype)) for a in _data(shape, seed))
    n, c, h, _ = x.shape
    o, oh = w.shape[0], dy.shape[2]
    size = (h + 2 * p, h + 2 * p)
    cols = im2col.windows(im2col.pad2d(x, (p, p), xp), (k, k), (s, s), (oh, oh), xp)
    dcols = xp.reshape(xp.reshape(w, (o, c * k * k)).T @ xp.reshape(dy, (n, o, oh * oh)), (n, c, k * k, oh, oh))
    sync = lambda r: host.to_float(xp.sum(r))  # noqa: E731
    out = {
        "dx-xpx-at-add (chosen)": _best(lambda: im2col.fold(dcols, (k, k), (s, s), size, xp), repeat, sync),
        "dx-per-offset-pad": _best(lambda: _dx_per_offset_pad(dcols, (k, k), (s, s), size, xp), repeat, sync),
        "dx-interleave-grouped": _best(lambda: _fold_grouped(dcols, (k, k), (s, s), size, xp), repeat, sync),
    }
    flat = xp.reshape(cols, (n, c * k * k, oh * oh))
    w2 = xp.reshape(w, (o, c * k * k))
    out["fwd-matmul"] = _best(lambda: w2 @ flat, repeat, sync)
    out["fwd-tensordot"] = _best(lambda: xp.permute_dims(xp.tensordot(w2, flat, axes=([1], [1])), (1, 0, 2)),
                                 repeat, sync)
    return out
