"""How the gradients of one batch are computed: in this process (``Local``), or split across ranks by an object
that ``portnn.distributed`` supplies through ``fit(communicator=...)``. Training never imports the distributed code;
a communicator plugs in by offering ``data_parallel()`` that returns an object with these methods."""

from __future__ import annotations

from typing import Any, Protocol

from ..array.types import Array, Params
from .step import Step


class Parallel(Protocol):
    """The data-parallel strategy of one ``fit``."""

    def begin(self, net: Any, data: tuple[Array, Array], *, batch_size: int, epochs: int, shuffle: bool,
              steps: int | None = None) -> None:
        """Before the first step, on every rank: check that all agree, and give all the same weights."""

    def gradients(self, step: Step, params: Params, state: Params, x: Array, y: Array,
                  key: tuple[int, int]) -> tuple[Any, Params, Params, Array, Array]:
        """(global-batch loss, global-batch gradients, new state, this rank's output, this rank's targets)."""

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        """Metric counts summed over ranks."""


class Local:
    """One process: the batch's gradients are the step's own."""

    def begin(self, net: Any, data: tuple[Array, Array], *, batch_size: int, epochs: int, shuffle: bool,
              steps: int | None = None) -> None:
        return None

    def gradients(self, step: Step, params: Params, state: Params, x: Array, y: Array,
                  key: tuple[int, int]) -> tuple[Any, Params, Params, Array, Array]:
        value, grads, state, out = step.gradients(params, state, x, y, key)
        return value, grads, state, out, y

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        return counts


def strategy(communicator: Any) -> Parallel:
    """The Parallel for ``fit(communicator=...)``: Local for None, else ``communicator.data_parallel()``."""
    if communicator is None:
        return Local()
    make = getattr(communicator, "data_parallel", None)
    if not callable(make):
        raise TypeError(f"fit: communicator must be a portnn.distributed communicator or None, got "
                        f"{type(communicator).__name__}")
    return make()
