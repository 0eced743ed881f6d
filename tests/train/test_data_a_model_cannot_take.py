"""Data a model cannot take is refused naming the argument, before any work (issue 23): a NumPy masked array (its
mask would be ignored; it used to fail inside Dense.forward with a broadcast error), float64 values beyond a float32
model's range (they became inf: 'loss is nan ... lower the learning rate'), and a 1-D X (said 'they need the same
number of rows'). ``checks.data(..., dtype=)`` and ``checks.features`` are what fit and predict call
(portnn/train/inputs.py)."""

from __future__ import annotations

import numpy as np
import pytest

import portnn
from portnn.train import checks
from tests.conftest import Case

TOO_BIG = r"X holds values as large as 1e\+300 in 1 of 4 rows, the first in row 2, beyond the model's float32 range " \
          r"\(at most 3\.403e\+38\): they would become inf; scale the data, or use a float64 model"


def masked() -> np.ma.MaskedArray:
    return np.ma.masked_array(np.ones((4, 3)), mask=np.eye(4, 3, dtype=bool))


def test_fit_refuses_a_masked_array_naming_it() -> None:
    net = portnn.Sequential(portnn.Dense(3, 1))
    with pytest.raises(TypeError, match=r"^X is a numpy masked array; portnn would compute on its masked values too"):
        net.fit(masked(), np.ones((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
    with pytest.raises(TypeError, match=r"^y is a numpy masked array"):
        net.fit(np.ones((4, 3)), np.ma.masked_array(np.ones((4, 1))), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
    assert net.placement is None
    assert net.epoch == 0


def test_predict_and_load_state_dict_refuse_a_masked_array() -> None:
    net = portnn.Sequential(portnn.Dense(3, 1))
    with pytest.raises(TypeError, match=r"^X is a numpy masked array"):
        net.predict(masked())
    with pytest.raises(TypeError, match=r"load_state_dict\['0.weight'\] is a numpy masked array"):
        net.load_state_dict({"0.weight": np.ma.masked_array(np.ones((3, 1))), "0.bias": np.zeros(1)})


def big_rows(xp, device, dtype) -> object:
    X = np.ones((4, 3))
    X[2, 1] = -1e300
    return portnn.host.from_numpy(X, xp, device=device, dtype=dtype)


def test_checks_refuse_values_beyond_the_model_dtype(case: Case) -> None:
    if case.dtype_name != "float64":
        pytest.skip("float64 data into a float32 model")
    X = big_rows(case.xp, case.device, case.xp.float64)
    with pytest.raises(ValueError, match="^fit: " + TOO_BIG):
        checks.data({"X": X}, "fit", case.xp, dtype=case.xp.float32)
    with pytest.raises(ValueError, match="^predict: " + TOO_BIG):
        checks.data({"X": X}, "predict", case.xp, dtype="float32")
    checks.data({"X": X}, "fit", case.xp, dtype=case.xp.float64)  # fits float64
    checks.data({"X": X}, "fit", case.xp)  # no dtype, no check
    small = case.asarray(np.full((4, 3), 3e38))
    checks.data({"X": small}, "fit", case.xp, dtype=case.xp.float32)  # up to float32's largest


def test_fit_and_predict_refuse_values_beyond_a_float32_model() -> None:
    xp, device = portnn.backends.load("numpy")
    net = portnn.Sequential(portnn.Dense(3, 1), dtype="float32")
    with pytest.raises(ValueError, match="^fit: " + TOO_BIG):
        net.fit(big_rows(xp, device, None), np.ones((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
    with pytest.raises(ValueError, match="^predict: " + TOO_BIG):
        net.predict(big_rows(xp, device, None))


ONE_D = r"X has shape \(4,\); it needs shape \(samples, features, \.\.\.\), one row per sample \(one feature: " \
        r"reshape it to \(-1, 1\); one sample: to \(1, -1\)\)"


def test_checks_say_what_shape_an_input_needs() -> None:
    with pytest.raises(ValueError, match="^fit: " + ONE_D):
        checks.features(np.ones(4), "X", "fit")
    checks.features(np.ones((4, 1)), "X", "fit")


def test_fit_says_what_shape_a_1d_x_needs() -> None:
    net = portnn.Sequential(portnn.Dense(1, 1))
    with pytest.raises(ValueError, match="^fit: " + ONE_D):
        net.fit(np.ones(4), np.ones(4), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
