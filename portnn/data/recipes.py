"""Named training recipes (model, data, loss, optimizer, steps) shared by the CLI, parity checks, tests and ci."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..nn import MSE, SSE, Conv2D, Dense, Dropout, Flatten, Loss, MaxPool2D, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh
from ..optim import SGD, Adam, Optimizer
from ..train.model import Sequential
from . import datasets, images


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
    test_data: Callable[[], tuple[Any, Any]] | None = None  # held-out host (X, y), never trained on
    metrics: tuple[str, ...] = ()  # reported besides the loss (empty: the loss's defaults)


def _seed_model(seed: int) -> Sequential:
    return Sequential(Dense(3, 4, bias=False, init="uniform"), Sigmoid(),
                      Dense(4, 1, bias=False, init="uniform"), Sigmoid(), seed=seed)


def _mlp_model(seed: int) -> Sequential:
    return Sequential(Dense(5, 16), Tanh(), Dense(16, 16), ReLU(), Dense(16, 2), seed=seed)


def _spiral_model(seed: int) -> Sequential:
    return Sequential(Dense(2, 64, init="he_uniform"), ReLU(), Dense(64, 64, init="he_uniform"), ReLU(),
                      Dense(64, 3), seed=seed)


def _digits_mlp_model(seed: int) -> Sequential:
    return Sequential(Dense(64, 128, init="he_uniform"), ReLU(), Dense(128, 64, init="he_uniform"), ReLU(),
                      Dense(64, 10), seed=seed)


def _digits_train() -> tuple[Any, Any]:
    return datasets.digits(seed=0)[:2]


def _digits_test() -> tuple[Any, Any]:
    return datasets.digits(seed=0)[2:]


def _digits_cnn_model(seed: int) -> Sequential:
    return Sequential(Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2),  # (N, 8, 4, 4)
                      Conv2D(8, 16, 3, padding=1), ReLU(), MaxPool2D(2),  # (N, 16, 2, 2)
                      Flatten(), Dense(64, 10), seed=seed)


def _dropout_cnn_model(seed: int) -> Sequential:
    return Sequential(Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2),  # (N, 4, 4, 4)
                      Dropout(0.25), Flatten(), Dense(64, 10), seed=seed)


RECIPES: dict[str, Recipe] = {
    "seed": Recipe("seed", "3-4-1 sigmoid net on XOR, SSE, full-batch gradient descent (the seed article)",
                   _seed_model, datasets.xor, SSE, SGD, lr=1.0, epochs=1500),
    "mlp": Recipe("mlp", "5-16-16-2 tanh/relu MLP with biases on a random regression set, MSE, batches of 16",
                  _mlp_model, lambda: datasets.regression(seed=1), MSE, SGD, lr=0.1, epochs=50, batch_size=16),
    "spiral": Recipe("spiral", "2-64-64-3 relu MLP on a 3-arm spiral (300 points), softmax cross-entropy, Adam, "
                     "batches of 32", _spiral_model, lambda: datasets.spiral(seed=0), SoftmaxCrossEntropy, Adam,
                     lr=0.01, epochs=100, batch_size=32, test_data=lambda: datasets.spiral(seed=1)),
    "digits-mlp": Recipe("digits-mlp", "64-128-64-10 relu MLP on scikit-learn's 8x8 digits (1347 train / 450 test), "
                         "softmax cross-entropy, Adam, batches of 32", _digits_mlp_model, _digits_train,
                         SoftmaxCrossEntropy, Adam, lr=0.001, epochs=30, batch_size=32, test_data=_digits_test),
    "digits-cnn": Recipe("digits-cnn", "conv 8 - pool - conv 16 - pool - dense 10 relu CNN on scikit-learn's "
                         "8x8 digits as 1x8x8 images, softmax cross-entropy, Adam, batches of 32", _digits_cnn_model,
                         lambda: images.digits_images(seed=0)[:2], SoftmaxCrossEntropy, Adam, lr=0.005,
                         epochs=20, batch_size=32, test_data=lambda: images.digits_images(seed=0)[2:]),
    "dropout-cnn": Recipe("dropout-cnn", "conv 4 - pool - dropout 0.25 - dense 10 relu CNN on 192 synthetic 8x8 "
                          "line images, softmax cross-entropy, Adam, batches of 32: dropout masks from the "
                          "counter-based generator on the device, the same on every backend", _dropout_cnn_model,
                          lambda: images.lines(seed=0),
                          SoftmaxCrossEntropy, Adam, lr=0.005, epochs=5, batch_size=32),
}


ALIASES: dict[str, str] = {"xor": "seed"}  # other names the CLI accepts for a recipe


def get(name: str) -> Recipe:
    """The recipe called ``name`` (or one of its ALIASES); ValueError listing the known ones otherwise."""
    name = ALIASES.get(name, name)
    if name not in RECIPES:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]
