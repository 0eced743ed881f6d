"""predict(X, batch_size=) and evaluate(..., batch_size=) (issue 23, item 11): the forward pass on that many rows at
a time gives the outputs of one batch up to rounding (BLAS sums a matrix product in another order for another number
of rows: measured at most 2.7e-15 in float64, 1.4e-6 absolute and 5.1e-7 relative in float32), and memory is
bounded by a batch, not by X; a model remembers one sample's shape from fit and predict (item 12), so summary() and
export_onnx need none."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import portnn
from portnn import recipes


@pytest.mark.parametrize("name", ["mlp", "digits-cnn", "resnet-lines"])
def test_batched_predict_equals_one_batch_up_to_rounding(case, name: str) -> None:
    recipe = recipes.get(name)
    X, _ = recipe.data()
    net = recipe.model(1).to(case.xp, case.device, case.dtype_name)
    Xd = case.asarray(X)
    full = portnn.to_numpy(net.predict(Xd))
    tol = 1e-14 if case.dtype_name == "float64" else 1e-6  # a few ulp (measured: see the module docstring)
    for size in (1, 7, 64, 10**9):
        part = net.predict(Xd, batch_size=size)
        assert part.dtype == case.dtype
        np.testing.assert_allclose(portnn.to_numpy(part), full, rtol=tol, atol=tol)


def test_batched_evaluate_equals_one_batch_up_to_rounding(numpy64) -> None:
    recipe = recipes.get("digits-cnn")
    X, y = recipe.data()
    net = recipe.model(1)
    whole = net.evaluate(X, y, loss=recipe.loss())
    for size in (1, 13, 500):
        got = net.evaluate(X, y, loss=recipe.loss(), batch_size=size)
        assert got.keys() == whole.keys()
        for key, value in whole.items():
            assert got[key] == pytest.approx(value, rel=1e-13, abs=0)


def test_batched_predict_bounds_memory_by_a_batch() -> None:
    net = portnn.Sequential(portnn.Dense(64, 512), portnn.ReLU(), portnn.Dense(512, 512), portnn.ReLU(),
                            portnn.Dense(512, 4), seed=0)
    X = np.random.default_rng(0).standard_normal((8000, 64))
    net.predict(X[:2])  # placed, compiled nothing (NumPy)
    peaks = {}
    for size in (None, 100):
        tracemalloc.start()
        net.predict(X, batch_size=size)
        peaks[size] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # one batch of 8000 rows holds 8000 x 512 float64 activations (33 MB, several at once); batches of 100: the
    # 8000 x 4 output and a few 100 x 512 activations (measured about 1.1 MB against 69 MB)
    assert peaks[100] < peaks[None] / 20, peaks


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "64"])
def test_batch_size_is_checked(bad) -> None:
    net = portnn.Sequential(portnn.Dense(2, 1))
    with pytest.raises(ValueError, match=r"predict: batch_size must be an int >= 1 or None"):
        net.predict(np.ones((3, 2)), batch_size=bad)


def test_a_model_remembers_one_samples_shape(tmp_path) -> None:
    recipe = recipes.get("digits-cnn")
    X, y = recipe.data()
    net = recipe.model(1)
    with pytest.raises(ValueError, match="give input_shape"):
        net.summary()
    net.fit(X[:32], y[:32], loss=recipe.loss(), optimizer=recipe.optimizer(recipe.lr), epochs=1)
    assert net.info["input_shape"] == [1, 8, 8]
    assert "(N, 10)" in net.summary() or "10)" in net.summary()
    portnn.save(net, tmp_path / "m.npz")
    back = portnn.load(tmp_path / "m.npz")
    assert back.info["input_shape"] == [1, 8, 8]  # the checkpoint keeps it
    back.summary()
    other = recipe.model(2)
    other.predict(X[:3])  # predict alone remembers it too
    assert other.info["input_shape"] == [1, 8, 8]
    pytest.importorskip("ndonnx")
    done = portnn.export_onnx(back, tmp_path / "m.onnx")  # no input_shape needed
    assert done.path.exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings on the way to the failure
def test_a_failed_fit_remembers_nothing() -> None:
    net = portnn.Sequential(portnn.Dense(3, 1), seed=0)
    with pytest.raises(FloatingPointError):
        net.fit(np.ones((4, 3)) * 1e3, np.ones((4, 1)), loss=portnn.MSE(), optimizer=portnn.SGD(1e308))
    assert "input_shape" not in net.info
