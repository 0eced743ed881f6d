"""Saving and loading models: one .npz holding the architecture, weights and training state; no pickle, atomic.

Entries: 'architecture' and 'training' (UTF-8 JSON as uint8 arrays), 'param/INDEX.NAME' (weights) and
'optim/INDEX.NAME/SLOT' (optimizer state arrays), all little-endian. The training JSON holds the loss and optimizer
(type and constructor arguments), the optimizer's step counters, the shuffle seed, the epoch, the metric names and
the per-epoch history. Shuffles are keyed by (shuffle seed, epoch), so those two numbers are the whole RNG state.

``load`` reads within bounds set by the file (``checkpoint_reader``) and checks everything against one schema
(``checkpoint_schema``) before it builds the model with ``Sequential.from_state_dict``, which draws nothing.
Entries with other names are ignored and never decompressed (tools may add their own); 'param/' and 'optim/'
entries must be exactly those the architecture and optimizer need.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import checkpoint_schema as schema
from . import host
from .checkpoint_reader import Archive
from .checkpoint_schema import FORMAT, LAYER_TYPES, READABLE_FORMATS, Invalid, register_layer
from .sequential import Sequential

try:
    import fcntl
except ImportError:  # no flock (Windows): stale temporaries cannot be told from live ones and are left alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["FORMAT", "LAYER_TYPES", "READABLE_FORMATS", "architecture", "atomic_write", "load", "register_layer",
           "save"]

_TMP_TAG = re.compile(r"[a-z0-9_]{8}")  # the random part of a temporary's name (also tempfile.mkstemp's alphabet)


def architecture(net: Sequential) -> dict[str, Any]:
    """The JSON-able description from which ``load`` rebuilds ``net``."""
    return {"format": FORMAT, "seed": net.seed, "dtype": net.placement.dtype_name if net.placement else net.dtype,
            "epoch": net.epoch, "layers": [{"type": type(layer).__name__, **layer.config()} for layer in net.layers]}


def _training(net: Sequential) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able training state, host arrays of the optimizer state keyed 'optim/INDEX.NAME/SLOT')."""
    arrays, counters = {}, {}
    opt = net.optimizer
    for (i, name), slots in net.optimizer_state.items():
        for slot, value in slots.items():
            if isinstance(value, int):
                counters.setdefault(f"{i}.{name}", {})[slot] = value
            else:
                arrays[f"optim/{i}.{name}/{slot}"] = host.to_numpy(value)
    training = {
        "loss": None if net.loss is None else {"type": type(net.loss).__name__, "config": net.loss.config()},
        "optimizer": None if opt is None else {"type": type(opt).__name__, "config": opt.config(),
                                               "counters": counters},
        "shuffle_seed": net.shuffle_seed, "metrics": net.metrics, "history": net.history, "info": net.info,
    }
    return training, arrays


def _json_bytes(value: Any, name: str) -> np.ndarray:
    schema.check_depth(value, name)  # the JSON limits of load are checked here too, so every saved file loads
    data = json.dumps(value, allow_nan=False).encode()
    schema.check_json_text(data, name)
    return np.frombuffer(data, dtype=np.uint8)


def _little_endian(array: np.ndarray) -> np.ndarray:
    """C-ordered little-endian copy (no copy on little-endian machines): the byte order the format defines."""
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)  # 0-d stays 0-d


# ---- atomic writes ------------------------------------------------------------------------------------------
def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries '.{name}.XXXXXXXX.tmp' of ``path`` left by writers that died (kill -9, power loss):
    a live writer holds an exclusive flock on its temporary, so a lock we can take belongs to no one."""
    if fcntl is None:
        return
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for entry in names:
        if not (entry.startswith(prefix) and entry.endswith(".tmp") and _TMP_TAG.fullmatch(entry[len(prefix):-4])):
            continue
        tmp = path.parent / entry
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its writer is alive
            if os.path.samestat(os.fstat(fd), os.stat(tmp, follow_symlinks=False)):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _locked_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary beside ``path``, created with the usual mode (0666 less the umask) and flock-ed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweeping writer looks at it
        try:
            ours = os.path.samestat(os.fstat(fd), os.stat(tmp, follow_symlinks=False))
        except FileNotFoundError:
            ours = False
        if ours:
            return fd, tmp
        os.close(fd)  # swept between creation and lock (it looked stale): take another name
    raise FileExistsError(f"atomic_write: no free temporary name beside {path}")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary is flock-ed while written; each call first removes this path's temporaries whose writers died,
    so at most one (that of a writer killed during this save) is ever left per path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = _locked_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:  # closing releases the lock, after the rename
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def save(net: Sequential, path: str | os.PathLike) -> None:
    """Write ``net`` (architecture, weights, loss, optimizer state, shuffle seed, epoch, history) to ``path``
    (.npz), replacing any old file atomically: a failure part-way leaves the old file as it was."""
    if not isinstance(net, Sequential):
        raise TypeError(f"save: expected a portnn Sequential, got {type(net).__name__}")
    training, optim_arrays = _training(net)
    arrays = {f"param/{k}": _little_endian(v) for k, v in net.state_dict().items()}
    arrays.update({k: _little_endian(v) for k, v in optim_arrays.items()})
    try:
        arrays["architecture"] = _json_bytes(architecture(net), "architecture")
        arrays["training"] = _json_bytes(training, "training")
    except (TypeError, ValueError) as err:
        raise ValueError(f"save: the model's settings or history cannot be written as JSON: {err}") from err
    atomic_write(path, lambda f: np.savez(f, **arrays))


# ---- loading ------------------------------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved by ``save``, ready to predict or to continue training with ``fit(X, y)``.

    Parameters and optimizer state stay on the host until the model first sees data or ``to()`` moves it, so a
    model saved from one backend loads on any other. A damaged file is a ValueError 'load: PATH: ...' naming the
    field or entry; FileNotFoundError, PermissionError and IsADirectoryError say what they are."""
    with _open(path) as (file, size):
        try:
            return _load(file, size)
        except Invalid as err:
            raise ValueError(f"load: {path}: {err}") from err


@contextlib.contextmanager
def _open(path: str | os.PathLike) -> Iterator[tuple[IO[bytes], int]]:
    """The file and its size; O_NONBLOCK so a FIFO cannot hang the open (it is then refused as not a file)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError as err:
        raise PermissionError(f"load: {path}: permission denied: this user may not read the file") from err
    except IsADirectoryError as err:
        raise IsADirectoryError(f"load: {path}: is a directory, not a checkpoint file") from err
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"load: {path}: is a directory, not a checkpoint file")
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"load: {path}: is not a regular file")
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with file:
        yield file, info.st_size


def _json(archive: Archive, name: str) -> Any:
    return schema.parse_json(archive.json_bytes(name), name)


def _load(file: IO[bytes], size: int) -> Sequential:
    archive = Archive(file, size)
    names = archive.names()
    if "architecture" not in names:
        raise Invalid("has no 'architecture' entry; it was not written by portnn.save")
    arch = schema.architecture(_json(archive, "architecture"))
    training = schema.Training()  # version 1 files hold no training state
    if arch.format == FORMAT:
        if "training" not in names:
            raise Invalid("has no 'training' entry, which every portnn-checkpoint-2 file has")
        training = schema.training(_json(archive, "training"))
    params = schema.param_entries(arch.layers, names)
    state = schema.state_entries(arch.layers, training.optimizer, training.counters, names)
    headers = [archive.header(name, schema.FLOAT_DTYPES, shape) for name, shape in {**params, **state}.items()]
    archive.reserve(headers)  # every header is checked before any data is read
    arrays = {}
    for header in headers:
        arrays[header.name] = archive.read(header)
        schema.check_finite(header.name, arrays[header.name])
    net = Sequential.from_state_dict(*arch.layers, state={n.removeprefix("param/"): arrays[n] for n in params},
                                     seed=arch.seed, dtype=arch.dtype)
    net.epoch = arch.epoch
    net.loss, net.optimizer = training.loss, training.optimizer
    net.optimizer_state = schema.optimizer_state({n: arrays[n] for n in state}, training.counters, arch.layers)
    net.shuffle_seed, net.metrics = training.shuffle_seed, training.metrics
    net.history, net.info = training.history, training.info
    return net
