"""Example data, built on the host with NumPy."""

from __future__ import annotations

import numpy as np


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The seed article's data: X (4, 3) integers (third column a constant 1), y (4, 1) = XOR of the first two."""
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    y = np.array([[0], [1], [1], [0]])
    return X, y


def regression(seed: int, n: int = 64, features: int = 5, outputs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random regression problem: X ~ N(0, 1) of shape (n, features), y = tanh(X @ A) of (n, outputs)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features))
    y = np.tanh(X @ rng.standard_normal((features, outputs)) / np.sqrt(features))
    return X, y
