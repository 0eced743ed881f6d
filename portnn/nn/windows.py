"""Sliding 2-D windows in the Array API standard only: gather them by strided slicing (im2col) and fold them back.

The standard has no ``as_strided`` and no scatter, so ``windows`` stacks ``kh*kw`` strided slices and ``fold`` (its
adjoint, used by every backward pass) adds the window gradients back as zero-padded planes, one per stride residue,
interleaved by a reshape.
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

    Without a scatter: output row ``i + sh*p`` is row ``p + i // sh`` of the rows with residue ``i % sh``, so each
    residue pair (a, b) gets one plane, the sum of its kernel offsets' windows each zero-padded into place (in the
    order of the offsets, from zero: the additions of a scatter-add into zeros, bit for bit), and the planes are
    interleaved by one stack and reshape; stride 1 is a single plane, non-overlapping pooling one window a plane.
    Only the standard's functions and ``xpx.pad``, so it traces as one graph under ``torch.compile``
    (``xpx.at(...).add`` with a tuple index breaks Dynamo's graph in array-api-compat's ``is_jax_array``)."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, _, oh, ow = cols.shape
    mh, mw = max(-(-size[0] // sh), (kh - 1) // sh + oh), max(-(-size[1] // sw), (kw - 1) // sw + ow)
    rows = []
    for a in range(sh):
        planes = []
        for b in range(sw):
            plane = None
            for i in range(a, kh, sh):
                for j in range(b, kw, sw):
                    top, left = i // sh, j // sw
                    piece = _placed(cols[:, :, i * kw + j, :, :], (top, mh - top - oh), (left, mw - left - ow), xp)
                    plane = piece + 0.0 if plane is None else plane + piece  # + 0.0: as 0 + x (x = -0 gives +0)
            if plane is None:  # a kernel smaller than its stride: rows no window covers
                plane = xp.zeros((n, c, mh, mw), dtype=cols.dtype, device=array_api_compat.device(cols))
            planes.append(plane)
        rows.append(planes[0] if sw == 1 else xp.stack(planes, axis=4))  # (N, C, mh, mw[, sw])
    out = rows[0] if sh == 1 and sw == 1 else xp.reshape(xp.stack(rows, axis=3), (n, c, mh * sh, mw * sw))
    return out[:, :, :size[0], :size[1]]


def _placed(piece: Any, rows: tuple[int, int], cols: tuple[int, int], xp: Any) -> Any:
    """(N, C, h, w) zero-padded by ``rows`` = (above, below) and ``cols`` = (left, right); itself when all are 0."""
    if not any(rows + cols):
        return piece
    return xpx.pad(piece, ((0, 0), (0, 0), rows, cols), xp=xp)
