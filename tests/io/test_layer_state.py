"""Non-trainable layer state in checkpoints: a model with a stateful layer (a running mean of its inputs) is saved
as 'portnn-checkpoint-3' with 'state/INDEX.NAME' entries, loads with its state and resumes bit for bit; no
optimizer ever touches the state; damaged state entries are ValueErrors naming the entry."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn
from portnn.io import checkpoint
from tests.io.compare import assert_same_optimizer_state

RNG = np.random.default_rng(5)
X = RNG.standard_normal((24, 3)) + np.array([1.0, -2.0, 0.5])  # column means far from the initial 0
Y = RNG.standard_normal((24, 2))
BATCH, MOMENTUM = 8, 0.5


class InputMean(portnn.Layer):
    """y = scale * x (a trainable scale per feature); keeps an exponential running mean of its inputs as
    non-trainable state, the way batch normalisation keeps its running statistics."""

    def __init__(self, features: int = 3, momentum: float = MOMENTUM) -> None:
        self.features, self.momentum = int(features), float(momentum)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"scale": (self.features,)}

    def init(self, rng: Any) -> dict[str, Any]:
        return {"scale": np.ones(self.features)}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"mean": (self.features,)}

    def init_state(self) -> dict[str, Any]:
        return {"mean": np.zeros(self.features)}

    def forward(self, params: dict[str, Any], x: Any, ctx: portnn.Context) -> tuple[Any, Any]:
        return x * params["scale"], x

    def backward(self, params: dict[str, Any], saved: Any, dy: Any, ctx: portnn.Context) -> tuple[Any, Any]:
        return (dy * params["scale"] if ctx.need_dx else None), {"scale": ctx.xp.sum(dy * saved, axis=0)}

    def update_state(self, params: dict[str, Any], saved: Any, ctx: portnn.Context) -> dict[str, Any]:
        m = self.momentum
        return {"mean": m * params["mean"] + (1.0 - m) * ctx.xp.mean(saved, axis=0)}

    def config(self) -> dict[str, Any]:
        return {"features": self.features, "momentum": self.momentum}


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """load finds InputMean by name (it registered itself when defined; this keeps it so for these tests only,
    whatever another test module may register under that name)."""
    monkeypatch.setitem(checkpoint.LAYER_TYPES, "InputMean", InputMean)


def make_net() -> portnn.Sequential:
    return portnn.Sequential(InputMean(3), portnn.Dense(3, 2), seed=1)


def train(net: portnn.Sequential, epochs: int, optimizer: portnn.Optimizer | None = None) -> None:
    net.fit(X, Y, loss=portnn.MSE(), optimizer=optimizer or net.optimizer or portnn.Adam(0.05, weight_decay=0.1),
            epochs=epochs, batch_size=BATCH, shuffle=False)


def running_mean(epochs: int) -> np.ndarray:
    """The state after ``epochs`` unshuffled epochs, by hand: the layer sees X itself (it comes first), so its
    state depends on the data alone, never on the weights or the optimizer."""
    mean = np.zeros(3)
    for _ in range(epochs):
        for start in range(0, len(X), BATCH):
            mean = MOMENTUM * mean + (1.0 - MOMENTUM) * np.mean(X[start:start + BATCH], axis=0)
    return mean


@pytest.mark.parametrize("optimizer", [portnn.Adam(0.05, weight_decay=0.1),
                                       portnn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.1)], ids=repr)
def test_training_updates_the_state_and_no_optimizer_touches_it(optimizer: portnn.Optimizer) -> None:
    net = make_net()
    train(net, 2, optimizer)
    # weight decay and momentum would move anything the optimizer was given; the state is exactly the running mean
    np.testing.assert_array_equal(portnn.to_numpy(net.state[0]["mean"]), running_mean(2))
    assert not np.array_equal(portnn.to_numpy(net.params[0]["scale"]), np.ones(3))  # while the scale trained
    assert set(net.parameters()) == {(0, "scale"), (1, "weight"), (1, "bias")}
    trees = [slot for slot, value in net.optimizer_state.items() if isinstance(value, list)]
    assert trees
    for slot in trees:  # the optimizer keeps state for the parameters only
        assert [set(layer) for layer in net.optimizer_state[slot]] == [{"scale"}, {"weight", "bias"}], slot


@pytest.fixture
def trained(tmp_path: Path) -> tuple[portnn.Sequential, Path]:
    net = make_net()
    train(net, 2)
    portnn.save(net, tmp_path / "m.npz")
    return net, tmp_path / "m.npz"


def test_a_stateful_model_round_trips_with_its_state_and_resumes_bit_for_bit(trained) -> None:
    net, path = trained
    with np.load(path, allow_pickle=False) as data:
        names = set(data.files)
        assert json.loads(data["architecture"].tobytes())["format"] == "portnn-checkpoint-3"
        np.testing.assert_array_equal(data["state/0.mean"], running_mean(2))
    assert {"param/0.scale", "state/0.mean"} <= names
    assert not {n for n in names if n.startswith("optim/") and "mean" in n}  # no optimizer slot for the state
    assert "param/0.mean" not in names
    back = portnn.load(path)
    assert [set(layer) for layer in back.state] == [{"mean"}, set()]
    np.testing.assert_array_equal(back.state[0]["mean"], running_mean(2))
    assert back.state_dict().keys() == net.state_dict().keys() == {"0.scale", "0.mean", "1.weight", "1.bias"}
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    assert_same_optimizer_state(back.optimizer_state, net.optimizer_state)
    np.testing.assert_array_equal(portnn.to_numpy(back.predict(X)), portnn.to_numpy(net.predict(X)))
    # training continues from the stored state (a fresh one would start the mean from zeros again)
    train(back, 1)
    train(net, 1)
    np.testing.assert_array_equal(portnn.to_numpy(back.state[0]["mean"]), running_mean(3))
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    assert back.history == net.history


def test_every_model_is_written_as_format_3() -> None:
    """One format written since 0.2.0 (0.1.0 could not read format 3; format 2 files still load, see
    test_checkpoint.py's fixtures of the 0.1.0 release)."""
    net = portnn.Sequential(portnn.Dense(3, 2), seed=0)
    assert checkpoint.architecture(net)["format"] == "portnn-checkpoint-3"
    assert checkpoint.architecture(make_net())["format"] == "portnn-checkpoint-3"


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def arch_with(fmt: str) -> Any:
    def edit(entries: dict[str, bytes]) -> bytes:
        doc = json.loads(np.load(io.BytesIO(entries["architecture.npy"])).tobytes())
        return npy(np.frombuffer(json.dumps({**doc, "format": fmt}).encode(), dtype=np.uint8))
    return edit


DAMAGE = [  # (entries to set, each bytes, None to remove, or a function of the entries; the message after the path)
    ({"state/0.mean.npy": None}, r"layer state and the file's disagree: missing entries \['state/0.mean'\]"),
    ({"state/1.mean.npy": npy(np.zeros(3))}, r"unexpected entries \['state/1.mean'\]"),
    ({"param/0.mean.npy": npy(np.zeros(3))}, r"unexpected entries \['param/0.mean'\]"),
    ({"optim/0.mean/m.npy": npy(np.zeros(3))}, r"optimizer state for Adam: .*unexpected entries \['optim/0.mean/m'\]"),
    ({"state/0.mean.npy": npy([0.0, np.nan, 1.0])}, r"entry 'state/0.mean' has 1 non-finite value\(s\)"),
    ({"state/0.mean.npy": npy(np.zeros(4))}, r"entry 'state/0.mean' has shape \(4,\); the architecture needs \(3,\)"),
    ({"state/0.mean.npy": npy(np.zeros(3, dtype=np.int64))}, r"entry 'state/0.mean' has dtype <i8; expected"),
    ({"architecture.npy": arch_with("portnn-checkpoint-2")},
     r"architecture.format is 'portnn-checkpoint-2', which holds no layer state, but architecture.layers\[0\] "
     r"\(InputMean\) declares state \['mean'\]"),
]


@pytest.mark.parametrize(("changes", "message"), DAMAGE, ids=[m[:30] for _, m in DAMAGE])
def test_damaged_state_entries_are_value_errors_naming_the_entry(trained, changes: dict[str, Any],
                                                                 message: str) -> None:
    _, path = trained
    with zipfile.ZipFile(path) as z:
        entries = {info.filename: z.read(info) for info in z.infolist()}
    for name, change in changes.items():
        entries[name] = change(entries) if callable(change) else change
    bad = path.with_name("bad.npz")
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in entries.items():
            if data is not None:
                z.writestr(name, data)
    with pytest.raises(ValueError, match=rf"^load: {re.escape(str(bad))}: .*{message}"):
        portnn.load(bad)
