"""Values a checkpoint file can hold but a model cannot use (issue 23): a negative running variance, a negative Adam
second moment, an Adam step counter past 2**53. Each is a ValueError 'load: PATH: ...' naming the entry or field, at
load; they used to load and fail later ('inputs overflow', 'lower the learning rate')."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn
from portnn.io import schema

X = np.random.default_rng(0).standard_normal((16, 3))
Y = np.random.default_rng(1).standard_normal((16, 2))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The entries of a trained Dense-BatchNorm-Dense model with Adam state."""
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.BatchNorm1d(4), portnn.Tanh(), portnn.Dense(4, 2), seed=1)
    net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=8)
    path = tmp_path_factory.mktemp("ranges") / "m.npz"
    portnn.save(net, path)
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def with_array(entries: dict[str, bytes], name: str, change: Any) -> dict[str, bytes]:
    array = np.load(io.BytesIO(entries[f"{name}.npy"]))
    return {**entries, f"{name}.npy": npy(change(array))}


def with_step(entries: dict[str, bytes], step: int) -> dict[str, bytes]:
    doc = json.loads(np.load(io.BytesIO(entries["training.npy"])).tobytes())
    for counters in doc["optimizer"]["counters"].values():
        counters["step"] = step
    return {**entries, "training.npy": npy(np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))}


def negative_first(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.flat[0] = -0.5
    return b


@pytest.mark.parametrize(("name", "message"), [
    ("state/1.running_var", r"entry 'state/1.running_var' has 1 negative value\(s\) of 4 \(the first -0.5\); "
                            r"a running variance is >= 0"),
    ("optim/0.weight/v", r"entry 'optim/0.weight/v' has 1 negative value\(s\) of 12 \(the first -0.5\); "
                         r"Adam's mean of squared gradients is >= 0"),
    ("optim/3.bias/v", r"entry 'optim/3.bias/v' has 1 negative value\(s\) of 2"),
])
def test_a_negative_variance_is_refused_at_load(tmp_path: Path, saved: dict[str, bytes], name: str,
                                                message: str) -> None:
    path = write(tmp_path / "m.npz", with_array(saved, name, negative_first))
    with pytest.raises(ValueError, match=f"^load: {path}: {message}"):
        portnn.load(path)


def test_negative_values_elsewhere_still_load(tmp_path: Path, saved: dict[str, bytes]) -> None:
    """Weights, running means and Adam's first moment m may be negative."""
    entries = saved
    for name in ("param/0.weight", "state/1.running_mean", "optim/0.weight/m"):
        entries = with_array(entries, name, negative_first)
    portnn.load(write(tmp_path / "m.npz", entries))


def test_a_step_counter_past_2_to_the_53_is_refused_at_load(tmp_path: Path, saved: dict[str, bytes]) -> None:
    path = write(tmp_path / "m.npz", with_step(saved, 2**63 - 1))
    with pytest.raises(ValueError, match=rf"^load: {path}: training.optimizer.counters\['0.weight'\]\['step'\] must "
                                         rf"be an int in \[0, {2**53}\], got {2**63 - 1}"):
        portnn.load(path)


def test_a_step_counter_at_2_to_the_53_loads_and_trains(tmp_path: Path, saved: dict[str, bytes]) -> None:
    net = portnn.load(write(tmp_path / "m.npz", with_step(saved, schema.MAX_COUNT)))
    net.fit(X, Y, epochs=1, batch_size=8)
    assert int(portnn.to_numpy(net.optimizer_state["step"])) == 2**53 + 2
    assert all(np.isfinite(v).all() for v in net.state_dict().values())
