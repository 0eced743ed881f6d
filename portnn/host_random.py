"""Host-side randomness for training (shuffles), from numpy Generators keyed by (seed, epoch).

Keying by epoch instead of carrying a Generator means a resumed run draws the same orders as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch ``epoch`` (0-based) for ``n`` samples: int64 indices, identical everywhere."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n).astype(np.int64)
