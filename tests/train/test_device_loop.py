"""Eager training on a device whose backend file says ``[compile] epoch_reads`` (the GPUs; array-api-strict's device1
stands in for them here): the losses stay on the device and the host reads them once per epoch, through the same
device-side loop and rollback as compiled training, with NumPy's step-by-step results bit for bit."""

from __future__ import annotations

import pytest

from portnn import backends, recipes
from portnn.array import host
from portnn.train.trainer import readable
from tests.train.test_compiled import failure_cases

pytestmark = [pytest.mark.array_api_strict, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


@pytest.fixture
def device1() -> tuple:
    if not backends.get("array_api_strict").installed():
        pytest.skip("array_api_strict is not installed")
    xp, device = backends.load("array_api_strict", "device1")
    assert backends.reads_per_epoch(backends.get("array_api_strict"), device)
    assert not backends.reads_per_epoch(backends.get("array_api_strict"), backends.load("array_api_strict")[1])
    return xp, device


def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the host reads of losses: to_float (a read per step) and to_numpy (a record per epoch)."""
    calls = {"to_float": 0, "to_numpy": 0}
    for name in calls:
        original = getattr(host, name)

        def counted(x, _name=name, _original=original):
            calls[_name] += 1
            return _original(x)

        monkeypatch.setattr(host, name, counted)
    return calls


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_host_read_per_epoch_and_numpys_weights_bit_for_bit(device1, monkeypatch, dtype: str) -> None:
    xp, device = device1
    spiral = recipes.get("spiral")
    X, y = spiral.data()
    reference = spiral.model(1).to("numpy", dtype=dtype)
    expected = reference.fit(X.astype(dtype), y, loss=spiral.loss(), optimizer=spiral.optimizer(0.01), epochs=4,
                             batch_size=32)
    Xd, yd = xp.asarray(X, dtype=getattr(xp, dtype), device=device), xp.asarray(y, device=device)
    calls = counting(monkeypatch)
    spiral.model(1).to(xp, device, dtype).fit(Xd, yd, loss=spiral.loss(), optimizer=spiral.optimizer(0.01),
                                              epochs=1, batch_size=32)
    once = dict(calls)  # the data and target checks of fit read the host too, once per fit
    net = spiral.model(1).to(xp, device, dtype)
    history = net.fit(Xd, yd, loss=spiral.loss(), optimizer=spiral.optimizer(0.01), epochs=4, batch_size=32)
    per_fit = {k: calls[k] - once[k] for k in calls}  # 4 epochs of 10 steps
    assert per_fit == {"to_float": once["to_float"], "to_numpy": once["to_numpy"] + 3}, (once, per_fit)
    assert list(history) == list(expected)
    assert net.history == reference.history
    for key, value in reference.state_dict().items():
        assert net.state_dict()[key].tobytes() == value.tobytes(), key
    assert net.compile_stats == {}  # nothing was compiled


@pytest.mark.parametrize(("make", "X", "y", "kwargs"), failure_cases())
def test_failures_end_as_in_step_by_step_training(device1, make, X, y, kwargs) -> None:
    """Each way to diverge: the same message, epoch, history and weights as NumPy's step-by-step loop."""
    xp, device = device1
    ref = make()
    with pytest.raises(FloatingPointError) as on_numpy:
        ref.fit(X, y, **kwargs())
    net = make().to(xp, device)
    with pytest.raises(FloatingPointError) as on_device:
        net.fit(xp.asarray(X, device=device), xp.asarray(y, device=device), **kwargs())
    numpy_msg, msg = str(on_numpy.value), str(on_device.value)
    assert msg == numpy_msg
    assert net.epoch == ref.epoch
    assert net.history == ref.history
    for key, value in ref.state_dict().items():
        assert net.state_dict()[key].tobytes() == value.tobytes(), key
    assert readable(net.training).keys() == readable(ref.training).keys()


def test_data_parallel_training_keeps_its_host_loop(device1) -> None:
    """A communicator's Allreduce sits between gradients and update: that loop stays step by step."""
    import portnn.distributed

    xp, device = device1
    seed = recipes.get("seed")
    X, y = (xp.asarray(a, device=device) for a in seed.data())
    net = seed.model(1).to(xp, device)
    alone = seed.model(1).to(xp, device)
    net.fit(X, y, loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=20,
            communicator=portnn.distributed.SingleProcess())
    alone.fit(X, y, loss=seed.loss(), optimizer=seed.optimizer(1.0), epochs=20)
    for key, value in alone.state_dict().items():
        assert net.state_dict()[key].tobytes() == value.tobytes(), key
