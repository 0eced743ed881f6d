"""Checkpoints as .safetensors: the tensors keyed as the state_dict ('0.weight', '1.running_mean') plus the optimizer
state ('optim/0.weight/m'), and the architecture and training JSON of the .npz format as the header's string
metadata. Parsed by the ``safetensors`` library (no code is executed; offsets are checked against the file), read
lazily: only the tensors the architecture needs, each checked (dtype, shape) before it is read.

The format has no checksum (a .npz has zip's CRC-32 per entry), so ``save`` adds two SHA-256 digests to the
metadata: 'portnn.sha256.data' of the data section (every tensor byte) and 'portnn.sha256.header' of the rest of the
header (the tensor table and the other metadata). ``load`` checks both before it reads anything else, streaming the
data section through the hash in 1 MiB pieces: a damaged file is a ValueError naming it. They detect damage, not
tampering (anyone can recompute them). A file without them (written by portnn before they were added, or by another
tool) loads, its tensors unchecked, and says so in ``net.info['provenance']`` (``PROVENANCE``), which later saves
keep: warnings would be raised as errors in test suites that run with warnings as errors, and an entry in ``info``
can be read by code.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from ..nn.layer import Layer
from .schema import JSON_MAX_BYTES, Invalid, short

SUFFIX = ".safetensors"
DTYPES: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}  # what portnn writes and reads
METADATA = ("architecture", "training")
DIGEST_DATA, DIGEST_HEADER = "portnn.sha256.data", "portnn.sha256.header"
DIGESTS = (DIGEST_DATA, DIGEST_HEADER)
PROVENANCE = "safetensors without a portnn digest: its tensors and metadata could not be checked for damage"
_CHUNK = 1 << 20  # bytes hashed at a time while checking the data section


MISSING = '.safetensors files need the safetensors package: pip install "portnn[safetensors]"'


def _library() -> Any:
    try:
        import safetensors.numpy
    except ImportError as err:  # an optional extra
        raise ImportError(MISSING) from err
    return safetensors


def require() -> None:
    """Raise ImportError with the install command when the safetensors package is missing (call it before work)."""
    _library()


def is_safetensors(path: str | os.PathLike) -> bool:
    """True when ``path`` names a .safetensors file (the format is chosen by the suffix)."""
    return os.fspath(path).lower().endswith(SUFFIX)


def _header(data: bytes | memoryview) -> tuple[dict[str, Any], int]:
    """(the JSON header, where the data section starts) of a file's bytes as the library writes them."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(bytes(data[8:8 + n])), 8 + n


def _header_digest(header: dict[str, Any]) -> str:
    """SHA-256 of the header without the digests: the tensor table (dtype, shape, offsets) and the metadata."""
    plain = {**header, "__metadata__": {k: v for k, v in (header.get("__metadata__") or {}).items()
                                        if k not in DIGESTS}}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def to_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The whole file: the tensors (C-ordered little-endian host arrays) and the string metadata, with the digests
    of the data section and of the header. The library lays the data out by the tensors alone, so the digests of a
    first rendering describe the second, which adds them to the metadata."""
    save = _library().numpy.save
    data = save(tensors, metadata=metadata)
    header, start = _header(data)
    digests = {DIGEST_DATA: hashlib.sha256(memoryview(data)[start:]).hexdigest(), DIGEST_HEADER: _header_digest(header)}
    del data  # one rendering in memory at a time
    final = save(tensors, metadata={**metadata, **digests})
    header, start = _header(final)
    if _header_digest(header) != digests[DIGEST_HEADER]:  # cheap: the data is checked by load, not again here
        raise RuntimeError("safetensors: the library laid out the tensors differently the second time")
    return final


def check_digests(file: IO[bytes], metadata: dict[str, str], size: int) -> str | None:
    """None when the file's digests match its header and data section (read in pieces from ``file``, so memory
    stays bounded); ``PROVENANCE`` when it has none; Invalid when they disagree or only one is there."""
    found = [metadata.get(name) for name in DIGESTS]
    if found == [None, None]:
        return PROVENANCE
    if not all(isinstance(d, str) for d in found):
        raise Invalid(f"metadata holds one portnn digest of two ({', '.join(DIGESTS)}): the header is damaged")
    file.seek(0)
    n = struct.unpack("<Q", file.read(8))[0]
    if n > size - 8:  # the library has checked this already
        raise Invalid(f"the header claims {n} bytes but the file has {size}")
    try:
        header = json.loads(file.read(n))
    except ValueError as err:
        raise Invalid(f"the header is not JSON (damaged?): {err}") from err
    if not isinstance(header, dict) or _header_digest(header) != found[1]:
        raise Invalid("the header (tensor table or metadata) does not match its SHA-256 digest: the file is damaged")
    digest = hashlib.sha256()
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
    if digest.hexdigest() != found[0]:
        raise Invalid("the tensor data does not match its SHA-256 digest: the file is damaged")
    return None


@dataclass(frozen=True)
class Entry:
    """A checked tensor: its name in the .npz naming ('param/0.weight'), its key in the file, dtype and shape."""

    name: str
    key: str
    dtype: np.dtype
    shape: tuple[int, ...]


class SafetensorsArchive:
    """The entries of a .safetensors file under the names ``load`` uses for .npz entries ('architecture',
    'param/0.weight', 'state/1.running_mean', 'optim/0.weight/m')."""

    def __init__(self, path: str | os.PathLike, size: int, file: IO[bytes]) -> None:
        """Open ``path`` (``file``, already open, is where the digests are checked, before anything is read)."""
        library = _library()
        self.size = size
        try:
            self.file = library.safe_open(os.fspath(path), framework="numpy")
            self.metadata = self.file.metadata() or {}
            self.keys = set(self.file.keys())
        except Exception as err:  # SafetensorError and the like: a header that does not describe this file
            raise Invalid(f"not a readable safetensors file (truncated or corrupt?): {err}") from err
        self.provenance = check_digests(file, self.metadata, size)  # None: checked
        self.tensors: dict[str, str] = {}

    def names(self) -> set[str]:
        return {name for name in METADATA if name in self.metadata}

    def classify(self, layers: list[Layer]) -> set[str]:
        """Every entry's name once the architecture says which tensors are layer state."""
        state = {f"{i}.{n}" for i, layer in enumerate(layers) for n in layer.state_shapes()}
        self.tensors = {}
        for key in self.keys:
            name = key if key.startswith("optim/") else f"{'state' if key in state else 'param'}/{key}"
            self.tensors[name] = key
        return self.names() | set(self.tensors)

    def json_bytes(self, name: str) -> bytes:
        text = self.metadata.get(name)
        if not isinstance(text, str):
            raise Invalid(f"metadata entry {name!r} is missing")
        data = text.encode()
        if len(data) > JSON_MAX_BYTES:
            raise Invalid(f"metadata entry {name!r} holds {len(data)} bytes, more than {JSON_MAX_BYTES}")
        return data

    def header(self, name: str, dtypes: tuple[np.dtype, ...], shape: tuple[int, ...] | None) -> Entry:
        """Check tensor ``name``'s dtype and shape in the header, reading no data."""
        key = self.tensors.get(name)
        if key is None:
            raise Invalid(f"entry {name!r} is missing")
        try:
            info = self.file.get_slice(key)
            code, found = info.get_dtype(), tuple(int(d) for d in info.get_shape())
        except Exception as err:
            raise Invalid(f"entry {name!r} cannot be read (corrupt?): {err}") from err
        dtype = DTYPES.get(code)
        if dtype is None or dtype not in dtypes:
            raise Invalid(f"entry {name!r} has dtype {short(code)}; expected {' or '.join(d.str for d in dtypes)}")
        if shape is not None and found != tuple(shape):
            raise Invalid(f"entry {name!r} has shape {short(found)}; the architecture needs {shape}")
        return Entry(name, key, dtype, found)

    def reserve(self, entries: list[Entry]) -> None:
        """Nothing is compressed: the tensors lie in the file, whose offsets the library has checked."""
        need = sum(int(np.prod(e.shape, dtype=np.int64)) * e.dtype.itemsize for e in entries)
        if need > self.size:
            raise Invalid(f"the tensors need {need} bytes but the file has {self.size}")

    def read(self, entry: Entry) -> np.ndarray:
        try:
            array = self.file.get_tensor(entry.key)
        except Exception as err:
            raise Invalid(f"entry {entry.name!r} cannot be read (corrupt?): {err}") from err
        return np.array(array, dtype=entry.dtype, copy=True).reshape(entry.shape)  # our own writeable copy
