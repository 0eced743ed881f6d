"""Layer arguments that used to be coerced silently are refused before anything is built (issue 23): ``bias='no'``
was taken as True by bool(); a Residual nested past the limit overflowed Python's stack at the first forward pass;
a padding far beyond the input made predict allocate gigabytes of zeros."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.nn.residual import MAX_DEPTH


@pytest.mark.parametrize("make", [
    lambda bias: portnn.Dense(3, 2, bias=bias),
    lambda bias: portnn.Conv2D(1, 2, 3, bias=bias),
    lambda bias: portnn.Conv1D(1, 2, 3, bias=bias),
], ids=["Dense", "Conv2D", "Conv1D"])
@pytest.mark.parametrize("bias", ["no", 0, 1, None, np.bool_(True), "False"])
def test_a_bias_that_is_not_a_bool_is_a_type_error_naming_the_layer(make, bias) -> None:
    with pytest.raises(TypeError, match=r"(Dense|Conv2D|Conv1D): bias must be True or False, got "):
        make(bias)


def test_bias_true_and_false_still_build() -> None:
    assert "bias" in portnn.Dense(3, 2, bias=True).param_shapes()
    assert "bias" not in portnn.Conv2D(1, 2, 3, bias=False).param_shapes()
    assert "bias" not in portnn.Conv1D(1, 2, 3, bias=False).param_shapes()


# ---- padding beyond the input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("layer", "shape", "message"), [
    (portnn.Conv2D(1, 2, 3, padding=10**4), (3, 1, 8, 8),
     r"layer 0 \(Conv2D\(.*\)\): padding 10000 along height is more than the input's height \(8\) plus the kernel "
     r"\(3\), 11"),
    (portnn.Conv2D(1, 2, (3, 1), padding=(1, 50)), (3, 1, 8, 8),
     r"layer 0 \(Conv2D\(.*\)\): padding 50 along width is more than the input's width \(8\) plus the kernel \(1\), 9"),
    (portnn.Conv1D(1, 2, 3, padding=10**6), (3, 1, 8),
     r"layer 0 \(Conv1D\(.*\)\): padding 1000000 along length is more than the input's length \(8\) plus the kernel "
     r"\(3\), 11"),
], ids=["Conv2D", "Conv2D-width", "Conv1D"])
def test_a_padding_beyond_the_input_and_kernel_is_refused_before_any_work(layer, shape, message) -> None:
    net = portnn.Sequential(layer)
    with pytest.raises(ValueError, match="predict: " + message):
        net.predict(np.ones(shape))


def test_a_padding_up_to_the_input_and_kernel_computes() -> None:
    out = portnn.Sequential(portnn.Conv2D(1, 2, 3, padding=(11, 0))).predict(np.ones((2, 1, 8, 8)))
    assert out.shape == (2, 2, 8 + 22 - 2, 6)
    assert portnn.Sequential(portnn.Conv1D(1, 1, 3, padding=11)).predict(np.ones((1, 1, 8))).shape == (1, 1, 28)


# ---- Residual nesting -----------------------------------------------------------------------------------------
def nest(layer: portnn.Layer, depth: int) -> portnn.Layer:
    for _ in range(depth):
        layer = portnn.Residual(layer)
    return layer


def test_residual_nesting_past_the_limit_is_refused_at_construction() -> None:
    inner = nest(portnn.Dense(2, 2), MAX_DEPTH)
    with pytest.raises(ValueError, match=rf"Residual: blocks nest {MAX_DEPTH + 1} deep, more than {MAX_DEPTH}"):
        portnn.Residual(inner)
    with pytest.raises(ValueError, match="Residual: blocks nest"):
        portnn.Residual(portnn.Tanh(), nest(portnn.Tanh(), 199))


def test_residual_nesting_at_the_limit_predicts_saves_and_loads(tmp_path) -> None:
    """The limit is what a checkpoint holds: its JSON is at most 64 levels deep (portnn.io.schema)."""
    net = portnn.Sequential(nest(portnn.Conv2D(1, 1, 1), MAX_DEPTH))
    out = net.predict(np.ones((1, 1, 2, 2)))
    portnn.save(net, tmp_path / "deep.npz")
    np.testing.assert_array_equal(portnn.load(tmp_path / "deep.npz").predict(np.ones((1, 1, 2, 2))), out)
