"""Initialisers, drawn on the host from a seeded numpy Generator so every backend starts from the same numbers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Dense (in, out)."""
    return shape[0], shape[-1]


def uniform01(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U[0, 1), as the seed article's ``np.random.rand``."""
    return rng.random(shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def zeros(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """All zeros (biases); draws nothing from ``rng``."""
    return np.zeros(shape)


INITIALIZERS: dict[str, Initializer] = {"uniform": uniform01, "glorot_uniform": glorot_uniform, "zeros": zeros}


def initializer(name: str) -> Initializer:
    """The initialiser called ``name``; ValueError listing the known ones otherwise."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; known: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]


def draw(layers: list, seed: int) -> list[dict[str, np.ndarray]]:
    """Initial float64 host parameters of every layer, in order, from one Generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return [{k: np.asarray(v, dtype=np.float64) for k, v in layer.init_params(rng).items()} for layer in layers]
