"""Bounded reading of an .npz archive: the zip directory first, then each needed entry's .npy header, checked
against what it must hold before any of its data is read; entries nobody asks for are never decompressed.

Every problem with the bytes is a ``portnn.io.schema.Invalid`` naming the entry. Memory is bounded by the file:
a stored entry holds its bytes in the file; deflated entries (``np.savez_compressed``) may together expand to at
most ``INFLATE_FLOOR + INFLATE_RATIO * file size`` bytes, checked from the headers before anything is inflated.
"""

from __future__ import annotations

import math
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .schema import JSON_MAX_BYTES, JSON_MAX_INFLATED, Invalid, short

INFLATE_RATIO = 16  # trained float weights deflate by ~1.1x; 16x leaves room and still bounds a zip bomb
INFLATE_FLOOR = 1 << 20  # small compressed files (zero biases) always fit
HEADER_MAX = 10_000  # numpy's own max_header_size for .npy headers
CHUNK = 1 << 20  # data is read in pieces of this size straight into the array (no second copy)
METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_UNSUPPORTED_FLAGS = 0x01 | 0x20 | 0x40  # encrypted, compressed patched data, strong encryption
# What zipfile, zlib and numpy's header parser raise on damaged bytes (RuntimeError: encrypted entries; Warning:
# numpy's Python-2 header fallback, turned into an error here).
ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error, ValueError, TypeError, RuntimeError,
          OverflowError, Warning)


@dataclass(frozen=True)
class Header:
    """What an entry's .npy header says, checked against its size in the zip directory."""

    name: str
    info: zipfile.ZipInfo
    offset: int  # bytes of magic + header before the data
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape)


class _Bounded:
    """A read-only view of a stream that refuses to read past ``limit`` bytes (numpy reads a version 2 header's
    4-byte length, up to 4 GB, before it checks it)."""

    def __init__(self, stream: IO[bytes], limit: int, name: str) -> None:
        self.stream, self.limit, self.name, self.pos = stream, limit, name, 0

    def read(self, n: int = -1, /) -> bytes:
        if self.pos + n > self.limit:
            raise Invalid(f"entry {self.name!r}: its .npy header is longer than {HEADER_MAX} bytes")
        data = self.stream.read(n)
        self.pos += len(data)
        return data


class Archive:
    """The entries of an open .npz file, by name without '.npy' ('architecture', 'param/0.weight')."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.size = size
        self.budget = INFLATE_FLOOR + INFLATE_RATIO * size
        self.inflated = 0  # bytes of deflated entries already read
        try:
            self.zip = zipfile.ZipFile(file)
            infos = self.zip.infolist()
        except ERRORS as err:
            raise Invalid(f"not a readable zip archive (truncated or corrupt?): {err}") from err
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename.endswith(".npy"):
                name = info.filename.removesuffix(".npy")
                if name in self.entries:
                    raise Invalid(f"entry {short(name)} is listed twice in the zip directory")
                self.entries[name] = info

    def names(self) -> set[str]:
        return set(self.entries)

    def classify(self, layers: Any) -> set[str]:
        """Every entry's name (a .npz names parameters and layer state apart already)."""
        return self.names()

    def header(self, name: str, dtypes: tuple[np.dtype, ...], shape: tuple[int, ...] | None,
               max_bytes: int | None = None) -> Header:
        """Read and check the .npy header of entry ``name`` (dtype one of ``dtypes``, the given ``shape`` or any
        1-d shape when None, data size equal to what the zip directory says), reading no data."""
        info = self._entry(name)
        found, fortran, dtype, offset = self._npy_header(name, info)
        if dtype.hasobject:
            raise Invalid(f"entry {name!r} holds Python objects (dtype {dtype}), which need pickle; portnn never "
                          "unpickles")
        if dtype not in dtypes:
            raise Invalid(f"entry {name!r} has dtype {dtype.str}; expected {' or '.join(d.str for d in dtypes)}")
        if shape is not None and tuple(found) != tuple(shape):
            raise Invalid(f"entry {name!r} has shape {short(found)}; the architecture needs {shape}")
        if shape is None and (len(found) != 1 or found[0] < 0):
            raise Invalid(f"entry {name!r} has shape {short(found)}; expected one dimension")
        header = Header(name, info, offset, dtype, tuple(found), fortran)
        if header.offset + header.nbytes != info.file_size:
            raise Invalid(f"entry {name!r} holds {info.file_size - header.offset} data bytes; its header "
                          f"({dtype.str}, shape {short(found)}) needs {header.nbytes}")
        if max_bytes is not None and header.nbytes > max_bytes:
            raise Invalid(f"entry {name!r} holds {header.nbytes} bytes, more than the {max_bytes} read at most")
        return header

    def _entry(self, name: str) -> zipfile.ZipInfo:
        """The zip directory's entry ``name``, if its compression, flags and sizes are ones portnn reads."""
        info = self.entries.get(name)
        if info is None:
            raise Invalid(f"entry {name!r} is missing")
        if info.compress_type not in METHODS:
            raise Invalid(f"entry {name!r} uses zip compression method {info.compress_type}; only stored (0) and "
                          "deflated (8) entries are read")
        if info.flag_bits & _UNSUPPORTED_FLAGS:
            raise Invalid(f"entry {name!r} is encrypted or patched (zip flags {info.flag_bits:#x})")
        if info.compress_size > self.size or (info.compress_type == zipfile.ZIP_STORED
                                              and info.compress_size != info.file_size):
            raise Invalid(f"entry {name!r}: the zip directory gives {info.compress_size} stored bytes for "
                          f"{info.file_size} bytes of data in a file of {self.size} bytes")
        return info

    def _npy_header(self, name: str, info: zipfile.ZipInfo) -> tuple[Any, bool, np.dtype, int]:
        """(shape, fortran order, dtype, data offset) from the entry's .npy header, reading at most the header."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with self._open(name, info) as stream:
                bounded = _Bounded(stream, 12 + HEADER_MAX, name)
                try:
                    version = np.lib.format.read_magic(bounded)
                    if version == (1, 0):
                        found, fortran, dtype = np.lib.format.read_array_header_1_0(bounded, HEADER_MAX)
                    elif version == (2, 0):
                        found, fortran, dtype = np.lib.format.read_array_header_2_0(bounded, HEADER_MAX)
                    else:
                        raise Invalid(f"entry {name!r}: .npy format version {version} is not read")
                except Invalid:
                    raise
                except ERRORS as err:
                    raise Invalid(f"entry {name!r} is not a readable .npy array: {err}") from err
        return found, fortran, dtype, bounded.pos

    def reserve(self, headers: list[Header]) -> None:
        """Refuse, before any is read, deflated entries that together expand past what the file's size allows."""
        total = self.inflated + sum(h.info.file_size for h in headers if h.info.compress_type != zipfile.ZIP_STORED)
        if total > self.budget:
            raise Invalid(f"deflated entries expand to {total} bytes from a file of {self.size} bytes (more than "
                          f"{INFLATE_RATIO}x + {INFLATE_FLOOR} bytes allowed: a zip bomb? portnn.save writes "
                          "uncompressed entries, which this limit does not apply to)")
        self.inflated = total

    def read(self, header: Header) -> np.ndarray:
        """The data of a checked entry, read to its end so zipfile verifies its CRC-32."""
        shape = header.shape[::-1] if header.fortran_order else header.shape
        array = np.empty(shape, dtype=header.dtype)
        flat = array.reshape(-1).view(np.uint8)
        with self._open(header.name, header.info) as stream:
            try:
                if len(stream.read(header.offset)) != header.offset:
                    raise Invalid(f"entry {header.name!r} ends inside its header")
                pos = 0
                while pos < header.nbytes:
                    n = stream.readinto(flat[pos:pos + CHUNK])
                    if not n:
                        raise Invalid(f"entry {header.name!r} ends after {pos} of {header.nbytes} data bytes")
                    pos += n
                if stream.read(1):  # at the end: zipfile has checked the CRC-32
                    raise Invalid(f"entry {header.name!r} holds more than its header says")
            except Invalid:
                raise
            except ERRORS as err:
                raise Invalid(f"entry {header.name!r} cannot be read (corrupt?): {err}") from err
        return array.T if header.fortran_order else array

    def json_bytes(self, name: str) -> bytes:
        """The bytes of a uint8 JSON entry, bounded: deflated ones count against the expansion budget."""
        info = self.entries.get(name)
        deflated = info is not None and info.compress_type != zipfile.ZIP_STORED
        header = self.header(name, (np.dtype(np.uint8),), None, JSON_MAX_INFLATED if deflated else JSON_MAX_BYTES)
        self.reserve([header])
        return self.read(header).tobytes()

    def _open(self, name: str, info: zipfile.ZipInfo) -> Any:
        try:
            return self.zip.open(info)
        except ERRORS as err:
            raise Invalid(f"entry {name!r} cannot be opened (corrupt?): {err}") from err
