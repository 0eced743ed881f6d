"""The epochs and steps of one fit, and the order of its rows: the one place that does this arithmetic.

A fit runs ``epochs`` passes over n rows in batches of ``size`` (full batch when size >= n), or ``steps`` steps in
all, the last epoch cut short (it counts as an epoch; its record covers the rows it saw). Shuffled rows follow the
host permutation keyed by (shuffle seed, epoch), so every backend, every process and every replay sees the same
batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..array import random as host_random


@dataclass(frozen=True)
class Plan:
    """n rows in batches of ``size``; ``epochs`` passes from model epoch ``first`` (``steps``: the step limit);
    ``seed`` keys the shuffles (None: rows in order)."""

    n: int
    size: int
    epochs: int
    first: int
    steps: int | None = None
    seed: int | None = None

    @classmethod
    def of(cls, n: int, batch_size: int | None, epochs: int | None, steps: int | None, first: int,
           seed: int | None) -> Plan:
        """The plan of ``fit(epochs=, steps=, batch_size=)`` on n rows (epochs default to 1, or as many as the
        steps need)."""
        size = n if batch_size is None else min(batch_size, n)
        per_epoch = -(-n // size)
        count = (1 if epochs is None else epochs) if steps is None else -(-steps // per_epoch)
        return cls(n, size, count, first, steps, seed)

    @property
    def full_batch(self) -> bool:
        return self.size >= self.n

    @property
    def per_epoch(self) -> int:
        """Batches in a whole epoch."""
        return -(-self.n // self.size)

    @property
    def whole(self) -> int:
        """Batches of exactly ``size`` rows in a whole epoch (the rest is one shorter batch)."""
        return self.n // self.size

    def batches(self, e: int) -> int:
        """Steps of this fit's epoch ``e`` (0-based): a whole epoch, or fewer in the last one under ``steps``."""
        if self.steps is None:
            return self.per_epoch
        return min(self.per_epoch, self.steps - e * self.per_epoch)

    def rows(self, e: int) -> int:
        """Rows this fit's epoch ``e`` trains on (what its record averages over)."""
        count = self.batches(e)
        return self.n if count == self.per_epoch else min(self.n, count * self.size)

    def order(self, e: int) -> Any:
        """The host row order of this fit's epoch ``e`` (an int64 NumPy array), or None for rows in order."""
        if self.seed is None or self.full_batch:
            return None
        return host_random.permutation(self.seed, self.first + e, self.n)

    def span(self, b: int) -> tuple[int, int]:
        """Positions [start, stop) of batch ``b`` in an epoch's row order."""
        start = b * self.size
        return start, min(start + self.size, self.n)
