"""Hostile and damaged checkpoints: load is bounded by the file (headers checked before data, nothing drawn),
every problem is a ValueError 'load: PATH: FIELD ...' raised at load, and atomic_write leaves at most one
temporary per path even when writers are killed with SIGKILL."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portnn
from portnn.io import atomic, checkpoint

MB = 1 << 20
X = np.random.default_rng(0).standard_normal((12, 3))
Y = np.random.default_rng(1).standard_normal((12, 2))


# ---- crafting files -----------------------------------------------------------------------------------------
def npy(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def json_npy(doc: Any) -> bytes:
    """A JSON entry from a document, or from its text (str) or raw bytes as given."""
    text = doc if isinstance(doc, str | bytes) else json.dumps(doc)
    return npy(np.frombuffer(text if isinstance(text, bytes) else text.encode(), dtype=np.uint8))


def arch(layers: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"format": checkpoint.FORMAT, "seed": 0, "dtype": None, "epoch": 0, "layers": layers, **fields}


def dense(n_in: int, n_out: int, bias: bool = False) -> dict[str, Any]:
    return {"type": "Dense", "in_features": n_in, "out_features": n_out, "bias": bias, "init": "uniform"}


TRAINING: dict[str, Any] = {"loss": None, "optimizer": None, "shuffle_seed": None, "metrics": None, "history": {},
                            "info": {}}


def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def write_entries(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def raw_zip(members: list[tuple[str, int, int, bytes, int]]) -> bytes:
    """A zip from (name, method, crc, bytes as stored, uncompressed size): lets a test declare any sizes."""
    out, central = bytearray(), bytearray()
    for name, method, crc, data, size in members:
        encoded, offset = name.encode(), len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded),
                           0) + encoded + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    return bytes(out + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                             len(central), len(out), 0))


def stored(name: str, data: bytes) -> tuple[str, int, int, bytes, int]:
    return name, zipfile.ZIP_STORED, zlib.crc32(data), data, len(data)


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zero_bomb(name: str, header: bytes, chunks: int, chunk: int = 8_000_000) -> tuple[str, int, int, bytes, int]:
    """A deflated entry of ``header`` then chunks x chunk zero bytes (~1000x smaller: one compressed chunk repeated;
    its CRC is left 0, as a bomb need not be honest)."""
    def part(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    return name, zipfile.ZIP_DEFLATED, 0, part(header) + part(bytes(chunk)) * chunks + b"\x03\x00", \
        len(header) + chunks * chunk


def make_net() -> portnn.Sequential:
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.Tanh(), portnn.Dense(4, 2), seed=3)
    net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=2, batch_size=4, seed=1)
    return net


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The entries of a checkpoint of make_net() (Adam state, history), as saved."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    portnn.save(make_net(), path)
    return entries_of(path)


def docs(entries: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
    def read(name: str) -> dict[str, Any]:
        return json.loads(np.load(io.BytesIO(entries[name])).tobytes())
    return read("architecture.npy"), read("training.npy")


def peak_load(path: Path) -> tuple[Any, int]:
    """(the model or the exception load gave, tracemalloc peak in bytes); tracemalloc also sees numpy's buffers."""
    tracemalloc.start()
    try:
        try:
            result: Any = portnn.load(path)
        except Exception as err:
            result = err
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- the escapes the issue found: each is now a ValueError naming the file and the field, at load ------------
def inf(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda d: json.dumps({**d, field: "INF"}).replace('"INF"', "Infinity")  # Python's json accepts it


def step(value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(d: dict[str, Any]) -> dict[str, Any]:
        d["optimizer"]["counters"]["0.weight"]["step"] = value
        return d
    return edit


def edited(d: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return d


JSON_CASES = [  # (entry, edit of its JSON document, the message after 'load: PATH: ')
    ("architecture", inf("seed"), r"entry 'architecture' is not valid JSON: Infinity is not a finite number"),
    ("architecture", inf("epoch"), r"entry 'architecture' is not valid JSON: Infinity is not a finite number"),
    ("training", inf("shuffle_seed"), r"entry 'training' is not valid JSON: Infinity is not a finite number"),
    ("training", lambda d: json.dumps(step("S")(d)).replace('"S"', "-Infinity"), "-Infinity is not a finite"),
    ("architecture", lambda d: json.dumps(d).replace('"seed": 3', '"seed": 1e400'), "1e400 overflows a float"),
    ("architecture", lambda d: [d], r"architecture must be a JSON object, got list"),
    ("architecture", lambda d: edited(d, ("epoch",), -7), r"architecture.epoch must be an int >= 0, got -7"),
    ("architecture", lambda d: edited(d, ("seed",), True), r"architecture.seed must be an int >= 0, got bool"),
    ("architecture", lambda d: edited(d, ("seed",), 3.0), r"architecture.seed must be an int >= 0, got float"),
    ("architecture", lambda d: edited(d, ("dtype",), "float16"), r"architecture.dtype must be null, 'float32'"),
    ("architecture", lambda d: {k: v for k, v in d.items() if k != "epoch"}, r"missing keys \['epoch'\]"),
    ("architecture", lambda d: edited(d, ("extra",), 1), r"unknown keys \['extra'\]"),
    ("architecture", lambda d: json.dumps(d)[:-1] + ', "seed": 4}', r"key 'seed' appears twice"),
    ("architecture", lambda d: edited(d, ("layers", 0, "in_features"), "3"), r"architecture.layers\[0\] \(Dense\)"),
    ("architecture", lambda d: edited(d, ("layers", 1), {"kind": "Tanh"}), r"layers\[1\] has unknown type None"),
    ("architecture", lambda d: edited(d, ("layers", 1, "alpha"), 0.1), r"layers\[1\] \(Tanh\): got an unexpected"),
    ("architecture", lambda d: edited(d, ("layers",), {"0": 1}), r"architecture.layers must be a JSON array"),
    ("training", step(-1), r"training.optimizer.counters\['0.weight'\]\['step'\] must be an int in \[0, "),
    ("training", step(2**63), r"training.optimizer.counters\['0.weight'\]\['step'\] must be an int in \[0, "),
    ("training", lambda d: edited(d, ("optimizer", "counters", "0.weight"), {}), r"counters must give \['step'\]"),
    ("training", lambda d: edited(d, ("metrics",), "a"), r"training.metrics must be null or a list"),
    ("training", lambda d: edited(d, ("metrics",), ["a"]), r"training.metrics: unknown metrics \['a'\]"),
    ("training", lambda d: edited(d, ("history", "loss"), ["x"]), r"training.history\['loss'\] must be a list"),
    ("training", lambda d: edited(d, ("history",), []), r"training.history must be a JSON object"),
    ("training", lambda d: edited(d, ("info",), [1]), r"training.info must be a JSON object"),
    ("training", lambda d: edited(d, ("optimizer", "config", "lr"), -1.0), r"training.optimizer \(Adam\): "),
    ("training", lambda d: edited(d, ("optimizer", "config", "lr"), 10**400), r"training.optimizer \(Adam\): "),
    ("training", lambda d: edited(d, ("optimizer", "config", "bogus"), 1), r"unexpected keyword argument 'bogus'"),
    ("training", lambda d: edited(d, ("optimizer", "type"), "Nadam"), r"training.optimizer has unknown type"),
    ("training", lambda d: edited(d, ("loss", "type"), 7), r"training.loss has unknown type 7"),
    ("training", lambda d: edited(d, ("loss",), "MSE"), r"training.loss must be a JSON object"),
    ("training", lambda d: edited(d, ("shuffle_seed",), -1), r"training.shuffle_seed must be an int >= 0, got -1"),
    ("training", lambda d: edited(d, ("info",), {"deep": json.loads("[" * 80 + "]" * 80)}),
     r"entry 'training' nests JSON 82 levels deep, more than 64"),  # training {, info {, then 80
    ("architecture", lambda _d: "[" * 100_000 + "]" * 100_000, r"holds more than 65536 JSON arrays and objects"),
    ("architecture", lambda _d: '{"a": "\\ud800' + "[" * 30, r"entry 'architecture' is not valid JSON"),
    ("architecture", lambda _d: b'{"a": "\xff\xfe"}', r"entry 'architecture' is not valid JSON: 'utf-8' codec"),
]


@pytest.mark.parametrize(("entry", "edit", "message"), JSON_CASES, ids=[f"{e}-{i}" for i, (e, _, _) in
                                                                         enumerate(JSON_CASES)])
def test_damaged_json_is_a_value_error_naming_the_file_and_field(tmp_path: Path, good: dict[str, bytes], entry: str,
                                                                 edit: Callable, message: str) -> None:
    arch_doc, training_doc = docs(good)
    doc = edit(arch_doc if entry == "architecture" else training_doc)
    path = write_entries(tmp_path / "bad.npz", {**good, f"{entry}.npy": json_npy(doc)})
    with pytest.raises(ValueError, match=rf"^load: {re.escape(str(path))}: .*{message}"):
        portnn.load(path)


def test_json_edits_that_stay_in_the_schema_load(tmp_path: Path, good: dict[str, bytes]) -> None:
    arch_doc, training_doc = docs(good)
    arch_doc["epoch"], arch_doc["layers"][1] = 5, {"type": "LeakyReLU", "alpha": 0.2}
    training_doc["info"] = {"note": "\u00e9", "deep": json.loads("[" * 60 + "]" * 60)}
    path = write_entries(tmp_path / "ok.npz", {**good, "architecture.npy": json_npy(arch_doc),
                                               "training.npy": json_npy(training_doc)})
    net = portnn.load(path)
    assert (net.epoch, repr(net.layers[1]), net.info["note"]) == (5, "LeakyReLU(alpha=0.2)", "\u00e9")
    net.fit(X, Y, epochs=1, batch_size=4)  # continues, with the stored Adam state


ARRAY_CASES = [  # (entries to set (None: remove), the message after 'load: PATH: ')
    ({"optim/0.weight/m.npy": None}, r"missing entries \['optim/0.weight/m'\]"),
    ({"optim/0.weight/w.npy": npy(np.zeros((3, 4)))}, r"unexpected entries \['optim/0.weight/w'\]"),
    ({"optim/9.weight/m.npy": npy(np.zeros((3, 4)))}, r"unexpected entries \['optim/9.weight/m'\]"),
    ({"param/9.weight.npy": npy(np.zeros((3, 4)))}, r"unexpected entries \['param/9.weight'\]"),
    ({"param/0.bias.npy": None}, r"missing entries \['param/0.bias'\]"),
    ({"param/0.weight.npy": npy(np.full((3, 4), np.nan))}, r"entry 'param/0.weight' has 12 non-finite value"),
    ({"optim/2.bias/v.npy": npy(np.array([0.0, np.inf]))}, r"entry 'optim/2.bias/v' has 1 non-finite value"),
    ({"param/0.weight.npy": npy(np.zeros((3, 4), dtype=">f8"))}, r"'param/0.weight' has dtype >f8; expected <f4 or"),
    ({"param/0.weight.npy": npy(np.zeros((3, 4), dtype=np.int64))}, r"'param/0.weight' has dtype <i8; expected"),
    ({"param/0.weight.npy": npy(np.zeros((3, 4), dtype=np.complex128))}, r"'param/0.weight' has dtype <c16"),
    ({"param/0.weight.npy": npy(np.array([[None] * 4] * 3))}, r"'param/0.weight' holds Python objects"),
    ({"param/0.weight.npy": npy(np.zeros((4, 3)))}, r"'param/0.weight' has shape \(4, 3\); the architecture needs"),
    ({"optim/0.bias/m.npy": npy(np.zeros(5))}, r"'optim/0.bias/m' has shape \(5,\); the architecture needs \(4,\)"),
    ({"param/0.weight.npy": npy(np.zeros((3, 4)))[:-8]}, r"'param/0.weight' holds 88 data bytes; its header"),
    ({"param/0.weight.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 4_000_000_000)}, r"header is longer than"),
    ({"param/0.weight.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}    "}, r"'param/0.weight' is not a readable"),
    ({"param/0.weight.npy": b"not an npy"}, r"'param/0.weight' is not a readable \.npy array"),
    ({"architecture.npy": npy(np.zeros(3))}, r"'architecture' has dtype <f8; expected \|u1"),
    ({"architecture.npy": npy(np.zeros((2, 2), dtype=np.uint8))}, r"'architecture' has shape \(2, 2\); expected one"),
    ({"training.npy": None}, r"has no 'training' entry"),
]


@pytest.mark.parametrize(("changes", "message"), ARRAY_CASES, ids=[m[:30] for _, m in ARRAY_CASES])
def test_damaged_entries_are_value_errors_naming_the_entry(tmp_path: Path, good: dict[str, bytes],
                                                           changes: dict[str, bytes | None], message: str) -> None:
    entries = {k: v for k, v in {**good, **changes}.items() if v is not None}
    path = write_entries(tmp_path / "bad.npz", entries)
    with pytest.raises(ValueError, match=rf"^load: {re.escape(str(path))}: .*{message}"):
        portnn.load(path)


def test_fortran_ordered_and_compressed_files_load_the_same_values(tmp_path: Path, good: dict[str, bytes]) -> None:
    reference = portnn.load(write_entries(tmp_path / "good.npz", good))
    weight = np.load(io.BytesIO(good["param/2.weight.npy"]))
    fortran = write_entries(tmp_path / "f.npz", {**good, "param/2.weight.npy": npy(np.asfortranarray(weight))})
    assert np.lib.format.read_array_header_1_0(io.BytesIO(entries_of(fortran)["param/2.weight.npy"][8:]))[1]
    deflated = write_entries(tmp_path / "c.npz", good, zipfile.ZIP_DEFLATED)  # as np.savez_compressed writes
    for path in (fortran, deflated):
        back = portnn.load(path)
        for k, v in reference.state_dict().items():
            np.testing.assert_array_equal(back.state_dict()[k], v)
        assert back.history == reference.history


def test_entries_with_other_names_are_ignored_unread(tmp_path: Path, good: dict[str, bytes]) -> None:
    members = [stored(name, data) for name, data in good.items()]
    members.append(zero_bomb("junk.npy", npy_header("<f8", (400_000_000,)), 400))  # 3.2 GB if it were inflated
    members.append(stored("notes.txt", b"written by a tool"))
    path = tmp_path / "extra.npz"
    path.write_bytes(raw_zip(members))
    net, peak = peak_load(path)
    assert isinstance(net, portnn.Sequential), net
    assert peak < 10 * MB, peak


@pytest.mark.parametrize(("patch", "message"), [
    (lambda cd: cd.__setitem__(10, 99), r"uses zip compression method 99; only stored \(0\) and deflated \(8\)"),
    (lambda cd: cd.__setitem__(8, 1), r"is encrypted or patched \(zip flags 0x1\)"),
])
def test_a_flipped_zip_directory_byte_is_a_value_error(tmp_path: Path, good: dict[str, bytes], patch: Callable,
                                                       message: str) -> None:
    data = bytearray(write_entries(tmp_path / "good.npz", good).read_bytes())
    record = data.find(b"PK\x01\x02")  # the first central-directory record: 'param/0.weight.npy'
    view = memoryview(data)[record:record + 46]
    patch(view)
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"^load: {re.escape(str(path))}: entry 'param/0.weight' {message}"):
        portnn.load(path)


def test_flipped_data_fails_its_crc_only_where_the_entry_is_needed(tmp_path: Path, good: dict[str, bytes]) -> None:
    members = [stored(name, data) for name, data in good.items()] + [stored("junk.npy", npy(np.zeros(4)))]
    base = raw_zip(members)
    for name, needed in (("param/2.bias.npy", True), ("junk.npy", False)):
        data = bytearray(base)
        data[data.find(name.encode()) + len(name) + 130] ^= 0x40  # a byte of the array data
        path = tmp_path / "crc.npz"
        path.write_bytes(bytes(data))
        if needed:
            with pytest.raises(ValueError, match=rf"^load: {re.escape(str(path))}: entry 'param/2.bias' .*Bad CRC"):
                portnn.load(path)
        else:
            assert portnn.load(path).history == portnn.load(write_entries(tmp_path / "g.npz", good)).history


def test_an_entry_listed_twice_is_refused(tmp_path: Path, good: dict[str, bytes]) -> None:
    members = [stored(name, data) for name, data in good.items()]
    path = tmp_path / "twice.npz"
    path.write_bytes(raw_zip([*members, stored("param/0.weight.npy", npy(np.ones((3, 4))))]))
    with pytest.raises(ValueError, match=rf"^load: {re.escape(str(path))}: entry 'param/0.weight' is listed twice"):
        portnn.load(path)


# ---- bounded by the file: the crafted cases, each refused before anything is allocated ---------------
def bomb_file(path: Path) -> Path:
    """~3 MB: a Dense(20000, 20000) whose weight entry inflates to 3.2 GB of zeros."""
    path.write_bytes(raw_zip([stored("architecture.npy", json_npy(arch([dense(20000, 20000)]))),
                              stored("training.npy", json_npy(TRAINING)),
                              zero_bomb("param/0.weight.npy", npy_header("<f8", (20000, 20000)), 400)]))
    return path


def json_bomb_file(path: Path) -> Path:
    """A deflated 'training' entry of 80 MB (zero bytes): far over what a deflated JSON entry may hold."""
    path.write_bytes(raw_zip([stored("architecture.npy", json_npy(arch([dense(2, 1)]))),
                              stored("param/0.weight.npy", npy(np.ones((2, 1)))),
                              zero_bomb("training.npy", npy_header("|u1", (80_000_000,)), 10)]))
    return path


def lying_header_file(path: Path) -> Path:
    """Dense(10**9, 10**9) with a weight entry whose header agrees but that holds 64 bytes."""
    path.write_bytes(raw_zip([stored("architecture.npy", json_npy(arch([dense(10**9, 10**9)]))),
                              stored("training.npy", json_npy(TRAINING)),
                              stored("param/0.weight.npy", npy_header("<f8", (10**9, 10**9)) + bytes(64))]))
    return path


CRAFTED: list[tuple[str, Callable[[Path], Path], str]] = [
    ("two-dense-15000", lambda p: write_entries(p, {
        "architecture.npy": json_npy(arch([dense(15000, 15000)] * 2)), "training.npy": json_npy(TRAINING),
        "param/0.weight.npy": npy(np.zeros((2, 2))), "param/1.weight.npy": npy(np.zeros((2, 2)))}),
     r"entry 'param/0.weight' has shape \(2, 2\); the architecture needs \(15000, 15000\)"),
    ("dense-1e9-missing", lambda p: write_entries(p, {
        "architecture.npy": json_npy(arch([dense(10**9, 10**9, bias=True)])), "training.npy": json_npy(TRAINING),
        "param/0.weight.npy": npy(np.zeros((2, 2)))}), r"missing entries \['param/0.bias'\]"),
    ("dense-1e9-lying-header", lying_header_file,
     r"entry 'param/0.weight' holds 64 data bytes; its header \(<f8, shape \(1000000000, 1000000000\)\) needs"),
    ("zip-bomb", bomb_file, r"deflated entries expand to 3200000128 bytes from a file of \d+ bytes"),
    ("json-bomb", json_bomb_file, r"entry 'training' holds 80000\d+ bytes, more than the 4194304 read at most"),
    ("nested-json", lambda p: write_entries(p, {"architecture.npy": json_npy("[" * 60_000 + "]" * 60_000)}),
     r"entry 'architecture' nests JSON more than 64 levels deep"),  # json's RecursionError, caught
    ("nested-200", lambda p: write_entries(p, {"architecture.npy": json_npy("[" * 200 + "]" * 200)}),
     r"entry 'architecture' nests JSON 200 levels deep, more than 64"),  # parsed, then refused
    ("many-containers", lambda p: write_entries(p, {"architecture.npy": json_npy("[" + "{}," * 100_000 + "{}]")}),
     r"entry 'architecture' holds more than 65536 JSON arrays and objects"),
]


@pytest.mark.parametrize(("craft", "message"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_crafted_files_fail_fast_in_bounded_memory(tmp_path: Path, craft: Callable[[Path], Path],
                                                   message: str) -> None:
    path = craft(tmp_path / "crafted.npz")
    assert path.stat().st_size < 4 * MB
    error, peak = peak_load(path)
    assert isinstance(error, ValueError), error
    assert type(error) is ValueError, error
    assert str(error).startswith(f"load: {path}: "), error
    assert re.search(message, str(error)), error
    assert peak < 100 * MB, f"{peak / MB:.1f} MB"


def test_the_two_dense_file_is_small(tmp_path: Path) -> None:
    path = CRAFTED[0][1](tmp_path / "crafted.npz")
    assert path.stat().st_size < 2000  # the 1.6 KB file, which used to allocate 3.4 GB


def test_a_file_near_1_mb_loads_in_bounded_memory(tmp_path: Path) -> None:
    net = portnn.Sequential(portnn.Dense(350, 350), seed=0)  # 122850 float64: ~0.98 MB
    portnn.save(net, tmp_path / "big.npz")
    assert tmp_path.joinpath("big.npz").stat().st_size < MB
    back, peak = peak_load(tmp_path / "big.npz")
    np.testing.assert_array_equal(back.state_dict()["0.weight"], net.state_dict()["0.weight"])
    assert peak < 10 * MB, f"{peak / MB:.1f} MB"


def test_the_costliest_json_the_limits_allow_stays_bounded(tmp_path: Path) -> None:
    """4 MiB of deflated JSON (the most a deflated entry may hold) made of 3-letter strings, the costliest Python
    objects per byte; an incompressible ignored entry makes the file big enough (~0.45 MB) for the 16x budget."""
    info = {"s": [f"{i % 100:02d}{chr(65 + i % 26)}" for i in range(4_100_000 // 7)]}
    path = write_entries(tmp_path / "fat.npz", {
        "architecture.npy": json_npy(arch([dense(2, 1)])), "param/0.weight.npy": npy(np.ones((2, 1))),
        "training.npy": json_npy({**TRAINING, "info": info}),
        "pad.npy": npy(np.random.default_rng(0).integers(0, 256, 400_000, dtype=np.uint8))}, zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < MB
    net, peak = peak_load(path)
    assert isinstance(net, portnn.Sequential), net
    assert len(net.info["s"]) == 4_100_000 // 7
    assert peak < 100 * MB, f"{peak / MB:.1f} MB"  # measured ~41 MB


# ---- the file system ----------------------------------------------------------------------------------------
def test_file_system_errors_say_what_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError):
        portnn.load(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError, match=rf"^load: {re.escape(str(tmp_path))}: is a directory"):
        portnn.load(tmp_path)

    def denied(path: Any, *args: Any) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as patch:  # as root (CI containers) a real chmod 000 file is still readable
        patch.setattr(checkpoint.os, "open", denied)
        with pytest.raises(PermissionError, match=r"m\.npz: permission denied: this user may not read the file"):
            portnn.load(tmp_path / "m.npz")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may read any file")
def test_an_unreadable_file_is_a_permission_error(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    portnn.save(make_net(), path)
    path.chmod(0)
    with pytest.raises(PermissionError, match="permission denied"):
        portnn.load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match=r"pipe\.npz: is not a regular file"):
        portnn.load(tmp_path / "pipe.npz")


def test_save_refuses_what_load_would_refuse_and_keeps_the_old_file(tmp_path: Path) -> None:
    net = make_net()
    portnn.save(net, tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()
    net.info = {"deep": json.loads("[" * 70 + "]" * 70)}
    with pytest.raises(ValueError, match=r"save: .*'training' nests JSON 72 levels deep"):
        portnn.save(net, tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == before


# ---- atomic writes: temporaries ----------------------------------------------------------------------------
def temporaries(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f".{path.name}.*.tmp"))


NEEDS_FLOCK = pytest.mark.skipif(atomic.fcntl is None, reason="no fcntl.flock on this platform")


@NEEDS_FLOCK
def test_a_save_removes_its_paths_stale_temporaries_only(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    for name in (".m.npz.dead0001.tmp", ".m.npz.k9_abcde.tmp", ".m.npz.x.dead0001.tmp", ".other.npz.dead0001.tmp",
                 ".m.npz.live0001.tmp"):
        (tmp_path / name).write_bytes(b"half a file")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(tmp_path / '.m.npz.live0001.tmp')!r}, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)  # a writer still at work
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    with holder:
        try:
            assert holder.stdout is not None  # stdout=PIPE
            assert holder.stdout.readline().strip() == "locked"
            portnn.save(make_net(), path)
        finally:
            holder.kill()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".m.npz.live0001.tmp", ".m.npz.x.dead0001.tmp", ".other.npz.dead0001.tmp", "m.npz"]


def test_a_saved_file_has_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    portnn.save(make_net(), tmp_path / "m.npz")
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o666 & ~umask


SAVER = textwrap.dedent("""
    import sys, portnn
    net = portnn.Sequential(portnn.Dense(int(sys.argv[2]), 1000, bias=False), seed=int(sys.argv[3]))
    for _ in range(int(sys.argv[4])):
        portnn.save(net, sys.argv[1])
""")


@NEEDS_FLOCK
def test_kill_9_during_saves_leaves_at_most_one_temporary(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    portnn.save(portnn.Sequential(portnn.Dense(1500, 1000, bias=False), seed=0), path)
    kills_mid_save = 0
    for _ in range(6):
        seen = set(temporaries(path))
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path), "1500", "0", "1000"])
        deadline = time.monotonic() + 60
        while not set(temporaries(path)) - seen and time.monotonic() < deadline:
            time.sleep(0.001)  # until the child's own temporary exists (it has swept the stale one first)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        left = temporaries(path)
        assert len(left) <= 1, left
        kills_mid_save += len(left)
        assert portnn.load(path).state_dict()["0.weight"].shape == (1500, 1000)  # the target always loads
    assert kills_mid_save >= 3  # the kills did land inside saves
    portnn.save(portnn.Sequential(portnn.Dense(2, 1), seed=0), path)
    assert temporaries(path) == []


def test_concurrent_writers_never_leave_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    writers = [subprocess.Popen([sys.executable, "-c", SAVER, str(path), "300", str(seed), "40"]) for seed in (1, 2)]
    expected = {seed: portnn.Sequential(portnn.Dense(300, 1000, bias=False), seed=seed).state_dict()["0.weight"]
                for seed in (1, 2)}
    loads = 0
    while any(w.poll() is None for w in writers):
        if path.exists():
            weight = portnn.load(path).state_dict()["0.weight"]
            assert any(np.array_equal(weight, w) for w in expected.values())
            loads += 1
    assert [w.returncode for w in writers] == [0, 0]
    assert loads > 0
    assert temporaries(path) == []



# ---- a user's own layer -------------------------------------------------------------------------------------
class Scale(portnn.Layer):
    """y = s * x with one learnable scalar: a 0-d parameter, as a user's own layer might have."""

    def __init__(self, start: float = 2.0) -> None:
        self.start = float(start)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"s": ()}

    def init(self, rng: Any) -> dict[str, Any]:
        return {"s": np.full((), self.start)}

    def forward(self, params: dict[str, Any], x: Any, ctx: portnn.Context) -> tuple[Any, Any]:
        return x * params["s"], x

    def backward(self, params: dict[str, Any], saved: Any, dy: Any, ctx: portnn.Context) -> tuple[Any, Any]:
        return (dy * params["s"] if ctx.need_dx else None), {"s": ctx.xp.sum(dy * saved)}

    def config(self) -> dict[str, Any]:
        return {"start": self.start}


def test_a_registered_layer_with_a_0d_parameter_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(checkpoint.LAYER_TYPES, "Scale", Scale)  # restored after the test (defining it registered it)
    net = portnn.Sequential(portnn.Dense(3, 2), Scale(3.0), seed=0)
    net.fit(X, Y, loss=portnn.MSE(), optimizer=portnn.Adam(0.01), epochs=1, batch_size=4, seed=1)
    portnn.save(net, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:  # its Adam slots are 0-d too
        assert data["optim/1.s/m"].shape == data["optim/1.s/v"].shape == ()
    back = portnn.load(tmp_path / "m.npz")
    assert back.state_dict()["1.s"].shape == ()
    assert back.state_dict()["1.s"] != 3.0  # trained
    np.testing.assert_array_equal(portnn.to_numpy(back.predict(X)), portnn.to_numpy(net.predict(X)))
    np.testing.assert_array_equal(back.optimizer_state["v"][1]["s"], portnn.to_numpy(net.optimizer_state["v"][1]["s"]))
