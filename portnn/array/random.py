"""Host-side random numbers, from NumPy Generators keyed by integers: initial weights, shuffles, dropout masks.

Every backend receives the same numbers (drawn here, then moved to its device), and keying by (seed, epoch, ...)
instead of carrying a Generator means a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np


def generator(seed: int) -> np.random.Generator:
    """The Generator initial weights are drawn from: PCG64 seeded with ``seed``."""
    return np.random.default_rng(seed)


def zeros(shape: tuple[int, ...]) -> np.ndarray:
    """float64 zeros (biases); draws nothing."""
    return np.zeros(shape)


def as_float64(values: object) -> np.ndarray:
    """Drawn values as a float64 host array."""
    return np.asarray(values, dtype=np.float64)


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch ``epoch`` (0-based) for ``n`` samples: int64 indices, identical everywhere."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def keep_mask(key: tuple[int, ...], shape: tuple[int, ...], p: float) -> np.ndarray:
    """Dropout keep-mask (True = keep, probability 1 - p) from PCG64 seeded with ``key`` (model seed, layer index,
    epoch, batch): the same bits on every backend, and a resumed run draws the same masks."""
    return np.random.default_rng([int(k) for k in key]).random(shape) >= p


def dropout_scale(key: tuple[int, ...], shape: tuple[int, ...], p: float, rows: tuple[int, int] | None = None
                  ) -> np.ndarray:
    """Inverted-dropout multiplier keep / (1 - p) as float64, optionally only rows [first, stop) of the mask."""
    keep = keep_mask(key, shape, p)
    if rows is not None:
        keep = keep[rows[0]:rows[1]]
    return keep / (1.0 - p)
