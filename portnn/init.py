"""Initialisers, drawn on the host from a seeded numpy Generator so every backend starts from the same numbers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initializer = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Dense (in, out); convolution (out_channels, in_channels, *kernel) as PyTorch."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def uniform01(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U[0, 1), as the seed article's ``np.random.rand``."""
    return rng.random(shape)


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, s^2) with s = sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return np.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape)


def he_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / fan_in), for ReLU layers (He et al. 2015)."""
    limit = np.sqrt(6.0 / _fans(shape)[0])
    return rng.uniform(-limit, limit, shape)


def he_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """N(0, s^2) with s = sqrt(2 / fan_in), for ReLU layers."""
    return np.sqrt(2.0 / _fans(shape)[0]) * rng.standard_normal(shape)


def zeros(_rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """All zeros (biases); draws nothing from ``rng``."""
    return np.zeros(shape)


INITIALIZERS: dict[str, Initializer] = {
    "uniform": uniform01, "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he_uniform": he_uniform, "he_normal": he_normal, "zeros": zeros,
}


def initializer(name: str) -> Initializer:
    """The initialiser called ``name``; ValueError listing the known ones otherwise."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; known: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]


def draw(layers: list, seed: int) -> list[dict[str, np.ndarray]]:
    """Initial float64 host parameters of every layer, in order, from one Generator seeded with ``seed``.

    Each layer's draw must have the shapes its ``param_shapes()`` declares (a ValueError naming it otherwise); a
    layer too large for this machine's memory is a MemoryError naming it and its size."""
    rng = np.random.default_rng(seed)
    out = []
    for i, layer in enumerate(layers):
        declared = {k: tuple(int(d) for d in s) for k, s in layer.param_shapes().items()}
        try:
            params = {k: np.asarray(v, dtype=np.float64) for k, v in layer.init_params(rng).items()}
        except MemoryError as err:
            count = sum(math.prod(s) for s in declared.values())
            raise MemoryError(f"Sequential: layer {i} ({layer!r}) has {count:,} parameters ({count * 8 / 2**30:,.1f} "
                              "GiB as float64), more than this machine can allocate") from err
        drawn = {k: tuple(v.shape) for k, v in params.items()}
        if drawn != declared:
            raise ValueError(f"Sequential: layer {i} ({layer!r}) drew parameters {drawn} but its param_shapes() "
                             f"declares {declared}; a layer that overrides init_params must override param_shapes")
        out.append(params)
    return out
