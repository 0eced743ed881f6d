"""The layer contract on every built-in layer and backend: forward/backward are pure functions of their arguments,
the layer object keeps no arrays, and ``ctx.need_dx=False`` gives dx None with the very same parameter gradients."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import portnn
from portnn import to_numpy
from portnn.nn import LAYERS

# every built-in layer with an input shape it accepts
BUILT_IN = {
    "Dense": (lambda: portnn.Dense(6, 4), (5, 6)),
    "Conv2D": (lambda: portnn.Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 5, 6)),
    "MaxPool2D": (lambda: portnn.MaxPool2D(2), (2, 3, 4, 6)),
    "AvgPool2D": (lambda: portnn.AvgPool2D((2, 3), stride=1), (2, 3, 4, 6)),
    "Flatten": (portnn.Flatten, (2, 3, 4, 5)),
    "Dropout": (lambda: portnn.Dropout(0.5), (5, 6)),
    "Sigmoid": (portnn.Sigmoid, (5, 6)),
    "Tanh": (portnn.Tanh, (5, 6)),
    "ReLU": (portnn.ReLU, (5, 6)),
    "LeakyReLU": (lambda: portnn.LeakyReLU(0.1), (5, 6)),
    "Softmax": (portnn.Softmax, (5, 6)),
    "Identity": (portnn.Identity, (5, 6)),
    "GELU": (portnn.GELU, (5, 6)),
    "SiLU": (portnn.SiLU, (5, 6)),
    "Softplus": (lambda: portnn.Softplus(2.0, 3.0), (5, 6)),
    "ELU": (lambda: portnn.ELU(0.5), (5, 6)),
    "GlobalAvgPool1D": (portnn.GlobalAvgPool1D, (2, 3, 7)),
    "GlobalAvgPool2D": (portnn.GlobalAvgPool2D, (2, 3, 4, 5)),
    "Conv1D": (lambda: portnn.Conv1D(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    "BatchNorm1d": (lambda: portnn.BatchNorm1d(6), (5, 6)),
    "BatchNorm2d": (lambda: portnn.BatchNorm2d(3), (2, 3, 4, 5)),
    "LayerNorm": (lambda: portnn.LayerNorm(6), (5, 6)),
    "Residual": (lambda: portnn.Residual(portnn.Dense(6, 6), portnn.Dropout(0.3), portnn.LayerNorm(6)), (5, 6)),
    "GRU": (lambda: portnn.GRU(3, 4, return_sequences=True, bidirectional=True), (2, 5, 3)),
    "LSTM": (lambda: portnn.LSTM(3, 4, bidirectional=True), (2, 5, 3)),
    "MultiHeadAttention": (lambda: portnn.MultiHeadAttention(6, 2, causal=True, dropout=0.3), (2, 5, 6)),
    "Embedding": (lambda: portnn.Embedding(7, 3), (2, 5)),
    "PositionalEmbedding": (lambda: portnn.PositionalEmbedding(6, 3), (2, 5, 3)),
    "LastStep": (portnn.LastStep, (2, 5, 3)),
    "GlobalAvgPoolTime": (portnn.GlobalAvgPoolTime, (2, 5, 3)),
}
IDS = {"Embedding": 7}  # layers whose input is integer ids below this count (no input gradient: dx is None)


def _input(name: str, shape: tuple[int, ...], rng: np.random.Generator, case) -> tuple[np.ndarray, object]:
    if name in IDS:
        ids = rng.integers(0, IDS[name], shape)
        return ids, case.asarray(ids, dtype=case.ints)
    x = rng.standard_normal(shape)
    return x, case.asarray(x)


def test_every_built_in_layer_is_covered() -> None:
    built_in = {name for name, cls in LAYERS.items() if cls.__module__.startswith("portnn.")}
    assert built_in == set(BUILT_IN)


def _pass(layer: portnn.Layer, params: dict, x, dy, ctx: portnn.Context) -> tuple:
    y, saved = layer.forward(params, x, ctx)
    return (y, *layer.backward(params, saved, dy, ctx))


@pytest.mark.parametrize("name", BUILT_IN)
def test_pure_functions_of_their_arguments(case, name: str) -> None:
    make, shape = BUILT_IN[name]
    layer = make()
    rng = np.random.default_rng(0)
    host_params = layer.init(rng)
    assert {k: v.shape for k, v in host_params.items()} == layer.param_shapes()
    params = {k: case.asarray(v) for k, v in host_params.items()}
    x_host, x = _input(name, shape, rng, case)
    dy = case.asarray(rng.standard_normal(layer.output_shape(shape, "test")))
    config = dict(vars(layer))
    ctx = portnn.Context(case.xp, case.device, case.dtype, training=True, key=(0, 1, 2, 3))

    y, dx, grads = _pass(layer, params, x, dy, ctx)
    assert vars(layer) == config  # nothing was stored on the layer
    assert not any(hasattr(v, "__array_namespace__") or isinstance(v, np.ndarray) for v in vars(layer).values())
    assert set(grads) == set(layer.param_shapes())
    for out in (y, *grads.values(), *([] if name in IDS else [dx])):
        assert out.dtype == case.dtype
    for k, g in grads.items():
        assert tuple(g.shape) == layer.param_shapes()[k]
    assert dx is None if name in IDS else tuple(dx.shape) == shape
    np.testing.assert_array_equal(to_numpy(x), x_host if name in IDS else x_host.astype(case.dtype_name))  # untouched
    for k, v in host_params.items():
        np.testing.assert_array_equal(to_numpy(params[k]), v.astype(case.dtype_name))

    again = _pass(layer, params, x, dy, ctx)  # same arguments, same results, bit for bit
    np.testing.assert_array_equal(to_numpy(again[0]), to_numpy(y))
    if name not in IDS:
        np.testing.assert_array_equal(to_numpy(again[1]), to_numpy(dx))
    for k, g in grads.items():
        np.testing.assert_array_equal(to_numpy(again[2][k]), to_numpy(g))


@pytest.mark.parametrize("name", BUILT_IN)
def test_need_dx_false_gives_no_dx_and_the_same_grads(case64, name: str) -> None:
    make, shape = BUILT_IN[name]
    layer = make()
    rng = np.random.default_rng(1)
    params = {k: case64.asarray(v) for k, v in layer.init(rng).items()}
    _, x = _input(name, shape, rng, case64)
    dy = case64.asarray(rng.standard_normal(layer.output_shape(shape, "test")))
    ctx = portnn.Context(case64.xp, case64.device, case64.dtype, training=True, key=(0, 1, 2, 3))
    _, dx, grads = _pass(layer, params, x, dy, ctx)
    _, none, first = _pass(layer, params, x, dy, dataclasses.replace(ctx, need_dx=False))
    assert (dx is None) == (name in IDS)
    assert none is None, f"{name}: backward computed dx although ctx.need_dx is False"
    assert set(first) == set(grads)
    for k, g in grads.items():
        np.testing.assert_array_equal(to_numpy(first[k]), to_numpy(g))

