"""Layer arguments that used to be coerced silently are refused before anything is built (issue 23): ``bias='no'``
was taken as True by bool(); a Residual nested past the limit overflowed Python's stack at the first forward pass;
a padding far beyond the input made predict allocate gigabytes of zeros."""

from __future__ import annotations

import numpy as np
import pytest

import portnn


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
