"""SHA-256 digests in .safetensors checkpoints (issue 23): the format has no checksum, and a flipped bit in the tensor
data loaded as a changed weight. ``save`` writes a digest of the data section and one of the header into the
metadata; ``load`` checks both, streaming the data through the hash, so memory stays what loading needs. A file
without them loads and says so in ``net.info['provenance']``."""

from __future__ import annotations

import hashlib
import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import portnn
from portnn.io.safetensors_file import DIGEST_DATA, DIGEST_HEADER, DIGESTS, PROVENANCE

st = pytest.importorskip("safetensors.numpy")


def trained() -> portnn.Sequential:
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.BatchNorm1d(4), portnn.Dense(4, 2), seed=1)
    X = np.random.default_rng(0).standard_normal((8, 3))
    net.fit(X, X[:, :2], loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=4)
    return net


def parts(data: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def without_digests(path: Path) -> bytes:
    """The file as a tool (or portnn before the digests) writes it: same tensors and metadata, no digests."""
    header, _ = parts(path.read_bytes())
    meta = {k: v for k, v in header["__metadata__"].items() if k not in DIGESTS}
    return st.save(st.load_file(str(path)), metadata=meta)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "m.safetensors"
    portnn.save(trained(), path)
    return path


def test_save_writes_the_digest_of_the_data_section(saved: Path) -> None:
    header, data = parts(saved.read_bytes())
    assert header["__metadata__"][DIGEST_DATA] == hashlib.sha256(data).hexdigest()
    assert len(header["__metadata__"][DIGEST_HEADER]) == 64
    assert "provenance" not in portnn.load(saved).info


def test_a_flipped_data_bit_is_a_value_error_naming_the_file(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[-5] ^= 0x10  # inside the last tensor's bytes
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=f"^load: {saved}: the tensor data does not match its SHA-256 digest: the "
                                         "file is damaged$"):
        portnn.load(saved)


def test_edited_metadata_is_a_value_error_naming_the_file(saved: Path) -> None:
    header, data = parts(saved.read_bytes())
    header["__metadata__"]["training"] = header["__metadata__"]["training"].replace('"lr": 0.01', '"lr": 0.03')
    text = json.dumps(header).encode()
    saved.write_bytes(struct.pack("<Q", len(text)) + text + data)
    with pytest.raises(ValueError, match=f"^load: {saved}: the header \\(tensor table or metadata\\) does not match "
                                         "its SHA-256 digest"):
        portnn.load(saved)


def test_one_digest_of_two_is_a_value_error(saved: Path) -> None:
    header, _ = parts(saved.read_bytes())
    meta = {k: v for k, v in header["__metadata__"].items() if k != DIGEST_HEADER}
    saved.write_bytes(st.save(st.load_file(str(saved)), metadata=meta))
    with pytest.raises(ValueError, match=f"^load: {saved}: metadata holds one portnn digest of two"):
        portnn.load(saved)


def test_a_file_without_digests_loads_and_says_where_it_came_from(saved: Path, tmp_path: Path) -> None:
    model = portnn.load(saved)
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(without_digests(saved))
    net = portnn.load(foreign)
    assert net.info == {**model.info, "provenance": PROVENANCE}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(net.state_dict()[key], value)
    portnn.save(net, tmp_path / "again.safetensors")  # saved again: with digests, and the provenance kept
    again = portnn.load(tmp_path / "again.safetensors")
    assert again.info["provenance"] == PROVENANCE
    assert DIGEST_DATA in parts((tmp_path / "again.safetensors").read_bytes())[0]["__metadata__"]


def test_checking_the_digest_holds_no_second_copy_of_the_data(tmp_path: Path) -> None:
    net = portnn.Sequential(portnn.Dense(700, 700))
    net.fit(np.ones((2, 700)), np.ones((2, 700)), loss=portnn.MSE(), optimizer=portnn.Adam(0.001))
    path = tmp_path / "big.safetensors"
    portnn.save(net, path)
    size, largest = path.stat().st_size, 700 * 700 * 8
    portnn.load(path)  # imports and caches warmed up
    tracemalloc.start()
    portnn.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the loaded arrays (the file's size) and one tensor copied out of the mapped file at a time; the hash reads
    # 1 MiB pieces (measured: 30.5 MiB for a 22.9 MiB file whose largest tensor is 7.6 MiB)
    assert peak < size + largest + 3 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"
