"""How the gradients of one batch are computed: in this process (``Local``), or split across ranks by an object
that ``portnn.distributed`` supplies through ``fit(communicator=...)``. Training never imports the distributed code;
a communicator plugs in by offering ``data_parallel()`` that returns an object with these methods.

A data-parallel step is three parts, so that the two pure ones can be compiled around the collective:
``local`` (this rank's weighted gradients and loss packed into one flat buffer), ``reduce`` (the Allreduce, on the
host or on a device buffer) and ``unpack`` (the global loss and gradients from the summed buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..array.types import Array, Params
from .plan import Plan
from .state import TrainingState
from .step import Step

HostCall = Callable[[Callable[[Any], Any], Array], Array] | None  # Compiler.host_call inside compiled code


class Parallel(Protocol):
    """The data-parallel strategy of one ``fit``."""

    def begin(self, net: Any, s: TrainingState, data: tuple[Array, Array], plan: Plan) -> TrainingState:
        """Before the first step, on every rank: check that all agree; the state with rank 0's arrays."""

    def local(self, step: Step, params: Params, state: Params, x: Array, y: Array, key: tuple[Any, Any],
              host_call: HostCall) -> tuple[Array, Params, Array, Array]:
        """(this rank's weighted gradients and loss as one flat buffer, new state, its output, its targets)."""

    def reduce(self, packed: Array) -> Array:
        """The buffers of all ranks summed (a collective: every rank calls it in the same order)."""

    def unpack(self, total: Array, params: Params, step: Step) -> tuple[Array, Params]:
        """(global-batch loss, global-batch gradients) from the summed buffer."""

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        """Metric counts summed over ranks."""


class Local:
    """One process: the trainer computes the step's own gradients and calls only these two."""

    def begin(self, net: Any, s: TrainingState, data: tuple[Array, Array], plan: Plan) -> TrainingState:
        return s

    def sum_counts(self, counts: dict[str, float]) -> dict[str, float]:
        return counts


def strategy(communicator: Any) -> Any:
    """The Parallel for ``fit(communicator=...)``: Local for None, else ``communicator.data_parallel()``."""
    if communicator is None:
        return Local()
    make = getattr(communicator, "data_parallel", None)
    if not callable(make):
        raise TypeError(f"fit: communicator must be a portnn.distributed communicator or None, got "
                        f"{type(communicator).__name__}")
    return make()
