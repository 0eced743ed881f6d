"""Training from host data on a device (issue 23, item 13): fit takes host NumPy arrays (memory maps too) for a model
placed on another device and copies one batch at a time (``portnn.train.source``): the weights equal training on
device-resident data bit for bit on array-api-strict's device1 (the GPU stand-in), device memory stays at a few
batches plus the model, and every other mixed placement is still refused."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import backends, recipes

pytestmark = pytest.mark.skipif(not backends.get("array_api_strict").installed(),
                                reason="array-api-strict is not installed")


def device1():
    return backends.load("array_api_strict", "device1")


@pytest.mark.parametrize("kw", [{"batch_size": 16}, {"batch_size": 24, "shuffle": False}, {}],
                         ids=["shuffled", "in-order-short-last", "full-batch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_streamed_host_data_trains_as_device_data_bit_for_bit(kw: dict, dtype: str, tmp_path: Path) -> None:
    xp, device = device1()
    spiral = recipes.get("spiral")
    X, y = spiral.data()
    X = X.astype(dtype)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")  # read batch by batch from the file
    runs = []
    for x_in, y_in, xv, yv in ((xp.asarray(X, device=device), xp.asarray(y, device=device),
                                xp.asarray(X[:40], device=device), xp.asarray(y[:40], device=device)),
                               (mapped, y, X[:40], y[:40])):
        net = spiral.model(1).to(xp, device, dtype)
        history = net.fit(x_in, y_in, loss=spiral.loss(), optimizer=spiral.optimizer(0.05), epochs=3,
                          validation_data=(xv, yv), **kw)
        runs.append((net, history))
    (resident, h_resident), (streamed, h_streamed) = runs
    assert list(h_streamed) == list(h_resident)
    assert streamed.history == resident.history  # val_loss and val_accuracy too
    for key, value in resident.state_dict().items():
        assert streamed.state_dict()[key].tobytes() == value.tobytes(), key
    assert streamed.params[0]["weight"].device == device  # the model stayed on its device


def test_streamed_host_data_on_jax_compiled_equals_device_data() -> None:
    if not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    xp, device = backends.load("jax")
    mlp = recipes.get("mlp")
    X, y = mlp.data()
    nets = []
    for x_in, y_in in ((xp.asarray(X, device=device), xp.asarray(y, device=device)), (X, y)):
        net = mlp.model(1).to(xp, device)
        net.fit(x_in, y_in, loss=mlp.loss(), optimizer=mlp.optimizer(0.1), epochs=4, batch_size=16, compile=True)
        nets.append(net)
    for key, value in nets[0].state_dict().items():  # the batch step compiled on its own vs inside an epoch's loop
        np.testing.assert_allclose(nets[1].state_dict()[key], value, rtol=0, atol=1e-12)


def test_device_memory_stays_at_a_few_batches(tmp_path: Path) -> None:
    """array-api-strict keeps device1's arrays in host memory that tracemalloc sees: device-resident data costs
    the whole array; streamed, the peak is a few batches and the model (measured: 11.7 MB against 0.4 MB)."""
    xp, device = device1()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 64))
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    del X
    peaks = {}
    for name in ("resident", "streamed"):
        net = portnn.Sequential(portnn.Dense(64, 16), portnn.ReLU(), portnn.Dense(16, 2), seed=0).to(xp, device)
        net.fit(mapped[:200], y[:200], loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=1,
                batch_size=100, metrics=[])  # what a first fit allocates once (imports, caches) is not measured
        tracemalloc.start()
        data = (xp.asarray(np.array(mapped), device=device), xp.asarray(y, device=device)) \
            if name == "resident" else (mapped, y)
        net.fit(*data, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.1), epochs=1, batch_size=100,
                metrics=[])
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks["resident"] > 20_000 * 64 * 8  # the data set itself is on the device
    assert peaks["streamed"] < peaks["resident"] / 10, peaks


def test_other_mixed_placements_are_still_refused() -> None:
    xp, device = device1()
    net = portnn.Sequential(portnn.Dense(3, 1)).to(xp, device)
    X, y = np.ones((4, 3)), np.ones((4, 1))
    with pytest.raises(TypeError, match="X is a numpy array but the model lives in array_api_strict"):
        net.predict(X)
    with pytest.raises(TypeError, match="X is a numpy array but the model lives in array_api_strict"):
        net.evaluate(X, y, loss=portnn.MSE())
    with pytest.raises(TypeError, match="numpy array"):  # host X with device y: one of them must move
        net.fit(X, xp.asarray(y, device=device), loss=portnn.MSE(), optimizer=portnn.SGD(0.1))
