"""Host-side randomness for training (shuffles), from numpy Generators keyed by (seed, epoch).

Keying by epoch instead of carrying a Generator means a resumed run draws the same orders as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch ``epoch`` (0-based) for ``n`` samples: int64 indices, identical everywhere."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)


def keep_mask(key: tuple[int, ...], shape: tuple[int, ...], p: float) -> np.ndarray:
    """Dropout keep-mask (True = keep, probability 1 - p) from PCG64 seeded with ``key`` (model seed, layer index,
    epoch, batch): the same bits on every backend, and a resumed run draws the same masks."""
    return np.random.default_rng([int(k) for k in key]).random(shape) >= p
