"""The learning rate of every step of a fit under a schedule: computed on the host from the schedule's counter (the
model's ``schedule_t``: steps or epochs trained under it), so eager and compiled training use the same numbers and a
resumed fit continues the schedule where the saved counter left it."""

from __future__ import annotations

from typing import Any


class Rates:
    """The rates of one fit: ``schedule`` (or None) applied to the optimizer's base rate ``base``."""

    def __init__(self, schedule: Any, base: float) -> None:
        self.schedule, self.base = schedule, base
        self.per_step = schedule is not None and schedule.interval == "step"

    def epoch(self, t: int, batches: int) -> list[float] | None:
        """The rate of each of an epoch's ``batches`` steps when its schedule counter starts at ``t`` (None without
        a schedule: the optimizer's own rate)."""
        if self.schedule is None:
            return None
        if self.per_step:
            return [self.schedule.lr(self.base, t + b) for b in range(batches)]
        return [self.schedule.lr(self.base, t)] * batches

    def advance(self, batches: int) -> int:
        """How far an epoch of ``batches`` steps moves the counter: its steps, or one epoch."""
        if self.schedule is None:
            return 0
        return batches if self.per_step else 1
