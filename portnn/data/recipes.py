"""Named training recipes (model, data, loss, optimizer, steps) shared by the CLI, parity checks, tests and ci."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..nn import (
    GRU,
    MSE,
    SSE,
    BatchNorm2d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Loss,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
)
from ..optim import SGD, Adam, AdamW, CosineAnnealing, Optimizer, Schedule
from ..train.model import Sequential
from . import datasets, images, sequences
from .gpt import gpt, sorted_correctly


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
    schedule: Callable[[int], Schedule] | None = None  # epochs -> learning-rate schedule over them
    clip_norm: float | None = None  # gradient clipping by global norm
    report: Callable[[Sequential], list[str]] | None = None  # lines the CLI prints about the trained model

    def controls(self, epochs: int) -> dict[str, Any]:
        """The fit keywords of this recipe's schedule and clipping for a run of ``epochs`` epochs."""
        out: dict[str, Any] = {}
        if self.schedule is not None:
            out["schedule"] = self.schedule(max(epochs, 1))
        if self.clip_norm is not None:
            out["clip_norm"] = self.clip_norm
        return out


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


def _block(channels: int) -> Residual:
    """conv - BN - relu - conv - BN, added to its input (a ResNet basic block; no conv bias before a BatchNorm)."""
    return Residual(Conv2D(channels, channels, 3, padding=1, bias=False), BatchNorm2d(channels), ReLU(),
                    Conv2D(channels, channels, 3, padding=1, bias=False), BatchNorm2d(channels))


def _digits_resnet_model(seed: int) -> Sequential:
    return Sequential(Conv2D(1, 16, 3, padding=1, bias=False), BatchNorm2d(16), ReLU(),  # (N, 16, 8, 8)
                      _block(16), ReLU(), MaxPool2D(2),  # (N, 16, 4, 4)
                      _block(16), ReLU(), GlobalAvgPool2D(),  # (N, 16)
                      Dense(16, 10), seed=seed)


def _resnet_lines_model(seed: int) -> Sequential:
    return Sequential(Conv2D(1, 4, 3, padding=1, bias=False), BatchNorm2d(4), ReLU(),  # (N, 4, 8, 8)
                      Residual(Conv2D(4, 4, 3, padding=1, bias=False), BatchNorm2d(4)), ReLU(),
                      MaxPool2D(2), Flatten(), Dense(64, 8), seed=seed)  # (N, 64) -> 8 classes


def _dropout_cnn_model(seed: int) -> Sequential:
    return Sequential(Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2),  # (N, 4, 4, 4)
                      Dropout(0.25), Flatten(), Dense(64, 10), seed=seed)


SORT_LENGTH = 6  # minGPT's sort demo: 6 digits of 0-2


def _sort_gpt_model(seed: int) -> Sequential:
    return gpt(3, 2 * SORT_LENGTH - 1, 48, 3, 3, 0.1, seed)  # minGPT's 'gpt-nano'


def _sort_train() -> tuple[Any, Any]:
    return sequences.sort_problems(6400, "train", seed=0)  # 100 batches of 64 per epoch


def _sort_test() -> tuple[Any, Any]:
    return sequences.sort_problems(5000, "test", seed=1)


def _sort_report(model: Sequential) -> list[str]:
    """minGPT's score: greedy decoding of 5,000 training-split and the 5,000 test-split prompts."""
    lines = []
    for split, X in (("train", _sort_train()[0][:5000]), ("test", _sort_test()[0])):
        fraction = sorted_correctly(model, X, SORT_LENGTH)
        lines.append(f"{split} sorted correctly (greedy): {fraction:.2%} ({round(fraction * len(X))}/{len(X)})")
    return lines


def _minGPT_adamw(lr: float) -> Optimizer:
    """minGPT's trainer: AdamW, betas (0.9, 0.95), weight decay 0.1 on the weights of linear maps only."""
    return AdamW(lr, betas=(0.9, 0.95), weight_decay=0.1)


def _adding_gru_model(seed: int) -> Sequential:
    return Sequential(GRU(2, 32), Dense(32, 1), seed=seed)


def _tiny_gru_model(seed: int) -> Sequential:
    return Sequential(GRU(2, 8), Dense(8, 1), seed=seed)


def _tiny_gpt_model(seed: int) -> Sequential:
    return gpt(3, 7, 16, 2, 1, 0.1, seed, attention_bias=False)  # one block; dropout everywhere minGPT has it


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
    "digits-resnet": Recipe("digits-resnet", "residual CNN (conv 16 - BN - 2 residual blocks of conv-BN-relu-conv-BN "
                            "- global average pool - dense 10) on scikit-learn's 8x8 digits, softmax cross-entropy, "
                            "Adam with linear warm-up and cosine annealing per epoch, gradient clipping at norm 5, "
                            "batches of 32", _digits_resnet_model, lambda: images.digits_images(seed=0)[:2],
                            SoftmaxCrossEntropy, Adam, lr=0.01, epochs=15, batch_size=32,
                            test_data=lambda: images.digits_images(seed=0)[2:],
                            schedule=lambda epochs: CosineAnnealing(epochs, warmup=min(2, epochs - 1)), clip_norm=5.0),
    "dropout-cnn": Recipe("dropout-cnn", "conv 4 - pool - dropout 0.25 - dense 10 relu CNN on 192 synthetic 8x8 "
                          "line images, softmax cross-entropy, Adam, batches of 32: dropout masks from the "
                          "counter-based generator on the device, the same on every backend", _dropout_cnn_model,
                          lambda: images.lines(seed=0),
                          SoftmaxCrossEntropy, Adam, lr=0.005, epochs=5, batch_size=32),
    "resnet-lines": Recipe("resnet-lines", "conv 4 - BN - residual conv-BN block - pool - dense 8 on 192 synthetic 8x8 "
                           "line images, softmax cross-entropy, Adam with warm-up + cosine annealing per step, "
                           "gradient clipping at norm 1, batches of 32: BatchNorm state, schedules and clipping, "
                           "the same on every backend", _resnet_lines_model, lambda: images.lines(seed=0),
                           SoftmaxCrossEntropy, Adam, lr=0.01, epochs=5, batch_size=32,
                           schedule=lambda epochs: CosineAnnealing(6 * epochs, warmup=5, interval="step"),
                           clip_norm=1.0),
    "sort-gpt": Recipe("sort-gpt", "minGPT's sort demo: a GPT (gpt-nano: 3 blocks of causal 3-head attention and "
                       "GELU MLP, 48 wide, dropout 0.1, 0.09M parameters) sorts 6 digits of 0-2, softmax cross-entropy "
                       "on the 6 answer positions, AdamW (betas 0.9/0.95, weight decay 0.1 on linear weights), "
                       "gradient clipping at norm 1, 20 epochs of 100 batches of 64 (2,000 steps); a stable hash "
                       "holds a quarter of all sequences out for test", _sort_gpt_model, _sort_train,
                       lambda: SoftmaxCrossEntropy(ignore_index=-1), _minGPT_adamw, lr=5e-4, epochs=20, batch_size=64,
                       test_data=_sort_test, clip_norm=1.0, report=_sort_report),
    "adding-gru": Recipe("adding-gru", "the adding problem (Hochreiter & Schmidhuber) over 50 steps: a GRU of 32 and "
                         "a dense head sum the two marked values of 5,000 sequences, MSE (predicting 1 scores about "
                         "0.167), Adam, batches of 64", _adding_gru_model, lambda: sequences.adding(5000, seed=0),
                         MSE, Adam, lr=0.01, epochs=10, batch_size=64,
                         test_data=lambda: sequences.adding(1000, seed=1)),
    "tiny-gru": Recipe("tiny-gru", "a GRU of 8 and a dense head on 64 adding problems of 10 steps, MSE, Adam, batches "
                       "of 16, 32 steps: pins the recurrent layer's numerics (backpropagation through time)",
                       _tiny_gru_model, lambda: sequences.adding(64, seed=0, steps=10), MSE, Adam, lr=0.02, epochs=8,
                       batch_size=16),
    "tiny-gpt": Recipe("tiny-gpt", "a one-block GPT (16 wide, 2 causal heads without biases, dropout 0.1 on the "
                       "embeddings, attention and residuals) sorting 4 digits of 0-2, 64 sequences, AdamW with "
                       "clipping at norm 1, batches of 16, 32 steps: pins attention, LayerNorm, GELU, embeddings and "
                       "the dropout masks",
                       _tiny_gpt_model, lambda: sequences.sort_problems(64, "train", seed=0, length=4),
                       lambda: SoftmaxCrossEntropy(ignore_index=-1), _minGPT_adamw, lr=0.01, epochs=8, batch_size=16,
                       clip_norm=1.0),
}


ALIASES: dict[str, str] = {"xor": "seed"}  # other names the CLI accepts for a recipe


def get(name: str) -> Recipe:
    """The recipe called ``name`` (or one of its ALIASES); ValueError listing the known ones otherwise."""
    name = ALIASES.get(name, name)
    if name not in RECIPES:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]
