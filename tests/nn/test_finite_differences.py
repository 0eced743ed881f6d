"""One gradient check for every layer: each registered layer's backward against central differences of its forward
(``portnn.testing.gradcheck_layer``: dL/dx and every dL/dparam of L = sum(layer(x) * R)), in training (BatchNorm's
batch statistics, dropout masks from the fixed key), float64, on every backend. The table holds at least one entry per
registered layer (a new layer fails ``test_every_layer_is_checked`` until it has one) and the configurations whose
backward takes another branch (no bias, stride, padding, overlapping pools, both directions, causal masks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import portnn
from portnn.nn import LAYERS
from portnn.testing import gradcheck_layer

RNG = np.random.default_rng(7)


def away_from_kinks(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values at least 0.1 from 0 and from each other (ReLU, LeakyReLU, ELU kinks; no max-pool near-ties)."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.05
    return np.where(np.arange(values.size).reshape(shape) % 2 == 0, values, -values)


def smooth(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * 2.0


_S = smooth((3, 2, 5), 8)
Entry = tuple[Callable[[], portnn.Layer], np.ndarray]
CHECKS: dict[str, Entry] = {
    # dense and element-wise
    "Dense": (lambda: portnn.Dense(3, 4), smooth((5, 3))),
    "Dense-no-bias": (lambda: portnn.Dense(3, 4, bias=False), smooth((5, 3))),
    "Dense-he-normal": (lambda: portnn.Dense(4, 3, init="he_normal"), smooth((5, 4))),
    "Dense-3d": (lambda: portnn.Dense(3, 2, bias_init="torch_default"), smooth((2, 4, 3))),
    "Sigmoid": (portnn.Sigmoid, smooth((5, 3))),
    "Tanh": (portnn.Tanh, smooth((5, 3))),
    "ReLU": (portnn.ReLU, away_from_kinks((5, 3))),
    "LeakyReLU": (lambda: portnn.LeakyReLU(0.1), away_from_kinks((5, 4))),
    "Softmax": (portnn.Softmax, smooth((5, 4))),
    "Identity": (portnn.Identity, smooth((5, 4))),
    "GELU": (portnn.GELU, _S),
    "SiLU": (portnn.SiLU, _S),
    "Softplus": (portnn.Softplus, _S),
    # beta x crosses the threshold (1.5) away from the inputs: the tiny jump there is not stepped over
    "Softplus-beta3-thr1.5": (lambda: portnn.Softplus(3.0, 1.5), np.where(np.abs(_S * 3 - 1.5) < 0.1, 0.0, _S)),
    "ELU": (lambda: portnn.ELU(0.7), away_from_kinks((3, 2, 5))),
    "Dropout": (lambda: portnn.Dropout(0.4), smooth((5, 6))),
    # convolutions and pools
    "Conv2D": (lambda: portnn.Conv2D(2, 3, 3, padding=1), away_from_kinks((2, 2, 5, 5), 3)),
    "Conv2D-s2-no-bias": (lambda: portnn.Conv2D(2, 2, (3, 2), stride=2, bias=False), away_from_kinks((2, 2, 5, 5), 3)),
    "Conv1D": (lambda: portnn.Conv1D(2, 3, 3, stride=2, padding=1, bias_init="torch_default"), _S),
    "Conv1D-no-bias": (lambda: portnn.Conv1D(2, 2, 2, bias=False), _S),
    "MaxPool2D": (lambda: portnn.MaxPool2D(3, stride=2), away_from_kinks((2, 2, 5, 5), 3)),
    "AvgPool2D": (lambda: portnn.AvgPool2D(2), smooth((2, 2, 5, 5))),
    "Flatten": (portnn.Flatten, smooth((2, 2, 3, 3))),
    "GlobalAvgPool1D": (portnn.GlobalAvgPool1D, _S),
    "GlobalAvgPool2D": (portnn.GlobalAvgPool2D, _S.reshape(3, 2, 1, 5)),
    # normalisation and residual blocks
    "BatchNorm1d": (lambda: portnn.BatchNorm1d(3), smooth((7, 3))),
    "BatchNorm1d-3d": (lambda: portnn.BatchNorm1d(3, momentum=0.3), smooth((5, 3, 4))),
    "BatchNorm2d": (lambda: portnn.BatchNorm2d(2, eps=1e-3), smooth((4, 2, 3, 5))),
    "BatchNorm2d-no-affine": (lambda: portnn.BatchNorm2d(2, affine=False), smooth((3, 2, 2, 2))),
    "LayerNorm": (lambda: portnn.LayerNorm(6), smooth((4, 6))),
    "LayerNorm-2axes": (lambda: portnn.LayerNorm((3, 4)), smooth((2, 5, 3, 4))),
    "Residual": (lambda: portnn.Residual(portnn.Dense(4, 4), portnn.ReLU(),
                                         portnn.Residual(portnn.Dense(4, 4), portnn.Tanh()), portnn.LayerNorm(4)),
                 smooth((3, 4))),
    # sequences (small: every parameter is differenced, two forward passes each)
    "GRU-bi-seq": (lambda: portnn.GRU(2, 3, return_sequences=True, bidirectional=True), smooth((2, 3, 2))),
    "GRU-bi": (lambda: portnn.GRU(2, 3, bidirectional=True), smooth((2, 3, 2))),
    "LSTM-bi-seq": (lambda: portnn.LSTM(2, 2, return_sequences=True, bidirectional=True), smooth((2, 3, 2))),
    "LSTM": (lambda: portnn.LSTM(2, 3), smooth((2, 3, 2))),
    "MultiHeadAttention": (lambda: portnn.MultiHeadAttention(4, 2), smooth((2, 3, 4))),
    "MultiHeadAttention-causal": (lambda: portnn.MultiHeadAttention(4, 2, causal=True), smooth((2, 3, 4))),
    "MultiHeadAttention-causal-no-bias": (lambda: portnn.MultiHeadAttention(4, 1, causal=True, bias=False),
                                          smooth((2, 3, 4))),
    # the mask is a fixed function of the key: backward must multiply by the forward's very mask
    "MultiHeadAttention-dropout": (lambda: portnn.MultiHeadAttention(4, 2, causal=True, dropout=0.4),
                                   smooth((2, 3, 4))),
    "Embedding": (lambda: portnn.Embedding(4, 3), np.array([[0, 1, 1, 3, 0], [3, 3, 2, 1, 0]])),  # ids repeat
    "PositionalEmbedding": (lambda: portnn.PositionalEmbedding(5, 3), smooth((2, 4, 3))),
    "LastStep": (portnn.LastStep, smooth((2, 4, 3))),
    "GlobalAvgPoolTime": (portnn.GlobalAvgPoolTime, smooth((2, 4, 3))),
}


def test_every_layer_is_checked() -> None:
    built_in = {name for name, cls in LAYERS.items() if cls.__module__.startswith("portnn.")}
    checked = {type(make()).__name__ for make, _ in CHECKS.values()}
    assert built_in <= checked, f"no gradient check for {sorted(built_in - checked)}"


def _params(layer: portnn.Layer, rng: np.random.Generator) -> dict[str, Any]:
    """The layer's initial parameters moved off their starting values (biases off zero, norms' weights off one), so
    that a wrong term in any gradient shows."""
    return {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in layer.init(rng).items()}


@pytest.mark.parametrize("name", CHECKS)
def test_gradients_equal_finite_differences(case64, name: str) -> None:
    make, x = CHECKS[name]
    layer = make()
    params = _params(layer, np.random.default_rng(13))
    err = gradcheck_layer(layer, x, case64.xp, case64.device, params=params, seed=3)
    assert err < 1e-7, f"{name}: scaled gradient error {err:.2e}"
