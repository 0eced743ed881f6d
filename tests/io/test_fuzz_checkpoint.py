"""Fuzzing load with mutated checkpoints (hypothesis, bounded to a few seconds in all): each load gives an
identical model or a ValueError 'load: PATH: ...'; never another exception type.

How each mutation class is judged:
- truncation (a proper prefix of the file): the zip's end-of-directory record is its last bytes, so every cut is a
  ValueError.
- byte flips (1-3 bytes xor-ed anywhere): a flip where load does not look (a local header's time or sizes, which
  zipfile takes from the central directory; an ignored flag bit) leaves the model identical; any other flip is a
  ValueError: the directory and every .npy header are checked, and every needed entry is read to its end, so
  zipfile verifies its CRC-32 and a flip in the data cannot pass unseen.
- .safetensors (issue 23): truncation and byte flips as above. The format has no checksum of its own; the SHA-256
  digests ``save`` writes into its metadata make every flip in the data or the header a ValueError, unless the
  library and the digests read the same values (a flip in the header's padding); 300 random single-bit flips (55
  loaded with changed weights before the digests) are each a ValueError or an identical model.
- JSON edits (a value anywhere in the architecture or training document replaced, nudged, deleted or added, then
  re-serialised, NaN/Infinity included): the file stays a valid archive and the model may legitimately differ, so
  the property is a ValueError, or a model whose fields pass the schema: saved again it loads as the same model,
  and it trains one epoch (a FloatingPointError is fit's own report of divergence, e.g. an edited huge lr).
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portnn
from tests.io.compare import assert_same_optimizer_state

X = np.random.default_rng(0).standard_normal((8, 3))
Y = (X[:, :2] > 0).astype(np.float64)  # 0/1 targets for every loss but SoftmaxCrossEntropy
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])  # + max_examples


def make_net() -> portnn.Sequential:
    """Every kind of field: Dropout, a layer config, Adam state and counters, metrics, validation history, info."""
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.LeakyReLU(0.1), portnn.Dropout(0.2), portnn.Dense(4, 2),
                            seed=2)
    net.fit(X, Y, loss=portnn.BinaryCrossEntropy(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=4, seed=7,
            validation_data=(X, Y))
    net.info = {"example": "fuzz", "tags": [1, 2.5, None]}
    return net


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, portnn.Sequential, Path]:
    """(the saved bytes, the model they load as, a scratch directory)."""
    scratch = tmp_path_factory.mktemp("fuzz")
    portnn.save(make_net(), scratch / "base.npz")
    return (scratch / "base.npz").read_bytes(), portnn.load(scratch / "base.npz"), scratch


@pytest.fixture(scope="module")
def base_safetensors(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, portnn.Sequential, Path]:
    """As ``base``, saved as .safetensors."""
    pytest.importorskip("safetensors")
    scratch = tmp_path_factory.mktemp("fuzz-safetensors")
    portnn.save(make_net(), scratch / "base.safetensors")
    return (scratch / "base.safetensors").read_bytes(), portnn.load(scratch / "base.safetensors"), scratch


def variant(raw: bytes, compression: int) -> bytes:
    """The saved entries plus one load ignores ('notes'), written stored or deflated (as np.savez_compressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as z, zipfile.ZipFile(out, "w", compression) as w:
        for info in z.infolist():
            w.writestr(info.filename, z.read(info))
        notes = io.BytesIO()
        np.save(notes, np.arange(6.0))
        w.writestr("notes.npy", notes.getvalue())
    return out.getvalue()


def assert_identical(a: portnn.Sequential, b: portnn.Sequential) -> None:
    assert repr(a) == repr(b)
    assert (a.seed, a.dtype, a.epoch, a.shuffle_seed, a.metrics, a.history, a.info) == (
        b.seed, b.dtype, b.epoch, b.shuffle_seed, b.metrics, b.history, b.info)
    assert repr(a.loss) == repr(b.loss)
    assert repr(a.optimizer) == repr(b.optimizer)
    assert a.state_dict().keys() == b.state_dict().keys()
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    assert_same_optimizer_state(b.optimizer_state, a.optimizer_state)  # counters stay 0-d int64 arrays


def load_or_value_error(path: Path) -> portnn.Sequential | None:
    """The model, or None after a ValueError naming the file (any other exception fails the test)."""
    try:
        return portnn.load(path)
    except ValueError as err:
        message = str(err)
    assert message.startswith(f"load: {path}: "), message
    return None


@settings(FUZZ, max_examples=40)
@given(st.data())
def test_a_truncated_checkpoint_is_a_value_error(base: tuple[bytes, portnn.Sequential, Path], data: st.DataObject
                                                 ) -> None:
    raw, _, scratch = base
    path = scratch / "cut.npz"
    path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1), label="keep")])
    assert load_or_value_error(path) is None


@settings(FUZZ, max_examples=250)
@given(st.data())
def test_a_checkpoint_with_flipped_bytes_loads_identical_or_is_a_value_error(
        base: tuple[bytes, portnn.Sequential, Path], data: st.DataObject) -> None:
    raw, model, scratch = base
    compression = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), label="compression")
    raw = variant(raw, compression)
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        mutated[data.draw(st.integers(0, len(raw) - 1), label="at")] ^= data.draw(st.integers(1, 255), label="xor")
    path = scratch / "flipped.npz"
    path.write_bytes(bytes(mutated))
    back = load_or_value_error(path)
    if back is not None:
        assert_identical(back, model)


@settings(FUZZ, max_examples=40)
@given(st.data())
def test_a_truncated_safetensors_checkpoint_is_a_value_error(base_safetensors: tuple[bytes, portnn.Sequential, Path],
                                                             data: st.DataObject) -> None:
    raw, _, scratch = base_safetensors
    path = scratch / "cut.safetensors"
    path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1), label="keep")])
    assert load_or_value_error(path) is None


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_a_safetensors_checkpoint_with_flipped_bytes_loads_identical_or_is_a_value_error(
        base_safetensors: tuple[bytes, portnn.Sequential, Path], data: st.DataObject) -> None:
    raw, model, scratch = base_safetensors
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3), label="flips")):
        mutated[data.draw(st.integers(0, len(raw) - 1), label="at")] ^= data.draw(st.integers(1, 255), label="xor")
    path = scratch / "flipped.safetensors"
    path.write_bytes(bytes(mutated))
    back = load_or_value_error(path)
    if back is not None:
        assert_identical(back, model)


def test_300_single_bit_flips_of_a_safetensors_checkpoint_change_nothing_silently(
        base_safetensors: tuple[bytes, portnn.Sequential, Path]) -> None:
    raw, model, scratch = base_safetensors
    rng = np.random.default_rng(23)
    path, silent, refused = scratch / "bit.safetensors", [], 0
    for bit in rng.integers(0, 8 * len(raw), size=300):
        mutated = bytearray(raw)
        mutated[bit // 8] ^= 1 << int(bit % 8)
        path.write_bytes(bytes(mutated))
        back = load_or_value_error(path)
        if back is None:
            refused += 1
            continue
        try:
            assert_identical(back, model)
        except AssertionError:
            silent.append(int(bit))
    assert silent == [], f"{len(silent)} of 300 flips loaded a different model (bits {silent[:10]})"
    assert refused > 250  # nearly every flip is a ValueError; the rest (header padding) change nothing


def json_values() -> st.SearchStrategy[Any]:
    names = st.sampled_from(["Dense", "Tanh", "ReLU", "Adam", "SGD", "MSE", "SSE", "BinaryCrossEntropy",
                             "accuracy", "float32", "float64", "portnn-checkpoint-1", "lr", "0.weight", "step"])
    scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-3, 30) | st.floats()
               | st.text(max_size=4) | names)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=4) | names, inner, max_size=3), max_leaves=6)


def locations(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``doc`` (the root is ())."""
    found = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += locations(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += locations(value, (*at, i))
    return found


def edit(doc: Any, data: st.DataObject) -> Any:
    """One edit of ``doc`` at a drawn location: replace, nudge an int, delete, or add a key."""
    at = data.draw(st.sampled_from(locations(doc)), label="at")
    parent = doc
    for key in at[:-1]:
        parent = parent[key]
    target = parent[at[-1]] if at else doc
    ops = ["replace"] + (["nudge"] if type(target) is int else []) + (["delete"] if at else []) + (
        ["add"] if isinstance(target, dict) else [])
    op = data.draw(st.sampled_from(ops), label="op")
    if op == "add":
        target[data.draw(st.text(max_size=6), label="key")] = data.draw(json_values(), label="value")
        return doc
    if op == "delete":
        del parent[at[-1]]
        return doc
    value = target + data.draw(st.integers(-3, 3), label="by") if op == "nudge" else data.draw(json_values())
    if not at:
        return value
    parent[at[-1]] = value
    return doc


@settings(FUZZ, max_examples=250)
@given(st.data())
def test_a_checkpoint_with_edited_json_is_a_value_error_or_a_model_in_the_schema(
        base: tuple[bytes, portnn.Sequential, Path], data: st.DataObject) -> None:
    raw, _, scratch = base
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        entries = {info.filename: z.read(info) for info in z.infolist()}
    name = data.draw(st.sampled_from(["architecture.npy", "training.npy"]), label="entry")
    doc = edit(json.loads(np.load(io.BytesIO(entries[name])).tobytes()), data)
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))  # NaN/Infinity written as such
    entries[name] = buffer.getvalue()
    path = scratch / "edited.npz"
    with zipfile.ZipFile(path, "w") as z:
        for entry, payload in entries.items():
            z.writestr(entry, payload)
    net = load_or_value_error(path)
    if net is None:
        return
    portnn.save(net, scratch / "again.npz")  # what loaded passes the schema: saved again, it loads the same
    assert_identical(portnn.load(scratch / "again.npz"), net)
    loss = net.loss or portnn.MSE()
    y = np.zeros(len(X), dtype=np.int64) if isinstance(loss, portnn.SoftmaxCrossEntropy) else Y
    with np.errstate(all="ignore"), contextlib.suppress(FloatingPointError):
        net.fit(X, y, loss=loss, optimizer=net.optimizer or portnn.SGD(0.1), epochs=1, batch_size=4)
