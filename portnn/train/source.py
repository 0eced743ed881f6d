"""Where a fit's rows come from: arrays on the model's device (``Resident``: a batch is a take of its rows), or host
arrays for a model on another device (``Streamed``: NumPy arrays or memory maps, ``np.load(..., mmap_mode="r")``,
copied one batch at a time, the next batch's copy started before the current step runs, so the device holds a few
batches and the model, never the data set). Both give the same batches, so training equals training on
device-resident data bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..array import host
from ..array.placement import Placement
from ..array.types import Array
from .plan import Plan


class Resident:
    """(X, y) on the model's device."""

    streams = False

    def __init__(self, X: Array, y: Array, p: Placement) -> None:
        self.X, self.y, self.p = X, y, p
        self.n = X.shape[0]

    def whole(self) -> tuple[Array, Array]:
        """Every row as one batch, in order."""
        return self.X, self.y

    def rows(self, order: Any) -> tuple[Array, Array]:
        """The rows of a host index array, in its order, on the device."""
        idx = host.from_numpy(order, self.p.xp, device=self.p.device, dtype=self.p.index_dtype)
        return self.p.xp.take(self.X, idx, axis=0), self.p.xp.take(self.y, idx, axis=0)


class Streamed(Resident):
    """(X, y) on the host, for a model on ``p``'s device: batches are copied in as they are needed."""

    streams = True

    def __init__(self, X: Any, y: Any, p: Placement, x_dtype: Any, y_dtype: Any) -> None:
        super().__init__(X, y, p)
        self.x_dtype, self.y_dtype = x_dtype, y_dtype  # None: the host array's own (integer ids and labels)
        self._whole: tuple[Array, Array] | None = None

    def whole(self) -> tuple[Array, Array]:
        if self._whole is None:  # full-batch training: one copy per fit
            self._whole = self._put(self.X, self.y)
        return self._whole

    def rows(self, order: Any) -> tuple[Array, Array]:
        return self._put(self.X[order], self.y[order])  # a memory map reads only these rows

    def _put(self, x: Any, y: Any) -> tuple[Array, Array]:
        p = self.p
        return (host.from_numpy(x, p.xp, device=p.device, dtype=self.x_dtype),
                host.from_numpy(y, p.xp, device=p.device, dtype=self.y_dtype))


def batches(data: Resident, plan: Plan, e: int) -> Iterator[tuple[Array, Array]]:
    """The batches of this fit's epoch ``e`` (the plan's row order), each batch's copy issued before the previous
    one is handed over for its step: on a backend that copies asynchronously (JAX, CUDA), the next batch travels
    while this one trains."""
    if plan.full_batch:
        yield data.whole()
        return
    order = plan.order(e)
    order = host.indices(0, plan.n) if order is None else order
    count = plan.batches(e)
    ahead = data.rows(order[slice(*plan.span(0))])
    for b in range(count):
        current = ahead
        if b + 1 < count:
            ahead = data.rows(order[slice(*plan.span(b + 1))])
        yield current
