"""Callbacks: what ``fit`` reports after each step and each epoch (progress bars, parity traces, the MPI CLI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..array.validation import COUNT


@dataclass(frozen=True)
class StepEvent:
    """After a training step: 1-based epoch and batch, the step count of this fit, the batch's loss, and the model
    (already holding the updated, finite weights)."""

    epoch: int
    batch: int
    step: int
    loss: float
    model: Any


@dataclass(frozen=True)
class EpochEvent:
    """After an epoch: its 1-based number, what it recorded ('loss', metrics, 'val_*'), the model, and whether it
    is the last epoch of the fit (``final``)."""

    epoch: int
    record: dict[str, float]
    model: Any
    final: bool = False

    @property
    def loss(self) -> float:
        return self.record["loss"]


class Callback:
    """Base class: override either or both. A callback sees the model; if it changes the weights, training
    continues from them (once they are checked finite).

    ``every`` (default 1): ``on_epoch`` runs after every ``every``-th epoch of a fit and after its last, and only
    then; the history still records every epoch. A compiled full-batch fit runs the epochs in between as one
    compiled loop, so a progress report every 100 epochs costs one host read per 100 epochs."""

    every: int = 1

    def begin(self, recorded: list[str]) -> None:
        """Called when a fit starts, before any step, with the names each epoch will record ('loss', metrics,
        'val_*'): the place to check settings and reset per-fit state."""

    def on_step(self, event: StepEvent) -> None:
        """Called after every step (the loss is read on the host each step while a callback wants them)."""

    def on_epoch(self, event: EpochEvent) -> None:
        """Called after every ``every``-th epoch (and the last of a fit), once its record is in the history."""


class Progress(Callback):
    """``fit(progress=f)``: ``f(epoch, loss)`` after every epoch (every ``every``-th, and the last)."""

    def __init__(self, function: Callable[[int, float], Any], every: int = 1) -> None:
        self.function, self.every = function, every

    def on_epoch(self, event: EpochEvent) -> None:
        self.function(event.epoch, event.loss)


def due(callbacks: list[Callback], done: int, epochs: int) -> list[Callback]:
    """The callbacks whose ``on_epoch`` runs after epoch ``done`` (1-based) of a fit of ``epochs`` epochs."""
    return [c for c in callbacks if done % c.every == 0 or done == epochs]


def next_due(callbacks: list[Callback], done: int, epochs: int) -> int:
    """The first epoch after ``done`` (1-based count) at which a callback is due, or ``epochs`` (the last): found
    from each callback's ``every``, so a fit of 10**10 epochs costs nothing to plan."""
    return min([epochs, *(((done // c.every) + 1) * c.every for c in callbacks)])


def check_every(callbacks: list[Callback], where: str) -> None:
    """Each callback's ``every`` is a positive int (TypeError/ValueError naming the callback otherwise)."""
    for c in callbacks:
        COUNT(c.every, f"{type(c).__name__}.every", where)


def wants_steps(callbacks: list[Callback]) -> bool:
    """True when some callback overrides ``on_step`` (only then is every step reported)."""
    return any(type(c).on_step is not Callback.on_step for c in callbacks)
