"""Host-side random numbers, from NumPy Generators keyed by integers: initial weights and shuffles (dropout masks
are drawn on the device by the counter-based generator, ``portnn.nn.threefry``).

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

