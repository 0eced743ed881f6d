"""Early stopping on a recorded quantity (as Keras' EarlyStopping): stop a fit once ``monitor`` has not improved by
more than ``min_delta`` for ``patience`` epochs, and optionally give the model back the weights of its best epoch."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..array.validation import BOOLEAN, INDEX, NON_NEGATIVE, Checked, Choice, Instance, Rule
from .callbacks import Callback, EpochEvent


class EarlyStopping(Checked, Callback):
    """Stop after ``patience`` epochs in a row in which ``monitor`` ('val_loss', 'val_accuracy', 'loss', ...) did not
    improve on its best by more than ``min_delta``; ``mode`` 'min', 'max' or 'auto' (max for accuracy, min
    otherwise). With ``restore_best`` the fit ends (stopped or not) with the parameters and layer state of the best
    epoch; the optimizer state and the epoch counter stay those of the last step, as in Keras."""

    constraints: ClassVar[dict[str, Rule]] = {
        "monitor": Instance(str, "a recorded name such as 'val_loss'"), "patience": INDEX, "min_delta": NON_NEGATIVE,
        "restore_best": BOOLEAN}

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best: bool = True) -> None:
        self.monitor, self.patience, self.min_delta, self.restore_best = monitor, patience, min_delta, restore_best
        mode = Choice("auto", "min", "max")(mode, "mode", "EarlyStopping")
        self.mode = ("max" if "accuracy" in monitor else "min") if mode == "auto" else mode
        self.begin([monitor])

    def begin(self, recorded: list[str]) -> None:
        """Check that the fit records ``monitor`` and start afresh."""
        if self.monitor not in recorded:
            hint = " (pass validation_data=... to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not recorded by this fit, which records "
                             f"{', '.join(recorded)}{hint}")
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch = 0
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: tuple[Any, Any] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch(self, event: EpochEvent) -> None:
        net, value = event.model, event.record[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, event.epoch, 0
            if self.restore_best:  # parameters are never changed in place, so references are a snapshot
                self.best_weights = ([dict(d) for d in net.params], [dict(d) for d in net.state])
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = event.epoch
                net.stop_training = True
        if (net.stop_training or event.final) and self.best_weights is not None \
                and self.best_epoch != event.epoch:
            net.params, net.state = self.best_weights
