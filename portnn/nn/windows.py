"""Sliding 2-D windows in the Array API standard only: gather them by strided slicing (im2col) and fold them back.

The standard has no ``as_strided`` and no scatter, so ``windows`` stacks ``kh*kw`` strided slices and ``fold`` (its
adjoint, used by every backward pass) adds the window gradients back with ``array_api_extra.at``, which updates a
fresh array in place where arrays are writeable and functionally (``.at[].add``) on immutable JAX arrays.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import array_api_extra as xpx

from ..array.validation import Integer


def pair(value: Any, name: str, owner: str, minimum: int) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as (rows, cols); ValueError naming ``owner`` and ``name`` otherwise."""
    values = value if isinstance(value, tuple | list) else (value, value)
    rule = Integer(minimum)
    if len(values) != 2:
        raise ValueError(f"{owner}: {name} must be {rule.describe()} or a pair of them, got {value!r}")
    return rule(values[0], name, owner), rule(values[1], name, owner)


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: floor((size + 2*padding - kernel) / stride) + 1 (0 or less: too small)."""
    return (size + 2 * padding - kernel) // stride + 1


def check_padding(size: int, kernel: int, padding: int, axis: str, where: str) -> None:
    """Refuse a padding larger than the input's ``size`` plus the ``kernel`` along ``axis``: beyond it come only
    windows of zeros, and the padded input and its windows (the work and memory of im2col) grow with the padding
    instead of the input, so a typo such as padding=10**4 would allocate tens of GiB. Up to it the work stays within
    a small multiple of the unpadded layer's; torch allows any padding, and agrees wherever portnn computes."""
    if padding > size + kernel:
        raise ValueError(f"{where}: padding {padding} along {axis} is more than the input's {axis} ({size}) plus the "
                         f"kernel ({kernel}), {size + kernel}: the windows past it see only zeros and the work would "
                         "grow with the padding, not the data; use a smaller padding")


def pad2d(x: Any, padding: tuple[int, int], xp: Any) -> Any:
    """Zero-pad the last two axes of (N, C, H, W) by ``padding`` = (ph, pw) on both sides."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    if x.shape[0] is not None:
        return xpx.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), xp=xp)
    # an unknown (None) batch size, as when an ONNX export traces a symbolic batch: xpx.pad needs every size, so
    # concatenate zero blocks broadcast from an (N, C, 1, 1) slice of x (the same values; slower on NumPy)
    h, w = x.shape[2], x.shape[3]
    dtype, device = x.dtype, array_api_compat.device(x)
    corner = xp.zeros_like(x[:, :, :1, :1], dtype=dtype, device=device)
    if ph:
        rows = corner + xp.zeros((1, 1, ph, w), dtype=dtype, device=device)
        x = xp.concat([rows, x, rows], axis=2)
    if pw:
        cols = corner + xp.zeros((1, 1, h + 2 * ph, pw), dtype=dtype, device=device)
        x = xp.concat([cols, x, cols], axis=3)
    return x


def windows(x: Any, kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int], xp: Any) -> Any:
    """(N, C, H, W) -> (N, C, kh*kw, OH, OW): entry [n, c, i*kw + j, p, q] = x[n, c, i + sh*p, j + sw*q]."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    # stops i + sh*(oh-1) + 1 <= H: strict rejects out-of-range slice stops
    return xp.stack([x[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                     for i in range(kh) for j in range(kw)], axis=2)


def fold(cols: Any, kernel: tuple[int, int], stride: tuple[int, int], size: tuple[int, int], xp: Any) -> Any:
    """Adjoint of ``windows``: (N, C, kh*kw, OH, OW) -> (N, C, H, W), summing where windows overlap.

    One ``xpx.at(...).add`` of a strided slice per kernel offset into a fresh zero array: in place where arrays are
    writeable, ``.at[].add`` (a new array) on JAX; cheaper than building each offset's contribution by interleaving
    zeros and padding, on every backend measured."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, _, oh, ow = cols.shape
    out = xp.zeros((n, c, *size), dtype=cols.dtype, device=array_api_compat.device(cols))
    for i in range(kh):
        for j in range(kw):
            index = (slice(None), slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
            out = xpx.at(out, index).add(cols[:, :, i * kw + j, :, :], xp=xp)
    return out
