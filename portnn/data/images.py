"""Image-shaped example data for the CNN recipes, built on the host with NumPy."""

from __future__ import annotations

import numpy as np

from .datasets import digits


def digits_images(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``datasets.digits(seed)`` with X as NCHW images: (X_train (n, 1, 8, 8), y_train, X_test (m, 1, 8, 8), y_test)."""
    X_train, y_train, X_test, y_test = digits(seed)
    return X_train.reshape(-1, 1, 8, 8), y_train, X_test.reshape(-1, 1, 8, 8), y_test
