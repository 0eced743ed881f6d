"""Optimizers as pure updates over parameter trees (a list with one {name: array} per layer)."""

from .adam import Adam
from .optimizer import OPTIMIZERS, Optimizer, OptState
from .sgd import SGD

__all__ = ["OPTIMIZERS", "SGD", "Adam", "OptState", "Optimizer"]
