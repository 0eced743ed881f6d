"""Mini-batches of (X, y): in order, or shuffled by a host permutation keyed by (shuffle seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..array import host
from ..array import random as host_random
from ..array.placement import Placement
from ..array.types import Array


def batches(X: Array, y: Array, size: int, p: Placement, order_seed: tuple[int, int] | None = None) -> Iterable:
    """(x, y) batches of ``size`` rows, in order, or shuffled by the host permutation of ``order_seed`` =
    (shuffle seed, epoch) so every backend sees the same batches. One batch: the arrays themselves."""
    if size >= X.shape[0]:
        return ((X, y),)
    return _shuffled(X, y, size, p, order_seed) if order_seed is not None else _in_order(X, y, size)


def _in_order(X: Array, y: Array, size: int) -> Iterator:
    n = X.shape[0]
    for start in range(0, n, size):
        yield X[start:min(start + size, n), ...], y[start:min(start + size, n), ...]


def _shuffled(X: Array, y: Array, size: int, p: Placement, order_seed: tuple[int, int]) -> Iterator:
    n = X.shape[0]
    order = host.from_numpy(host_random.permutation(*order_seed, n), p.xp, device=p.device, dtype=p.index_dtype)
    for start in range(0, n, size):
        idx = order[start:min(start + size, n)]  # strict rejects out-of-range slice stops
        yield p.xp.take(X, idx, axis=0), p.xp.take(y, idx, axis=0)
