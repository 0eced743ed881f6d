"""Running totals of one pass over data, shared by the training loop and ``evaluate``: the loss on the host, the
metric counts summed on the device and read once."""

from __future__ import annotations

from collections.abc import Callable

from ..array import host
from ..array.types import Array, Namespace
from ..nn import metrics
from ..nn.losses import Loss


class Totals:
    """Sums the batch losses (weighted by rows for a mean-reduction loss) and metric counts of one pass."""

    def __init__(self, loss: Loss, names: list[str], xp: Namespace) -> None:
        self.per_sample, self.loss = loss.reduction != "sum", loss
        self.names, self.xp = names, xp
        self.reset()

    def reset(self) -> None:
        """Start a new pass."""
        self.total = 0.0
        self.counts: dict[str, Array] = {}

    def add(self, value: float, rows: int, out: Array, y: Array) -> None:
        """One batch: its loss ``value`` over ``rows`` rows, its outputs and the targets they were compared with."""
        self.total += value * rows if self.per_sample else value
        if not self.names:
            return
        for name in self.names:
            count = metrics.METRICS[name](out, y, self.xp, self.loss)
            self.counts[name] = count if name not in self.counts else self.counts[name] + count

    def result(self, rows: int, sum_counts: Callable[[dict[str, float]], dict[str, float]] | None = None
               ) -> dict[str, float]:
        """{'loss': ..., metric: fraction, ...} over ``rows`` rows (``sum_counts`` adds other ranks' counts)."""
        record = {"loss": self.total / rows if self.per_sample else self.total}
        if self.names:
            counts = {name: host.to_float(self.counts[name]) for name in self.names}
            if sum_counts is not None:
                counts = sum_counts(counts)
            record.update({name: counts[name] / rows for name in self.names})
        return record
