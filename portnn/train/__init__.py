"""Training: the model (Sequential), the one pure training step, the loop around it, and argument checks."""

from .callbacks import Callback, EpochEvent, StepEvent
from .history import History
from .model import Sequential

__all__ = ["Callback", "EpochEvent", "History", "Sequential", "StepEvent"]
