"""Image-shaped example data for the CNN recipes, built on the host with NumPy."""

from __future__ import annotations

import numpy as np

from .datasets import digits


def digits_images(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``datasets.digits(seed)`` with X as NCHW images: (X_train (n, 1, 8, 8), y_train, X_test (m, 1, 8, 8), y_test)."""
    X_train, y_train, X_test, y_test = digits(seed)
    return X_train.reshape(-1, 1, 8, 8), y_train, X_test.reshape(-1, 1, 8, 8), y_test


def lines(seed: int = 0, n: int = 192, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 1 x size x size images, each one bright horizontal line (its row is the class, 0..size-1) on
    uniform noise: (X (n, 1, size, size) float64 in [0, 1.5), y (n,) int64). Needs nothing beyond NumPy."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, size, n)
    X = 0.5 * rng.random((n, 1, size, size))
    X[np.arange(n), 0, y, :] += 1.0
    return X, y.astype(np.int64)
