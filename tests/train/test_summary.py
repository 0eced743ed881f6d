"""``portnn.train.summary.summary(net, input_shape)`` (issue 23; ``Sequential.summary`` calls it): one row per layer
with its output shape and parameter and state counts, Residual blocks' inner layers indented under their
state_dict prefix, totals and bytes. The shapes are checked against a real forward pass and the counts against
the model's own arrays."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.train.summary import sample_shape, size, summary


def cnn(dtype: str | None = None) -> portnn.Sequential:
    return portnn.Sequential(
        portnn.Conv2D(1, 4, 3, padding=1), portnn.BatchNorm2d(4), portnn.ReLU(),
        portnn.Residual(portnn.Conv2D(4, 4, 3, padding=1, bias=False), portnn.BatchNorm2d(4),
                        portnn.Residual(portnn.Tanh())),
        portnn.GlobalAvgPool2D(), portnn.Dense(4, 3), seed=0, dtype=dtype)


EXPECTED = """\
Sequential: 6 layers, float64, input shape (None, 1, 6, 6)
Layer (type)       Output shape     Params  State
=================================================
0 Conv2D           (None, 4, 6, 6)      40      0
1 BatchNorm2d      (None, 4, 6, 6)       8      8
2 ReLU             (None, 4, 6, 6)       0      0
3 Residual         (None, 4, 6, 6)     152      8
  3.0 Conv2D       (None, 4, 6, 6)     144      0
  3.1 BatchNorm2d  (None, 4, 6, 6)       8      8
  3.2 Residual     (None, 4, 6, 6)       0      0
    3.2.0 Tanh     (None, 4, 6, 6)       0      0
4 GlobalAvgPool2D  (None, 4)             0      0
5 Dense            (None, 3)            15      0
=================================================
Total: 231 values (1.8 KiB)
Trainable parameters: 215 (1.7 KiB)
Non-trainable state: 16 (128 B)"""


def test_the_table_of_a_nested_cnn() -> None:
    assert summary(cnn(), (1, 6, 6)) == EXPECTED


def test_counts_and_shapes_agree_with_the_model() -> None:
    net = cnn("float32")
    text = summary(net, [1, 6, 6])
    arrays = net.state_dict()
    params = sum(a.size for layer in net.params for a in layer.values())
    assert params + sum(a.size for layer in net.state for a in layer.values()) == sum(a.size for a in arrays.values())
    assert f"Trainable parameters: {params:,} ({size(params * 4)})" in text
    assert "float32" in text.splitlines()[0]
    # every top-level row's output shape is what the forward pass of that many layers gives for a batch of 2
    x = np.zeros((2, 1, 6, 6))
    rows = [line for line in text.splitlines() if line[:1].isdigit()]
    assert len(rows) == len(net.layers)
    for i, row in enumerate(rows):
        out = portnn.Sequential(*net.layers[:i + 1]).predict(x)
        assert f"(None, {', '.join(map(str, out.shape[1:]))})" in row
    # the names of the inner rows are the state_dict prefixes of their arrays
    assert {k.rsplit(".", 1)[0] for k in arrays} <= {line.split()[0] for line in text.splitlines()}


def test_the_input_shape_defaults_to_what_the_model_records() -> None:
    net = cnn()
    net.info["input_shape"] = [1, 6, 6]  # as `portnn train --save` records it
    assert summary(net) == EXPECTED
    dense = portnn.Sequential(portnn.Residual(portnn.Dense(5, 5)), portnn.Dense(5, 1))
    assert sample_shape(dense) == (5,)  # a first Dense layer fixes it (as export_onnx's default)
    assert "input shape (None, 5)" in summary(dense)


def test_a_missing_or_bad_input_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"summary: give input_shape, one sample's shape without the batch axis"):
        summary(cnn())
    with pytest.raises(ValueError, match=r"summary: input_shape\[1\] must be an int >= 1, got 0"):
        summary(cnn(), (1, 0, 6))
    with pytest.raises(TypeError, match=r"summary: input_shape\[0\] must be an int >= 1, got 'a'"):
        summary(cnn(), ("a",))
    with pytest.raises(ValueError, match=r"summary \(input_shape \(2, 6, 6\)\): layer 0 \(Conv2D\(.*\)\) expects "
                                         r"input of shape \(batch, 1, height, width\)"):
        summary(cnn(), (2, 6, 6))


def test_sizes_read_in_binary_units() -> None:
    assert [size(n) for n in (0, 1023, 1024, 1536, 3 * 2**20, 5 * 2**30)] == \
        ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "3.0 MiB", "5.0 GiB"]
