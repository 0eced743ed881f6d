"""Counter-based random numbers in the standard's integer ops: Threefry-2x32 with 20 rounds (Random123; the hash
behind ``jax.random``), so every backend draws the same bits on its own device, also inside a compiled step.

Lanes are int64 holding values in [0, 2**32), masked after every addition: torch has no unsigned 32-bit add, and
masked int64 arithmetic gives the same bits everywhere. A namespace without int64 (JAX without x64, its default)
gets uint32 lanes instead, whose additions wrap by themselves: the same bits. The same functions run on Python ints
(eager key derivation) and on arrays of any namespace (counters, or keys traced by a compiler).
"""

from __future__ import annotations

from typing import Any

from ..array.placement import widest
from ..array.types import Array, Device, Namespace

MASK = 0xFFFFFFFF
PARITY = 0x1BD11BDA  # the key-schedule constant of Threefry
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def lanes(xp: Namespace) -> Any:
    """The lane dtype of ``xp``: int64 masked to 32 bits, or uint32 where the namespace has no int64."""
    return widest(xp, "int64", xp.uint32)


def _rotl(x: Any, r: int, wrap: bool) -> Any:
    return _mask((x << r) | (x >> (32 - r)), wrap)


def _mask(x: Any, wrap: bool) -> Any:
    return x if wrap else x & MASK  # uint32 lanes wrap by themselves


def threefry2x32(key: tuple[Any, Any], x0: Any, x1: Any, wrap: bool = False) -> tuple[Any, Any]:
    """The Threefry-2x32-20 block function of counter (x0, x1) under key (k0, k1): two 32-bit words. Inputs are
    ints in [0, 2**32) or int64 arrays of them (broadcasting), or (``wrap``) uint32 arrays; so are the outputs."""
    k0, k1 = key
    ks = (k0, k1, _mask(k0 ^ k1 ^ PARITY, wrap))
    x0, x1 = _mask(x0 + ks[0], wrap), _mask(x1 + ks[1], wrap)
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = _mask(x0 + x1, wrap)
            x1 = _rotl(x1, r, wrap) ^ x0
        x0 = _mask(x0 + ks[(group + 1) % 3], wrap)
        x1 = _mask(x1 + ks[(group + 2) % 3] + (group + 1), wrap)
    return x0, x1


def key(seed: int, layer: int, epoch: Any, batch: Any, xp: Namespace | None = None,
        device: Device = None) -> tuple[Any, Any]:
    """The key of one layer's draw in one training step: (model seed, layer index) keyed once, then hashed with
    (epoch, batch), which may be ints or 0-d arrays (a compiled step's counters; then ``xp`` and ``device`` say
    where, and the words come back as arrays of ``lanes(xp)``)."""
    base = threefry2x32((seed & MASK, (seed >> 32) & MASK), layer & MASK, 0)
    if xp is None or (isinstance(epoch, int) and isinstance(batch, int)):
        return threefry2x32(base, epoch, batch)
    dtype = lanes(xp)
    as_lanes = [xp.asarray(w, dtype=dtype, device=device) if isinstance(w, int) else xp.astype(w, dtype)
                for w in (*base, epoch, batch)]
    return threefry2x32((as_lanes[0], as_lanes[1]), as_lanes[2], as_lanes[3], wrap=dtype == xp.uint32)


def words(k: tuple[Any, Any], start: int, count: int, xp: Namespace, device: Device) -> Array:
    """``count`` 32-bit words (``lanes(xp)`` in [0, 2**32)) for element indices start, start + 1, ...: element i is
    word i % 2 of block i // 2, so any slice of a draw (a data-parallel rank's rows) equals the same slice of the
    whole."""
    dtype = lanes(xp)
    first, last = start // 2, (start + count + 1) // 2
    blocks = xp.arange(first, last, dtype=dtype, device=device)
    wrap = dtype == xp.uint32
    if wrap:  # Python ints above 2**31 do not mix with uint32 arrays in JAX: the key words as arrays
        k = (_word(k[0], xp, dtype, device), _word(k[1], xp, dtype, device))
    y0, y1 = threefry2x32(k, blocks, xp.zeros(blocks.shape, dtype=dtype, device=device), wrap)
    pairs = xp.reshape(xp.stack([y0, y1], axis=1), (-1,))  # words of elements 2*first, 2*first + 1, ...
    offset = start - 2 * first
    return pairs[offset:offset + count]


def _word(w: Any, xp: Namespace, dtype: Any, device: Device) -> Any:
    return xp.asarray(w, dtype=dtype, device=device) if isinstance(w, int) else w


def keep(k: tuple[Any, Any], shape: tuple[int, ...], p: float, xp: Namespace, device: Device,
         rows: tuple[int, int] | None = None) -> Array:
    """Boolean keep-mask of ``shape`` with P(keep) = 1 - p, compared as integers (no float rounding, so the same on
    every backend); ``rows`` = (first, stop) draws only those rows of a mask whose full height is ``shape[0]``."""
    per_row = 1
    for d in shape[1:]:
        per_row *= d
    lo, hi = (0, shape[0]) if rows is None else rows
    bits = words(k, lo * per_row, (hi - lo) * per_row, xp, device)
    threshold = xp.asarray(min(round(p * 2**32), 2**32 - 1), dtype=bits.dtype, device=device)
    return xp.reshape(bits >= threshold, (hi - lo, *shape[1:]))
