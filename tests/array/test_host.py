"""host.from_numpy on every backend: 0-d data changes dtype too (torch refuses that while copying a 0-d array)."""

from __future__ import annotations

import numpy as np

from portnn.array import host


def test_zero_d_data_is_converted_to_the_requested_dtype(case) -> None:
    for value in (np.asarray(1.5), np.asarray(2.5, dtype=np.float32), 3.25):
        a = host.from_numpy(value, case.xp, device=case.device, dtype=case.dtype)
        assert a.shape == ()
        assert a.dtype == case.dtype
        assert float(host.to_numpy(a)) == float(value)
    counter = host.from_numpy(np.asarray(7, dtype=np.int64), case.xp, device=case.device, dtype=case.ints)
    assert counter.shape == ()
    assert int(host.to_numpy(counter)) == 7
