"""Initialisers by name, drawn on the host from a seeded numpy Generator so every backend starts from the same
numbers; ``draw`` gives a model's initial parameters and state."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..array import random as host_random
from .layer import Layer

Initializer = Callable[[Any, tuple[int, ...]], Any]  # (numpy Generator, shape) -> host array


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Dense (in, out); convolution (out_channels, in_channels, *kernel) as PyTorch."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform01(rng: Any, shape: tuple[int, ...]) -> Any:
    """U[0, 1), as the seed article's ``np.random.rand``."""
    return rng.random(shape)


def glorot_uniform(rng: Any, shape: tuple[int, ...]) -> Any:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(rng: Any, shape: tuple[int, ...]) -> Any:
    """N(0, s^2) with s = sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return math.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape)


def he_uniform(rng: Any, shape: tuple[int, ...]) -> Any:
    """U(-a, a) with a = sqrt(6 / fan_in), for ReLU layers (He et al. 2015)."""
    limit = math.sqrt(6.0 / fans(shape)[0])
    return rng.uniform(-limit, limit, shape)


def he_normal(rng: Any, shape: tuple[int, ...]) -> Any:
    """N(0, s^2) with s = sqrt(2 / fan_in), for ReLU layers."""
    return math.sqrt(2.0 / fans(shape)[0]) * rng.standard_normal(shape)


def lecun_normal(rng: Any, shape: tuple[int, ...]) -> Any:
    """N(0, s^2) with s = sqrt(1 / fan_in), for SELU/tanh layers (LeCun 1998); not truncated, unlike Keras'."""
    return math.sqrt(1.0 / fans(shape)[0]) * rng.standard_normal(shape)


def torch_default(rng: Any, shape: tuple[int, ...]) -> Any:
    """U(-a, a) with a = 1 / sqrt(fan_in): PyTorch's Linear/Conv weight default, kaiming_uniform_(a=sqrt(5))."""
    limit = 1.0 / math.sqrt(fans(shape)[0])
    return rng.uniform(-limit, limit, shape)


def zeros(_rng: Any, shape: tuple[int, ...]) -> Any:
    """All zeros (biases); draws nothing from ``rng``."""
    return host_random.zeros(shape)


INITIALIZERS: dict[str, Initializer] = {
    "uniform": uniform01, "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he_uniform": he_uniform, "he_normal": he_normal, "lecun_normal": lecun_normal, "torch_default": torch_default,
    "zeros": zeros,
}
BIAS_INITIALIZERS = ("zeros", "torch_default")  # the bias_init choices of Dense, Conv1D and Conv2D


def initializer(name: str) -> Initializer:
    """The initialiser called ``name``; ValueError listing the known ones otherwise."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; known: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]


def check_bias_init(name: Any, owner: str) -> str:
    """``name`` if it is a bias initialiser; ValueError naming ``owner`` and listing the choices otherwise."""
    if not isinstance(name, str) or name not in BIAS_INITIALIZERS:
        raise ValueError(f"{owner}: bias_init must be one of {', '.join(map(repr, BIAS_INITIALIZERS))}, got {name!r}")
    return name


def bias(rng: Any, name: str, weight_shape: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """A bias of ``shape``: zeros (draws nothing), or 'torch_default' U(-a, a) with a = 1 / sqrt(fan_in of the
    weight), as PyTorch's Linear/Conv bias. Drawn after the weight, so the zeros default keeps old streams."""
    if check_bias_init(name, "bias") == "zeros":
        return zeros(rng, shape)
    limit = 1.0 / math.sqrt(fans(weight_shape)[0])
    return rng.uniform(-limit, limit, shape)


def _checked(layer: Layer, i: int, drawn: dict[str, Any], declared: dict[str, tuple[int, ...]], what: str) -> None:
    shapes = {k: tuple(v.shape) for k, v in drawn.items()}
    if shapes != declared:
        raise ValueError(f"Sequential: layer {i} ({layer!r}) made {what} {shapes} but declares {declared}; a layer "
                         "that overrides init/init_state must override param_shapes/state_shapes to match")


def draw(layers: list[Layer], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(parameters, state) of every layer as float64 host arrays: parameters from one Generator seeded with
    ``seed``, in layer order. A layer too large for this machine is a MemoryError naming it and its size."""
    rng = host_random.generator(seed)
    params, state = [], []
    for i, layer in enumerate(layers):
        declared = {k: tuple(int(d) for d in s) for k, s in layer.param_shapes().items()}
        try:
            drawn = {k: host_random.as_float64(v) for k, v in layer.init(rng).items()}
        except MemoryError as err:
            count = sum(math.prod(s) for s in declared.values())
            raise MemoryError(f"Sequential: layer {i} ({layer!r}) has {count:,} parameters ({count * 8 / 2**30:,.1f} "
                              "GiB as float64), more than this machine can allocate") from err
        _checked(layer, i, drawn, declared, "parameters")
        initial = {k: host_random.as_float64(v) for k, v in layer.init_state().items()}
        _checked(layer, i, initial, {k: tuple(s) for k, s in layer.state_shapes().items()}, "state")
        params.append(drawn)
        state.append(initial)
    return params, state
