"""Saving and loading models: one .npz (or .safetensors) file holding the architecture, weights and training
state; no pickle, atomic. A '.safetensors' file holds the same JSON as string metadata and the same arrays as
tensors keyed '0.weight', '1.running_mean', 'optim/0.weight/m' (``portnn.io.safetensors_file``).

Entries: 'architecture' and 'training' (UTF-8 JSON as uint8 arrays), 'param/INDEX.NAME' (weights),
'state/INDEX.NAME' (non-trainable layer state) and 'optim/INDEX.NAME/SLOT' (optimizer state arrays), all
little-endian. The training JSON holds the loss and optimizer
(type and constructor arguments), the optimizer's step counters, the shuffle seed, the epoch, the metric names and
the per-epoch history. Shuffles are keyed by (shuffle seed, epoch), so those two numbers are the whole RNG state.

``load`` reads within bounds set by the file (``portnn.io.reader``) and checks everything against one schema
(``portnn.io.schema``) before it builds the model with ``Sequential.from_state_dict``, which draws nothing.
Entries with other names are ignored and never decompressed (tools may add their own); 'param/', 'state/' and
'optim/' entries must be exactly those the architecture and optimizer need. Every file is written as format 3
(since 0.2.0); files of formats 1 and 2 (0.1.0) still load.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

import numpy as np

from ..array import host, tree
from ..optim.optimizer import OptState
from ..train.model import Sequential
from . import safetensors_file, schema
from .atomic import atomic_write
from .reader import Archive
from .safetensors_file import SafetensorsArchive
from .schema import FORMAT, LAYER_TYPES, READABLE_FORMATS, Invalid

__all__ = ["FORMAT", "LAYER_TYPES", "READABLE_FORMATS", "architecture", "atomic_write", "load", "save"]


def architecture(net: Sequential) -> dict[str, Any]:
    """The JSON-able description from which ``load`` rebuilds ``net``."""
    dtype = net.placement.dtype_name if net.placement else net.dtype
    return {"format": FORMAT, "seed": net.seed, "dtype": dtype, "epoch": net.epoch,
            "layers": [{"type": type(layer).__name__, **layer.config()} for layer in net.layers]}


def optimizer_entries(state: OptState, params: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray],
                                                                           dict[str, dict[str, int]]]:
    """The file's form of an optimizer state: host arrays 'optim/INDEX.NAME/SLOT' for the slots shaped like the
    parameters, and integer counters per parameter ('INDEX.NAME' -> {'step': t}) for the 0-d ones, both in the
    0.1.0 order (parameter by parameter, then slot), so a file is written entry for entry as that release did."""
    slots = {slot: tree.flatten(value) for slot, value in state.items() if isinstance(value, list)}
    counts = {slot: int(host.to_numpy(value)) for slot, value in state.items() if not isinstance(value, list)}
    keys = list(tree.flatten(params))
    arrays = {f"optim/{key}/{slot}": host.to_numpy(flat[key]) for key in keys for slot, flat in slots.items()}
    return arrays, ({key: dict(counts) for key in keys} if counts else {})


def _training(net: Sequential) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able training state, host arrays of the optimizer state keyed 'optim/INDEX.NAME/SLOT')."""
    arrays, counters = optimizer_entries(net.optimizer_state, net.params)
    return schema.training_doc(net.training, net.info, counters), arrays


def _json_text(value: Any, name: str) -> bytes:
    schema.check_depth(value, name)  # the JSON limits of load are checked here too, so every saved file loads
    data = json.dumps(value, allow_nan=False).encode()
    schema.check_json_text(data, name)
    return data


def _little_endian(array: np.ndarray) -> np.ndarray:
    """C-ordered little-endian copy (no copy on little-endian machines): the byte order the format defines."""
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)  # 0-d stays 0-d


def save(net: Sequential, path: str | os.PathLike) -> None:
    """Write ``net`` (architecture, weights, layer state, loss, optimizer state, shuffle seed, epoch, history) to
    ``path``, replacing any old file atomically: a failure part-way leaves the old file as it was. The suffix picks
    the format: '.safetensors' (tensors keyed as the state_dict, the JSON as string metadata) or else .npz; both
    hold the same and ``load`` reads both."""
    if not isinstance(net, Sequential):
        raise TypeError(f"save: expected a portnn Sequential, got {type(net).__name__}")
    training, optim_arrays = _training(net)
    try:
        text = {"architecture": _json_text(architecture(net), "architecture"),
                "training": _json_text(training, "training")}
    except (TypeError, ValueError) as err:
        raise ValueError(f"save: the model's settings or history cannot be written as JSON: {err}") from err
    weights = {k: _little_endian(v) for k, v in net.state_dict().items()}
    optim = {k: _little_endian(v) for k, v in optim_arrays.items()}
    if safetensors_file.is_safetensors(path):
        data = safetensors_file.to_bytes({**weights, **optim}, {k: v.decode() for k, v in text.items()})
        atomic_write(path, lambda f: f.write(data))
        return
    stateful = set(tree.flatten(net.state))
    arrays = {f"{'state' if k in stateful else 'param'}/{k}": v for k, v in weights.items()}
    arrays.update(optim)
    arrays.update({k: np.frombuffer(v, dtype=np.uint8) for k, v in text.items()})
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **kwds


# ---- loading ------------------------------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved by ``save``, ready to predict or to continue training with ``fit(X, y)``.

    Parameters and optimizer state stay on the host until the model first sees data or ``to()`` moves it, so a
    model saved from one backend loads on any other. A damaged file is a ValueError 'load: PATH: ...' naming the
    field or entry; FileNotFoundError, PermissionError and IsADirectoryError say what they are. A .safetensors file
    is checked against the SHA-256 digests ``save`` writes; one without them (an older or foreign file) loads with
    ``net.info['provenance']`` saying so (``portnn.io.safetensors_file``)."""
    with _open(path) as (file, size):
        try:
            archive = SafetensorsArchive(path, size, file) if safetensors_file.is_safetensors(path) else \
                Archive(file, size)
            net = _load(archive)
        except Invalid as err:
            raise ValueError(f"load: {path}: {err}") from err
    provenance = getattr(archive, "provenance", None)  # a .safetensors file without digests: said, not refused
    if provenance is not None:
        net.info = {**net.info, "provenance": provenance}
    return net


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


def _json(archive: Archive | SafetensorsArchive, name: str) -> Any:
    return schema.parse_json(archive.json_bytes(name), name)


def _load(archive: Archive | SafetensorsArchive) -> Sequential:
    if "architecture" not in archive.names():
        raise Invalid("has no 'architecture' entry; it was not written by portnn.save")
    arch = schema.architecture(_json(archive, "architecture"))
    names = archive.classify(arch.layers)
    training = schema.EMPTY  # version 1 files hold no training state
    if arch.format != "portnn-checkpoint-1":
        if "training" not in names:
            raise Invalid("has no 'training' entry, which every portnn-checkpoint-2 file has")
        training = schema.training(_json(archive, "training"))
    params = schema.param_entries(arch.layers, names)
    layer_state = schema.layer_state_entries(arch.layers, names, arch.format)
    state = schema.state_entries(arch.layers, training.optimizer, training.counters, names)
    headers: list[Any] = [archive.header(name, schema.FLOAT_DTYPES, shape)
                          for name, shape in {**params, **layer_state, **state}.items()]
    archive.reserve(headers)  # every header is checked before any data is read
    arrays = {}
    for header in headers:
        arrays[header.name] = archive.read(header)
        schema.check_finite(header.name, arrays[header.name])
        schema.check_range(header.name, arrays[header.name])
    stored = {n.partition("/")[2]: arrays[n] for n in (*params, *layer_state)}
    net = Sequential.from_state_dict(*arch.layers, state=stored, seed=arch.seed, dtype=arch.dtype)
    optimizer_state = schema.optimizer_state({n: arrays[n] for n in state}, training.counters, arch.layers)
    net.training = replace(net.training, epoch=arch.epoch, optimizer_state=optimizer_state, **training.fields)
    net.info = training.info
    return net
