"""Bad input: a clear exception naming the argument or layer and the offending shapes/values; nothing changed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import portnn
from portnn import recipes
from portnn.array import backends

SEED = recipes.get("seed")


def seed_net_and_data(case):
    X, y = SEED.data()
    net = SEED.model(1).to(case.xp, case.device, case.dtype_name)
    return net, case.asarray(X, dtype=None), case.asarray(y, dtype=None)


def assert_unchanged(net, before: dict[str, np.ndarray]) -> None:
    after = net.state_dict()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)


def fit(net, X, y, **kw):
    kw.setdefault("loss", portnn.SSE())
    kw.setdefault("optimizer", portnn.SGD(1.0))
    return net.fit(X, y, epochs=kw.pop("epochs", 3), **kw)


def test_wrong_feature_count(case) -> None:
    net, _, y = seed_net_and_data(case)
    before = net.state_dict()
    X5 = case.asarray(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"layer 0 .*Dense.*\(batch, 3\).*\(4, 5\)"):
        fit(net, X5, y)
    with pytest.raises(ValueError, match=r"predict: layer 0 .*\(4, 5\)"):
        net.predict(X5)
    assert_unchanged(net, before)


def test_row_mismatch(case) -> None:
    net, X, _ = seed_net_and_data(case)
    before = net.state_dict()
    with pytest.raises(ValueError, match=r"X has shape \(4, 3\) and y has shape \(3, 1\)"):
        fit(net, X, case.asarray(np.zeros((3, 1))))
    assert_unchanged(net, before)


def test_y_of_wrong_width(case) -> None:
    net, X, _ = seed_net_and_data(case)
    before = net.state_dict()
    with pytest.raises(ValueError, match=r"SSE: y has shape \(4, 2\) but the network outputs shape \(4, 1\)"):
        fit(net, X, case.asarray(np.zeros((4, 2))))
    assert_unchanged(net, before)



@pytest.mark.parametrize("labels", [[0, 1, 3], [-1, 0, 2]])
def test_class_labels_out_of_range(case, labels: list[int]) -> None:
    """A label outside [0, classes) would one-hot to a row of zeros and train on a silently wrong loss."""
    net = portnn.Sequential(portnn.Dense(3, 3), seed=0).to(case.xp, case.device, case.dtype_name)
    before = net.state_dict()
    X, y = case.asarray(np.ones((3, 3))), case.asarray(np.array(labels), dtype=case.ints)
    pattern = rf"class labels must be in \[0, 3\) for 3 logits, got labels from {min(labels)} to {max(labels)}"
    with pytest.raises(ValueError, match=pattern):
        fit(net, X, y, loss=portnn.SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match=pattern):
        net.evaluate(X, y, loss=portnn.SoftmaxCrossEntropy())
    assert_unchanged(net, before)

def test_mixed_namespaces_between_X_and_y(numpy64) -> None:
    strict = pytest.importorskip("array_api_strict")
    net, X, y = seed_net_and_data(numpy64)
    with pytest.raises(TypeError, match=r"X is a numpy array but y is a array_api_strict array"):
        fit(net, X, strict.asarray(np.asarray(y)))


def test_data_from_another_namespace_than_the_model(numpy64) -> None:
    torch = pytest.importorskip("torch")
    net, X, _ = seed_net_and_data(numpy64)
    before = net.state_dict()
    with pytest.raises(TypeError, match=r"X is a torch array but the model lives in numpy"):
        net.predict(torch.asarray(np.asarray(X)))
    assert_unchanged(net, before)


def test_to_takes_the_array_module_itself(numpy64) -> None:
    """``to(numpy)`` (the module, not array-api-compat's wrapper) places the model where numpy arrays fit."""
    X, y = np.ones((4, 3)), np.zeros((4, 2))
    by_module = portnn.Sequential(portnn.Dense(3, 2), seed=0).to(np)
    by_name = portnn.Sequential(portnn.Dense(3, 2), seed=0).to("numpy")
    kw: dict[str, Any] = {"loss": portnn.MSE(), "optimizer": portnn.SGD(0.1), "epochs": 2}
    assert by_module.fit(X, y, **kw) == by_name.fit(X, y, **kw)
    with pytest.raises(TypeError, match="is not an array namespace"):
        portnn.Sequential(portnn.Dense(3, 2)).to(object())


def test_mixed_devices() -> None:
    """array_api_strict device1 stands in for a GPU: CPU data must not meet device1 parameters."""
    strict = pytest.importorskip("array_api_strict")
    X, y = SEED.data()
    cpu, dev1 = strict.Device("CPU_DEVICE"), strict.Device("device1")
    with pytest.raises(ValueError, match=r"X is on device .*CPU_DEVICE.* but y is on device .*device1"):
        fit(SEED.model(1), strict.asarray(X, device=cpu), strict.asarray(y, device=dev1))
    net = SEED.model(1).to(strict, dev1)
    before = net.state_dict()
    with pytest.raises(ValueError, match=r"X is on device .*CPU_DEVICE.* but the model is on .*device1"):
        fit(net, strict.asarray(X, device=cpu), strict.asarray(y, device=cpu))
    assert_unchanged(net, before)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about the overflow before portnn raises
def test_non_finite_loss_names_epoch_and_batch_and_keeps_last_good_weights(case) -> None:
    X, y = recipes.get("mlp").data()
    net = recipes.get("mlp").model(0).to(case.xp, case.device, case.dtype_name)
    X, y = case.asarray(X), case.asarray(y)
    good = net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.05), epochs=1, batch_size=16)
    assert np.isfinite(good[0])
    snapshots: list[dict[str, np.ndarray]] = []

    class Recording(portnn.SGD):
        def update(self, params, grads, state, lr=None):
            snapshots.append({f"{i}.{n}": portnn.to_numpy(p) for i, layer in enumerate(params)
                              for n, p in layer.items()})
            return super().update(params, grads, state, lr)

    with pytest.raises(FloatingPointError, match=r"loss is (inf|nan) at epoch \d+, batch \d+") as info:
        net.fit(X, y, optimizer=Recording(1e6), epochs=20, compile=False)  # the recording reads the host
    state = net.state_dict()
    assert all(np.all(np.isfinite(v)) for v in state.values())
    if backends.reads_per_epoch(case.backend, case.device):
        # the device-side loop runs the epoch's later updates as no-ops, so the snapshots go on: compare with the
        # step-by-step loop on NumPy instead, which this backend (array-api-strict's device1) equals bit for bit
        reference = recipes.get("mlp").model(0).to("numpy", dtype=case.dtype_name)
        Xn, yn = (np.asarray(a, dtype=case.dtype_name) for a in recipes.get("mlp").data())
        reference.fit(Xn, yn, loss=portnn.MSE(), optimizer=portnn.SGD(0.05), epochs=1, batch_size=16)
        with pytest.raises(FloatingPointError) as expected:
            reference.fit(Xn, yn, optimizer=portnn.SGD(1e6), epochs=20)
        assert str(info.value) == str(expected.value)
        last_finite_step = reference.state_dict()
    else:
        last_finite_step = snapshots[-1]  # the weights fed to the last update, whose loss was finite
    for key, value in state.items():
        np.testing.assert_array_equal(value, last_finite_step[key])


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf")])
def test_learning_rate_must_be_positive(lr: float) -> None:
    with pytest.raises(ValueError, match=r"SGD: lr must be a finite number > 0, got"):
        portnn.SGD(lr)


def test_learning_rate_numpy_scalar_becomes_python_float() -> None:
    assert type(portnn.SGD(np.float32(0.5)).lr) is float  # type: ignore[arg-type]  # np.float32 is no float: the point


@pytest.mark.parametrize(("kw", "pattern"), [
    ({"epochs": -1}, r"epochs must be an int >= 0 or None, got -1"),
    ({"epochs": 2.5}, r"epochs must be an int >= 0 or None, got 2.5"),
    ({"batch_size": 0}, r"batch_size must be an int >= 1 or None, got 0"),
    ({"loss": "sse"}, r"loss must be a portnn loss"),
    ({"optimizer": 0.1}, r"optimizer must be a portnn optimizer"),
])
def test_bad_fit_arguments(numpy64, kw: dict, pattern: str) -> None:
    net, X, y = seed_net_and_data(numpy64)
    with pytest.raises((ValueError, TypeError), match=pattern):
        fit(net, X, y, **kw)


@pytest.mark.parametrize(("make", "pattern"), [  # wrong types on purpose: each marked for mypy
    (lambda: portnn.Dense(0, 3), r"Dense: in_features must be an int >= 1, got 0"),
    (lambda: portnn.Dense(3, 2.0), r"Dense: out_features must be an int >= 1, got 2.0"),  # type: ignore[arg-type]
    (lambda: portnn.Dense(3, 2, init="nope"), r"init must be one of .*, got 'nope'"),
    (lambda: portnn.Sequential(portnn.Dense(3, 2), "relu"),  # type: ignore[arg-type]
     r"layer 1 must be a portnn Layer, got str"),
    (lambda: portnn.Sequential(portnn.Dense(3, 2), dtype="float16"), r"dtype must be one of"),
])
def test_bad_construction(make, pattern: str) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


def test_load_state_dict_checks_everything_first(numpy64) -> None:
    net, _, _ = seed_net_and_data(numpy64)
    before = net.state_dict()
    bad = {"0.weight": np.zeros((3, 4)), "2.weight": np.zeros((5, 1))}
    with pytest.raises(ValueError, match=r"'2.weight' has shape \(5, 1\), layer 2 needs \(4, 1\)"):
        net.load_state_dict(bad)
    with pytest.raises(KeyError, match=r"missing keys \['2.weight'\]"):
        net.load_state_dict({"0.weight": np.zeros((3, 4))})
    assert_unchanged(net, before)
