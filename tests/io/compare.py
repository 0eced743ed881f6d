"""Comparing optimizer states in checkpoint tests: a tree per slot ('m', 'v', 'velocity': one {name: array} per
layer) and 0-d integer counters ('step')."""

from __future__ import annotations

from typing import Any

import numpy as np

import portnn


def assert_same_optimizer_state(got: dict[str, Any], want: dict[str, Any]) -> None:
    """The same slots, trees of the same shape holding equal values, and equal counters that stay 0-d int64."""
    assert got.keys() == want.keys()
    for slot, value in want.items():
        other = got[slot]
        if isinstance(value, list):
            assert isinstance(other, list), (slot, type(other))
            assert [sorted(layer) for layer in other] == [sorted(layer) for layer in value], slot
            for i, layer in enumerate(value):
                for name, array in layer.items():
                    np.testing.assert_array_equal(portnn.to_numpy(other[i][name]), portnn.to_numpy(array),
                                                  err_msg=f"optimizer state {slot!r} of {i}.{name}")
        else:
            counter, expected = portnn.to_numpy(other), portnn.to_numpy(value)
            assert (counter.shape, counter.dtype) == (expected.shape, expected.dtype) == ((), np.int64), slot
            assert int(counter) == int(expected), slot
