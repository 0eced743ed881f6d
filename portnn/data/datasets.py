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


def digits(seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1797 images, shipped inside scikit-learn, no download), scaled to [0, 1].

    Returns (X_train, y_train, X_test, y_test): X float64 of shape (n, 64) (reshape to (n, 1, 8, 8) for a CNN),
    y int64 class labels 0-9. The split is stratified and drawn on the host from ``seed``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError('the digits data set needs scikit-learn: pip install "portnn[datasets]"') from err
    data = load_digits()
    X, y = data.data.astype(np.float64) / 16.0, data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        test[rng.choice(members, size=round(len(members) * test_fraction), replace=False)] = True
    return X[~test], y[~test], X[test], y[test]


def spiral(seed: int = 0, n_per_class: int = 100, classes: int = 3,
           noise: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spiral arms, one per class (not linearly separable): X float64 (n, 2) in about [-1, 1],
    y int64 class labels (n,), with n = n_per_class * classes, drawn on the host from ``seed``."""
    if n_per_class < 1 or classes < 2:
        raise ValueError(f"spiral: need n_per_class >= 1 and classes >= 2, got {n_per_class} and {classes}")
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    label = np.repeat(np.arange(classes, dtype=np.int64), n_per_class)
    angle = (np.tile(np.linspace(0.0, 4.0, n_per_class), classes) + label * (2 * np.pi / classes)
             + noise * rng.standard_normal(n_per_class * classes))
    X = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return X, label
