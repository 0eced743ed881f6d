"""Checkpoints as .safetensors: the same model as .npz bit for bit (weights, layer state, optimizer state, schedule,
history), resume equal to uninterrupted training, damaged files a ValueError naming the file, and loading bounded by
the file as for .npz."""

from __future__ import annotations

import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn import cli
from portnn.io.safetensors_file import DIGESTS

st = pytest.importorskip("safetensors.numpy")

RNG = np.random.default_rng(4)
X = RNG.standard_normal((40, 1, 6, 6))
LABELS = RNG.integers(0, 3, 40)


def bn_net(dtype: str | None = None) -> portnn.Sequential:
    return portnn.Sequential(portnn.Conv2D(1, 3, 3, padding=1, bias=False), portnn.BatchNorm2d(3), portnn.ReLU(),
                             portnn.Residual(portnn.Conv2D(3, 3, 3, padding=1, bias=False), portnn.BatchNorm2d(3)),
                             portnn.GlobalAvgPool2D(), portnn.Dense(3, 3), seed=2, dtype=dtype)


def trained(dtype: str | None = None) -> portnn.Sequential:
    net = bn_net(dtype)
    net.fit(X, LABELS, loss=portnn.SoftmaxCrossEntropy(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=16,
            schedule=portnn.CosineAnnealing(10, warmup=2, interval="step"), clip_norm=2.0)
    return net


def same(a: portnn.Sequential, b: portnn.Sequential) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert sa[k].tobytes() == sb[k].tobytes(), k
    oa, ob = a.optimizer_state, b.optimizer_state
    assert oa.keys() == ob.keys()
    for slot in oa:
        if isinstance(oa[slot], list):
            for la, lb in zip(oa[slot], ob[slot], strict=True):
                assert {n: portnn.to_numpy(v).tobytes() for n, v in la.items()} == \
                    {n: portnn.to_numpy(v).tobytes() for n, v in lb.items()}
        else:
            assert int(portnn.to_numpy(oa[slot])) == int(portnn.to_numpy(ob[slot]))
    assert (repr(a.layers), repr(a.loss), repr(a.optimizer), repr(a.schedule)) == \
        (repr(b.layers), repr(b.loss), repr(b.optimizer), repr(b.schedule))
    assert (a.epoch, a.schedule_t, a.clip_norm, a.shuffle_seed, a.seed) == \
        (b.epoch, b.schedule_t, b.clip_norm, b.shuffle_seed, b.seed)
    assert a.history == b.history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_safetensors_and_npz_round_trips_give_the_same_model(tmp_path: Path, dtype: str) -> None:
    net = trained(dtype)
    portnn.save(net, tmp_path / "m.safetensors")
    portnn.save(net, tmp_path / "m.npz")
    from_st, from_npz = portnn.load(tmp_path / "m.safetensors"), portnn.load(tmp_path / "m.npz")
    same(from_st, net)
    same(from_npz, from_st)
    tensors = st.load_file(str(tmp_path / "m.safetensors"))
    assert {"0.weight", "1.running_mean", "3.0.weight", "3.1.running_var", "5.bias", "optim/5.bias/m"} <= set(tensors)
    assert tensors["0.weight"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tensors["1.running_var"], net.state_dict()["1.running_var"])
    # a model saved again from the loaded one holds the same tensors (the library writes the metadata in a hash
    # map's order, so the header's bytes may differ between two saves)
    portnn.save(from_st, tmp_path / "again.safetensors")
    again = st.load_file(str(tmp_path / "again.safetensors"))
    assert {k: v.tobytes() for k, v in again.items()} == {k: v.tobytes() for k, v in tensors.items()}


def test_the_seed_net_round_trips_too(tmp_path: Path) -> None:
    net = portnn.recipes.get("seed").model(1)
    portnn.save(net, tmp_path / "fresh.safetensors")  # never trained: no optimizer, no training state
    same(portnn.load(tmp_path / "fresh.safetensors"), net)


def test_resume_from_safetensors_equals_uninterrupted_training(tmp_path: Path) -> None:
    whole = trained()
    whole.fit(X, LABELS, epochs=2, batch_size=16)
    half = trained()
    portnn.save(half, tmp_path / "half.safetensors")
    resumed = portnn.load(tmp_path / "half.safetensors")
    resumed.fit(X, LABELS, epochs=2, batch_size=16)
    same(resumed, whole)


def _file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "m.safetensors"
    portnn.save(trained(), path)
    return path, path.read_bytes()


def _meta(data: bytes) -> dict[str, str]:
    """The file's metadata without the digests: the schema's checks apply to such a file as to any (a file whose
    digests disagree is refused before them: tests/io/test_safetensors_digest.py)."""
    header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])
    return {k: v for k, v in header["__metadata__"].items() if k not in DIGESTS}


def _rewrite(data: bytes, edit) -> bytes:
    """The file with its JSON header changed by ``edit(header)`` (offsets kept), without the digests."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    for name in DIGESTS:
        header.get("__metadata__", {}).pop(name, None)
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def test_damaged_files_are_a_value_error_naming_the_file_and_what(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    bad = tmp_path / "bad.safetensors"

    def refused(content: bytes, match: str) -> None:
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=match) as info:
            portnn.load(bad)
        assert str(bad) in str(info.value)

    refused(data[: len(data) // 2], "not a readable safetensors file")  # truncated
    refused(data[:5], "not a readable safetensors file")
    refused(b"", "not a readable safetensors file")
    refused(data[:8] + b"[" + data[9:], "not a readable safetensors file")  # a flipped header byte

    def set_meta(key, value):
        return lambda h: h["__metadata__"].__setitem__(key, value)

    refused(_rewrite(data, lambda h: h.pop("__metadata__")), "has no 'architecture' entry")
    refused(_rewrite(data, set_meta("architecture", "[1, 2")), "architecture")
    arch = json.loads(json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]["architecture"])
    arch["layers"][5]["out_features"] = 4
    refused(_rewrite(data, set_meta("architecture", json.dumps(arch))), r"entry 'param/5.weight' has shape \(3, 3\)")
    training = json.loads(json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]["training"])
    training["schedule"]["t"] = -1
    refused(_rewrite(data, set_meta("training", json.dumps(training))), r"training.schedule.t must be an int")

    def rename(h):
        h["1.runing_mean"] = h.pop("1.running_mean")

    refused(_rewrite(data, rename), "missing entries")

    # a tensor of another dtype: write a file whose 0.weight is float16
    tensors = st.load_file(str(path))
    meta = _meta(data)
    tensors["0.weight"] = tensors["0.weight"].astype(np.float16)
    refused(st.save(tensors, metadata=meta), "entry 'param/0.weight' has dtype")
    tensors = st.load_file(str(path))
    tensors["5.bias"] = np.array([0.0, np.inf, 1.0])
    refused(st.save(tensors, metadata=meta), r"entry 'param/5.bias' has 1 non-finite value")


def test_loading_a_small_hostile_file_is_bounded(tmp_path: Path) -> None:
    """A tiny file declaring two Dense(15000, 15000) layers fails at once, without allocating their weights."""
    net = portnn.Sequential(portnn.Dense(2, 2), seed=0)
    path = tmp_path / "m.safetensors"
    portnn.save(net, path)
    data = path.read_bytes()
    meta = _meta(data)
    arch = json.loads(meta["architecture"])
    arch["layers"] = [{"type": "Dense", "in_features": 15000, "out_features": 15000, "bias": True,
                       "init": "glorot_uniform"}] * 2
    meta["architecture"] = json.dumps(arch)
    hostile = tmp_path / "hostile.safetensors"
    hostile.write_bytes(st.save(st.load_file(str(path)), metadata=meta))
    assert hostile.stat().st_size < 2000
    tracemalloc.start()
    with pytest.raises(ValueError, match="missing entries"):
        portnn.load(hostile)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_cli_saves_resumes_and_predicts_with_safetensors(tmp_path: Path, capsys) -> None:
    path = tmp_path / "seed.safetensors"
    assert cli.main(["train", "--epochs", "20", "--quiet", "--save", str(path)]) == 0
    assert portnn.load(path).epoch == 20
    assert cli.main(["train", "--resume", str(path), "--epochs", "5", "--quiet", "--save", str(path)]) == 0
    assert portnn.load(path).epoch == 25
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.array([[0, 0, 1], [1, 1, 1]], dtype=np.float64))
    out = tmp_path / "y.npy"
    assert cli.main(["predict", "--model", str(path), "--input", str(inputs), "--output", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), portnn.to_numpy(portnn.load(path).predict(np.load(inputs))))
