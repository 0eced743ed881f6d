"""Checkpoints as .safetensors: the tensors keyed as the state_dict ('0.weight', '1.running_mean') plus the optimizer
state ('optim/0.weight/m'), and the architecture and training JSON of the .npz format as the header's string
metadata. Parsed by the ``safetensors`` library (no code is executed; offsets are checked against the file), read
lazily: only the tensors the architecture needs, each checked (dtype, shape) before it is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..nn.layer import Layer
from .schema import JSON_MAX_BYTES, Invalid, short

SUFFIX = ".safetensors"
DTYPES: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}  # what portnn writes and reads
METADATA = ("architecture", "training")


def _library() -> Any:
    try:
        import safetensors.numpy
    except ImportError as err:  # an optional extra
        raise ImportError('.safetensors checkpoints need the safetensors package: pip install "portnn[safetensors]"'
                          ) from err
    return safetensors


def is_safetensors(path: str | os.PathLike) -> bool:
    """True when ``path`` names a .safetensors file (the format is chosen by the suffix)."""
    return os.fspath(path).lower().endswith(SUFFIX)


def to_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The whole file: the tensors (C-ordered little-endian host arrays) and the string metadata."""
    return _library().numpy.save(tensors, metadata=metadata)


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

    def __init__(self, path: str | os.PathLike, size: int) -> None:
        library = _library()
        self.size = size
        try:
            self.file = library.safe_open(os.fspath(path), framework="numpy")
            self.metadata = self.file.metadata() or {}
            self.keys = set(self.file.keys())
        except Exception as err:  # SafetensorError and the like: a header that does not describe this file
            raise Invalid(f"not a readable safetensors file (truncated or corrupt?): {err}") from err
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
