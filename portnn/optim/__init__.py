"""Optimizers as pure updates over parameter trees (a list with one {name: array} per layer), learning-rate
schedules and gradient clipping."""

from .adam import Adam
from .adamw import AdamW
from .clip import clip_by_global_norm
from .optimizer import OPTIMIZERS, Optimizer, OptState
from .rmsprop import RMSprop
from .schedules import SCHEDULES, CosineAnnealing, ExponentialLR, Schedule, StepLR, schedule_from_config
from .sgd import SGD

__all__ = ["OPTIMIZERS", "SCHEDULES", "SGD", "Adam", "AdamW", "CosineAnnealing", "ExponentialLR", "OptState",
           "Optimizer", "RMSprop", "Schedule", "StepLR", "clip_by_global_norm", "schedule_from_config"]
