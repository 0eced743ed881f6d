"""Counter-based random numbers in the standard's integer ops: Threefry-2x32 with 20 rounds (Random123; the hash
behind ``jax.random``), so every backend draws the same bits on its own device, also inside a compiled step.

Lanes are int64 holding values in [0, 2**32), masked after every addition: torch has no unsigned 32-bit add, and
masked int64 arithmetic gives the same bits everywhere. The same functions run on Python ints (eager key
derivation) and on arrays of any namespace (counters, or keys traced by a compiler).
"""

from __future__ import annotations

from typing import Any

from ..array.types import Array, Device, Namespace

MASK = 0xFFFFFFFF
PARITY = 0x1BD11BDA  # the key-schedule constant of Threefry
ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: Any, r: int) -> Any:
    return ((x << r) | (x >> (32 - r))) & MASK


def threefry2x32(key: tuple[Any, Any], x0: Any, x1: Any) -> tuple[Any, Any]:
    """The Threefry-2x32-20 block function of counter (x0, x1) under key (k0, k1): two 32-bit words. Inputs are
    ints in [0, 2**32) or int64 arrays of them (broadcasting); so are the outputs."""
    k0, k1 = key
    ks = (k0, k1, (k0 ^ k1 ^ PARITY) & MASK)
    x0, x1 = (x0 + ks[0]) & MASK, (x1 + ks[1]) & MASK
    for group in range(5):
        for r in ROTATIONS[group % 2]:
            x0 = (x0 + x1) & MASK
            x1 = _rotl(x1, r) ^ x0
        x0 = (x0 + ks[(group + 1) % 3]) & MASK
        x1 = (x1 + ks[(group + 2) % 3] + group + 1) & MASK
    return x0, x1


def key(seed: int, layer: int, epoch: Any, batch: Any) -> tuple[Any, Any]:
    """The key of one layer's draw in one training step: (model seed, layer index) keyed once, then hashed with
    (epoch, batch), which may be ints or 0-d arrays (a compiled step's counters)."""
    base = threefry2x32((seed & MASK, (seed >> 32) & MASK), layer & MASK, 0)
    return threefry2x32(base, epoch, batch)


def words(k: tuple[Any, Any], start: int, count: int, xp: Namespace, device: Device) -> Array:
    """``count`` 32-bit words (int64 in [0, 2**32)) for element indices start, start + 1, ...: element i is word
    i % 2 of block i // 2, so any slice of a draw (a data-parallel rank's rows) equals the same slice of the whole."""
    first, last = start // 2, (start + count + 1) // 2
    blocks = xp.arange(first, last, dtype=xp.int64, device=device)
    y0, y1 = threefry2x32(k, blocks, xp.zeros(blocks.shape, dtype=xp.int64, device=device))
    pairs = xp.reshape(xp.stack([y0, y1], axis=1), (-1,))  # words of elements 2*first, 2*first + 1, ...
    offset = start - 2 * first
    return pairs[offset:offset + count]


def keep(k: tuple[Any, Any], shape: tuple[int, ...], p: float, xp: Namespace, device: Device,
         rows: tuple[int, int] | None = None) -> Array:
    """Boolean keep-mask of ``shape`` with P(keep) = 1 - p, compared as integers (no float rounding, so the same on
    every backend); ``rows`` = (first, stop) draws only those rows of a mask whose full height is ``shape[0]``."""
    per_row = 1
    for d in shape[1:]:
        per_row *= d
    lo, hi = (0, shape[0]) if rows is None else rows
    bits = words(k, lo * per_row, (hi - lo) * per_row, xp, device)
    threshold = min(round(p * 2**32), 2**32)
    return xp.reshape(bits >= threshold, (hi - lo, *shape[1:]))
