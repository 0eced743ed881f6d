"""The training state: everything a fit changes and a checkpoint restores, as one value.

``fit`` works on a copy and commits it at the end; a rollback is not committing. Checkpoints (``portnn.io``), the
scikit-learn snapshot, the ranks' agreement and parity read and write this one object field by field
(``dataclasses.fields``), so a new field is added here and nowhere else (``tests/train/test_state.py`` fails when a
consumer drops one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..array.types import Params
from ..nn.losses import Loss
from ..optim.optimizer import Optimizer, OptState
from ..optim.schedules import Schedule

ARRAYS = ("params", "state", "optimizer_state")  # the fields holding arrays (trees); the others are host values


@dataclass(frozen=True)
class TrainingState:
    """Parameters, layer state and optimizer state (trees of arrays), the counters, the history, and the settings of
    the last fit that a second fit (or a loaded checkpoint) continues with. ``history`` lists belong to the state:
    ``fit`` copies them once and appends to its copy."""

    params: Params = field(default_factory=list)  # one {name: array} per layer
    state: Params = field(default_factory=list)  # non-trainable layer state (BatchNorm's running statistics)
    optimizer_state: OptState = field(default_factory=dict)  # {slot: tree or 0-d counter}, owned by this model
    loss: Loss | None = None
    optimizer: Optimizer | None = None
    metrics: list[str] | None = None
    schedule: Schedule | None = None
    clip_norm: float | None = None  # gradient clipping by global norm
    shuffle_seed: int | None = None  # the seed given to fit (None: the model's seed)
    epoch: int = 0  # epochs trained so far (shuffles and dropout keys are keyed by it)
    schedule_t: int = 0  # steps or epochs trained under ``schedule`` (a resumed fit continues it)
    history: dict[str, list[float]] = field(default_factory=dict)  # 'loss', metrics, 'val_*': one value per epoch

    def evolve(self, **changes: Any) -> TrainingState:
        """This state with ``changes``: ``dataclasses.replace`` without its checks (the training loop calls this
        once per run of epochs, where replace would cost a tenth of a small network's step)."""
        new = object.__new__(TrainingState)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def arrays(self) -> dict[str, Any]:
        """The array fields as one tree {'params': ..., 'state': ..., 'optimizer_state': ...}."""
        return {name: getattr(self, name) for name in ARRAYS}

    def with_arrays(self, arrays: dict[str, Any]) -> TrainingState:
        """This state with the array fields of ``arrays`` (a tree as ``arrays()`` gives)."""
        return replace(self, **arrays)

    def values(self) -> dict[str, Any]:
        """Every field by name (for consumers that walk the state: checkpoints, snapshots, agreement)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def owned(self) -> TrainingState:
        """A state whose history lists are its own (``fit`` appends to them)."""
        return replace(self, history={k: list(v) for k, v in self.history.items()})


FIELDS = tuple(f.name for f in fields(TrainingState))
