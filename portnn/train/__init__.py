"""Training: the model (Sequential), the one pure training step, the loop around it, and argument checks."""

from .callbacks import Callback, EpochEvent, StepEvent
from .early_stopping import EarlyStopping
from .history import History
from .model import Sequential

__all__ = ["Callback", "EarlyStopping", "EpochEvent", "History", "Sequential", "StepEvent"]
