"""Named training recipes (model, data, loss, optimizer, steps) shared by the CLI, parity checks, tests and ci."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import datasets
from .activations import ReLU, Sigmoid, Tanh
from .dense import Dense
from .losses import MSE, SSE, Loss
from .optimizers import SGD, Optimizer
from .sequential import Sequential


@dataclass(frozen=True)
class Recipe:
    """Everything needed to train one model the same way on any backend."""

    name: str
    description: str
    model: Callable[[int], Sequential]  # seed -> fresh model
    data: Callable[[], tuple[Any, Any]]  # host (X, y)
    loss: Callable[[], Loss]
    optimizer: Callable[[float], Optimizer]  # lr -> optimizer
    lr: float
    epochs: int
    batch_size: int | None = None


def _seed_model(seed: int) -> Sequential:
    return Sequential(Dense(3, 4, bias=False, init="uniform"), Sigmoid(),
                      Dense(4, 1, bias=False, init="uniform"), Sigmoid(), seed=seed)


def _mlp_model(seed: int) -> Sequential:
    return Sequential(Dense(5, 16), Tanh(), Dense(16, 16), ReLU(), Dense(16, 2), seed=seed)


RECIPES: dict[str, Recipe] = {
    "seed": Recipe("seed", "3-4-1 sigmoid net on XOR, SSE, full-batch gradient descent (the seed article)",
                   _seed_model, datasets.xor, SSE, SGD, lr=1.0, epochs=1500),
    "mlp": Recipe("mlp", "5-16-16-2 tanh/relu MLP with biases on a random regression set, MSE, batches of 16",
                  _mlp_model, lambda: datasets.regression(seed=1), MSE, SGD, lr=0.1, epochs=50, batch_size=16),
}


def get(name: str) -> Recipe:
    """The recipe called ``name``; ValueError listing the known ones otherwise."""
    if name not in RECIPES:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]
