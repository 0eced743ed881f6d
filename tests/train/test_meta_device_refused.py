"""torch's 'meta' device holds shapes but no values (issue 23): data on it given to fit or predict, and a module on
it given to from_torch, are a ValueError naming the argument, before any work (they used to fail inside the first
read of the data with torch's NotImplementedError 'Cannot copy out of meta tensor')."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import portnn  # noqa: E402

META = "is on torch's 'meta' device, which holds shapes but no values"


def test_predict_refuses_meta_data() -> None:
    net = portnn.Sequential(portnn.Dense(4, 2))
    with pytest.raises(ValueError, match=f"predict: X {META}; create it on a real device"):
        net.predict(torch.empty(3, 4, device="meta"))
    assert net.placement is None  # nothing was placed


def test_fit_refuses_meta_data_naming_the_array() -> None:
    net = portnn.Sequential(portnn.Dense(4, 2))
    before = net.state_dict()
    with pytest.raises(ValueError, match=f"fit: y {META}"):
        net.fit(torch.zeros(3, 4, dtype=torch.float64), torch.empty(3, 2, device="meta"), loss=portnn.MSE(),
                optimizer=portnn.SGD(0.1))
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_from_torch_refuses_a_module_on_meta() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2, device="meta"))
    with pytest.raises(ValueError, match=rf"from_torch: '2.weight' {META}; materialise the module first"):
        portnn.interop.from_torch(module)
