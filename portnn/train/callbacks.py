"""Callbacks: what ``fit`` reports after each step and each epoch (progress bars, parity traces, the MPI CLI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
    """After an epoch: its 1-based number, what it recorded ('loss', metrics, 'val_*') and the model."""

    epoch: int
    record: dict[str, float]
    model: Any

    @property
    def loss(self) -> float:
        return self.record["loss"]


class Callback:
    """Base class: override either or both. A callback sees the model; if it changes the weights, training
    continues from them (once they are checked finite)."""

    def on_step(self, event: StepEvent) -> None:
        """Called after every step (the loss is read on the host each step while a callback wants them)."""

    def on_epoch(self, event: EpochEvent) -> None:
        """Called after every epoch, once its record is in the history."""


class Progress(Callback):
    """``fit(progress=f)``: ``f(epoch, loss)`` after every epoch."""

    def __init__(self, function: Callable[[int, float], Any]) -> None:
        self.function = function

    def on_epoch(self, event: EpochEvent) -> None:
        self.function(event.epoch, event.loss)


def wants_steps(callbacks: list[Callback]) -> bool:
    """True when some callback overrides ``on_step`` (only then is every step reported)."""
    return any(type(c).on_step is not Callback.on_step for c in callbacks)
