"""Checkpoints: everything needed to resume, bit-for-bit resume in a new process, loading on every backend, and
corrupt or half-written files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn
from portnn import datasets, recipes
from portnn.io import checkpoint
from tests.io.compare import assert_same_optimizer_state

X, Y = datasets.spiral(seed=0, n_per_class=30)
X_VAL, Y_VAL = datasets.spiral(seed=1, n_per_class=10)


def make_net() -> portnn.Sequential:
    return portnn.Sequential(portnn.Dense(2, 16, init="he_normal"), portnn.LeakyReLU(0.05), portnn.Dense(16, 3),
                             seed=4)


def first_fit(net: portnn.Sequential, epochs: int) -> list[float]:
    return net.fit(X, Y, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.01, weight_decay=1e-4),
                   epochs=epochs, batch_size=16, seed=9, validation_data=(X_VAL, Y_VAL))


def test_save_load_keeps_the_whole_training_state(tmp_path: Path) -> None:
    net = make_net()
    first_fit(net, 3)
    net.info = {"note": "hello"}
    portnn.save(net, tmp_path / "m.npz")
    back = portnn.load(tmp_path / "m.npz")
    assert repr(back) == repr(net)
    assert back.seed == 4
    assert back.dtype == "float64"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    assert type(back.loss) is portnn.SoftmaxCrossEntropy
    assert type(back.optimizer) is portnn.Adam
    assert net.optimizer is not None
    assert back.optimizer.config() == net.optimizer.config()
    assert set(back.optimizer_state) == {"step", "m", "v"}
    assert_same_optimizer_state(back.optimizer_state, net.optimizer_state)  # every m and v, and the step
    assert int(portnn.to_numpy(back.optimizer_state["step"])) == 18  # 90 samples / 16 -> 6 steps x 3 epochs
    assert (back.epoch, back.shuffle_seed, back.metrics, back.info) == (3, 9, ["accuracy"], {"note": "hello"})
    assert back.history == net.history
    assert len(back.history["val_accuracy"]) == 3
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:  # plain arrays only, readable without pickle
        assert all(data[k].dtype != object for k in data.files)


def test_resume_in_a_new_process_equals_uninterrupted_bit_for_bit(tmp_path: Path) -> None:
    whole = make_net()
    first_fit(whole, 10)
    half = make_net()
    first_fit(half, 5)
    portnn.save(half, tmp_path / "half.npz")
    script = textwrap.dedent(f"""
        import portnn
        from portnn import datasets
        X, Y = datasets.spiral(seed=0, n_per_class=30)
        X_VAL, Y_VAL = datasets.spiral(seed=1, n_per_class=10)
        net = portnn.load({str(tmp_path / "half.npz")!r})
        net.fit(X, Y, epochs=5, batch_size=16, validation_data=(X_VAL, Y_VAL))  # no loss, optimizer or seed
        portnn.save(net, {str(tmp_path / "resumed.npz")!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    resumed = portnn.load(tmp_path / "resumed.npz")
    assert resumed.epoch == 10
    assert resumed.history == whole.history  # every loss and metric, as Python floats
    for k, v in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)
    assert_same_optimizer_state(resumed.optimizer_state, whole.optimizer_state)


@pytest.fixture(scope="module")
def numpy_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    net = make_net()
    first_fit(net, 5)
    path = tmp_path_factory.mktemp("ckpt") / "numpy.npz"
    portnn.save(net, path)
    return path, portnn.to_numpy(net.predict(X_VAL))


def test_a_numpy_checkpoint_loads_and_predicts_on_every_backend(case64, numpy_checkpoint) -> None:
    path, expected = numpy_checkpoint
    net = portnn.load(path)
    out = net.predict(case64.asarray(X_VAL))  # placed on first use in the data's namespace and device
    assert out.dtype == case64.dtype
    np.testing.assert_array_equal(np.argmax(portnn.to_numpy(out), axis=1), np.argmax(expected, axis=1))
    np.testing.assert_allclose(portnn.to_numpy(out), expected, rtol=0, atol=1e-12)
    # training continues there, from the saved Adam state (one epoch: 3 steps of one shape, cheap on JAX)
    net.fit(case64.asarray(X), case64.asarray(Y, dtype=case64.xp.int64), epochs=1, batch_size=30)
    ref = portnn.load(path)
    ref.fit(X, Y, epochs=1, batch_size=30)
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[k], v, rtol=0, atol=1e-12)


def test_a_float32_model_loads_as_float32(tmp_path: Path) -> None:
    net = make_net().to("numpy", dtype="float32")
    first_fit(net, 1)
    portnn.save(net, tmp_path / "f32.npz")
    back = portnn.load(tmp_path / "f32.npz")
    assert back.predict(X_VAL).dtype == np.float32
    np.testing.assert_array_equal(portnn.to_numpy(back.predict(X_VAL)), portnn.to_numpy(net.predict(X_VAL)))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    net = make_net()
    first_fit(net, 1)
    path = tmp_path / "model.npz"
    portnn.save(net, path)
    return path


@pytest.mark.parametrize("cut", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_a_truncated_checkpoint_is_a_clear_error_and_stays_as_it_is(saved: Path, cut: float) -> None:
    data = saved.read_bytes()
    bad = saved.with_name("truncated.npz")
    bad.write_bytes(data[:int(len(data) * cut)])
    before = bad.read_bytes()
    # every cut loses the zip's end-of-directory record, which zipfile reads first
    with pytest.raises(ValueError, match=r"^load: .*truncated\.npz: not a readable zip archive"):
        portnn.load(bad)
    assert bad.read_bytes() == before


def test_a_corrupted_checkpoint_is_a_clear_error(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    bad = saved.with_name("flipped.npz")
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"^load: .*flipped\.npz: (entry '[a-z/0-9.]+'|not a readable zip archive)"):
        portnn.load(bad)


@pytest.mark.parametrize(("entries", "message"), [
    ({"param/0.weight": np.zeros((2, 2))}, "has no 'architecture' entry"),
    ({"architecture": np.array([object()], dtype=object)}, "entry 'architecture' holds Python objects"),  # pickle
    ({"architecture": np.frombuffer(b"{not json", dtype=np.uint8)}, "entry 'architecture' is not valid JSON"),
    ({"architecture": np.frombuffer(json.dumps({"format": "other"}).encode(), dtype=np.uint8)},
     r"architecture.format 'other' is not one of"),
    ({"architecture": np.frombuffer(json.dumps({"format": checkpoint.FORMAT, "seed": 0, "dtype": None, "epoch": 0,
                                                "layers": [{"type": "Conv9D"}]}).encode(), dtype=np.uint8)},
     r"architecture.layers\[0\] has unknown type 'Conv9D'"),
])
def test_files_not_written_by_save_are_named_errors(tmp_path: Path, entries: dict, message: str) -> None:
    path = tmp_path / "odd.npz"
    np.savez(path, **entries)
    with pytest.raises(ValueError, match=rf"^load: .*odd\.npz: .*{message}"):
        portnn.load(path)


def test_a_version_1_checkpoint_still_loads(tmp_path: Path) -> None:
    arch = {"format": "portnn-checkpoint-1", "seed": 0, "dtype": "float64", "epoch": 7,
            "layers": [{"type": "Dense", "in_features": 2, "out_features": 1, "bias": False, "init": "uniform"}]}
    weights: dict[str, Any] = {"param/0.weight": np.array([[2.0], [3.0]])}  # a name no keyword can spell
    np.savez(tmp_path / "v1.npz", architecture=np.frombuffer(json.dumps(arch).encode(), dtype=np.uint8), **weights)
    net = portnn.load(tmp_path / "v1.npz")
    assert net.epoch == 7
    assert net.optimizer is None
    np.testing.assert_array_equal(portnn.to_numpy(net.predict(np.array([[1.0, 1.0]]))), [[5.0]])


def test_a_save_that_fails_half_way_leaves_the_old_checkpoint(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = saved.read_bytes()
    net = make_net()
    first_fit(net, 2)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        portnn.save(net, saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.npz"]  # no temporary file left behind


# ---- files written by the release before the hardening of load (commit 3708951) must keep loading ---------------
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_mlp() -> tuple[portnn.Sequential, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """How tests/fixtures/mlp-adam-2epochs.npz was made (then given the info below and saved); retrained here."""
    recipe = recipes.get("mlp")
    data, val = recipe.data(), datasets.regression(seed=2, n=16)
    net = recipe.model(3)
    net.fit(*data, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=16, seed=5,
            validation_data=val)
    return net, data, val


def fixture_cnn() -> tuple[portnn.Sequential, tuple[np.ndarray, np.ndarray]]:
    """How tests/fixtures/cnn-sgd-float32.npz was made: float32, Dropout, SGD with Nesterov momentum."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((24, 1, 4, 4)), rng.integers(0, 3, 24)
    net = portnn.Sequential(portnn.Conv2D(1, 2, 3, padding=1), portnn.ReLU(), portnn.MaxPool2D(2),
                            portnn.Dropout(0.25), portnn.Flatten(), portnn.Dense(8, 3), seed=6, dtype="float32")
    net.fit(*data, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.SGD(0.05, momentum=0.9, nesterov=True),
            epochs=3, batch_size=8, seed=2)
    return net, data


def assert_written_as(fixture: Path, net: portnn.Sequential, path: Path) -> None:
    """A save of ``net`` holds the fixture's entries, in its order and byte for byte, but for the format name: since
    0.2.0 every file is 'portnn-checkpoint-3' (0.1.0 wrote format 2 for models without layer state; the layout is
    the same, format 3 may add 'state/' entries)."""
    portnn.save(net, path)
    with zipfile.ZipFile(fixture) as old, zipfile.ZipFile(path) as new:
        assert [(i.filename, i.compress_type) for i in new.infolist()] == [(i.filename, i.compress_type)
                                                                          for i in old.infolist()]
        for info in old.infolist():
            expected = old.read(info)
            if info.filename == "architecture.npy":
                expected = expected.replace(b'"portnn-checkpoint-2"', b'"portnn-checkpoint-3"')
            assert new.read(info.filename) == expected, info.filename


def test_an_adam_checkpoint_of_the_previous_release_loads_and_resumes(tmp_path: Path) -> None:
    """0.1.0 computed Adam's bias corrections with Python's pow, portnn now with the standard's ``xp.pow`` (NumPy's
    power ufunc, which array-api-strict runs too): a retrain agrees with the file to 1 ulp (measured: weights 1.1e-16,
    val_loss 2.9e-16 relative), and the loaded model re-saves byte for byte and resumes deterministically."""
    back = portnn.load(FIXTURES / "mlp-adam-2epochs.npz")
    net, data, val = fixture_mlp()
    assert repr(back) == repr(net)
    assert (back.seed, back.epoch, back.shuffle_seed, back.metrics) == (net.seed, net.epoch, net.shuffle_seed,
                                                                         net.metrics)
    assert back.optimizer is not None
    assert net.optimizer is not None
    assert back.optimizer.config() == net.optimizer.config()
    for key, values in net.history.items():
        np.testing.assert_allclose(back.history[key], values, rtol=1e-15, atol=0)
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(back.state_dict()[k], v, rtol=0, atol=1e-15)
    assert back.epoch == 2
    assert len(back.history["loss"]) == len(back.history["val_loss"]) == 2
    assert int(portnn.to_numpy(back.optimizer_state["step"])) == 8  # 64 samples / 16 x 2 epochs
    assert back.info == {"example": "mlp", "written_by": "portnn 0.1.0 at commit 3708951"}
    assert_written_as(FIXTURES / "mlp-adam-2epochs.npz", back, tmp_path / "again.npz")
    # it continues as the uninterrupted run does, and the same way twice
    again = portnn.load(FIXTURES / "mlp-adam-2epochs.npz")
    resumed = back.fit(*data, epochs=1, batch_size=16, validation_data=val)
    assert again.fit(*data, epochs=1, batch_size=16, validation_data=val) == resumed
    np.testing.assert_allclose(resumed, net.fit(*data, epochs=1, batch_size=16, validation_data=val), rtol=1e-14)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k], back.state_dict()[k])
        np.testing.assert_allclose(back.state_dict()[k], v, rtol=0, atol=1e-14)


def test_a_float32_cnn_checkpoint_of_the_previous_release_loads(tmp_path: Path) -> None:
    """The file's training used 0.1.0's host-drawn dropout masks, which the counter-based generator replaced, so a
    retrain no longer reproduces its weights: the loaded model is checked against the recipe's settings and by
    saving it again, which must reproduce the file entry for entry and byte for byte."""
    back = portnn.load(FIXTURES / "cnn-sgd-float32.npz")
    net, data = fixture_cnn()
    assert repr(back) == repr(net)
    assert (back.seed, back.epoch, back.shuffle_seed, back.metrics) == (6, 3, 2, ["accuracy"])
    assert {k: len(v) for k, v in back.history.items()} == {"loss": 3, "accuracy": 3}
    assert back.dtype == "float32"
    assert back.optimizer is not None
    assert net.optimizer is not None
    assert back.optimizer.config() == net.optimizer.config()
    assert {k: v.shape for k, v in back.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    assert all(v.dtype == np.float32 for v in back.state_dict().values())
    assert set(back.optimizer_state) == {"velocity"}  # a velocity for every parameter, no counter
    assert [set(layer) for layer in back.optimizer_state["velocity"]] == [set(layer) for layer in back.params]
    assert_written_as(FIXTURES / "cnn-sgd-float32.npz", back, tmp_path / "again.npz")
    assert_written_as(FIXTURES / "cnn-sgd-float32.npz", portnn.load(tmp_path / "again.npz"), tmp_path / "more.npz")
    assert np.isfinite(portnn.to_numpy(back.predict(data[0]))).all()
    back.fit(*data, epochs=1, batch_size=8)  # resumes: same loss, optimizer and its velocity
    assert back.epoch == 4


def test_a_version_1_fixture_loads() -> None:
    net = portnn.load(FIXTURES / "v1-dense.npz")  # format 1: architecture and weights, no training entry
    assert (net.epoch, net.optimizer, net.loss, net.history) == (7, None, None, {})
    np.testing.assert_array_equal(net.state_dict()["0.weight"], [[2.0], [3.0]])
    np.testing.assert_allclose(portnn.to_numpy(net.predict(np.array([[1.0, 1.0]]))), [[1 / (1 + np.exp(-5.0))]],
                               rtol=1e-15)
