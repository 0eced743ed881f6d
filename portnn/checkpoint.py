"""Saving and loading models: one .npz holding the architecture, weights and training state; no pickle, atomic.

Entries: 'architecture' and 'training' (UTF-8 JSON as uint8 arrays), 'param/INDEX.NAME' (weights) and
'optim/INDEX.NAME/SLOT' (optimizer state arrays). The training JSON holds the loss and optimizer (type and
constructor arguments), the optimizer's step counters, the shuffle seed, the epoch, the metric names and the
per-epoch history. Shuffles are keyed by (shuffle seed, epoch), so those two numbers are the whole RNG state.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, dense, host, losses, optimizers
from .layer import Layer
from .sequential import Sequential

FORMAT = "portnn-checkpoint-2"
READABLE_FORMATS = ("portnn-checkpoint-1", FORMAT)  # version 1 held the architecture and weights only
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (dense.Dense, activations.Sigmoid, activations.Tanh, activations.ReLU,
                                  activations.LeakyReLU, activations.Softmax, activations.Identity)
}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer class loadable from checkpoints by its class name (usable as a decorator)."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


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


def _json_bytes(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, allow_nan=False).encode(), dtype=np.uint8)


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(net: Sequential, path: str | os.PathLike) -> None:
    """Write ``net`` (architecture, weights, loss, optimizer state, shuffle seed, epoch, history) to ``path``
    (.npz), replacing any old file atomically: a failure part-way leaves the old file as it was."""
    if not isinstance(net, Sequential):
        raise TypeError(f"save: expected a portnn Sequential, got {type(net).__name__}")
    training, optim_arrays = _training(net)
    arrays = {f"param/{k}": v for k, v in net.state_dict().items()}
    arrays.update(optim_arrays)
    try:
        arrays["architecture"] = _json_bytes(architecture(net))
        arrays["training"] = _json_bytes(training)
    except (TypeError, ValueError) as err:
        raise ValueError(f"save: the model's settings or history cannot be written as JSON: {err}") from err
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved by ``save``, ready to predict or to continue training with ``fit(X, y)``.

    Parameters and optimizer state stay on the host until the model first sees data or ``to()`` moves it, so a
    model saved from one backend loads on any other. Raises ValueError naming the file if it is corrupt."""
    try:
        with open(path, "rb") as f:  # our own handle: closed even when numpy fails on a truncated archive
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with data:
                arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"load: {path} is not a readable portnn checkpoint (corrupt or truncated?): {err}") from err
    if "architecture" not in arrays:
        raise ValueError(f"load: {path} has no 'architecture' entry; it was not written by portnn.save")
    try:
        return _rebuild(arrays)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"load: {path} is not a valid portnn checkpoint: {err}") from err


def _read_json(array: np.ndarray, name: str) -> Any:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError(f"entry {name!r} should be UTF-8 JSON bytes, got dtype {array.dtype}, shape {array.shape}")
    return json.loads(array.tobytes().decode())


def _rebuild(arrays: dict[str, np.ndarray]) -> Sequential:
    arch = _read_json(arrays.pop("architecture"), "architecture")
    if arch.get("format") not in READABLE_FORMATS:
        raise ValueError(f"format {arch.get('format')!r} is not one of {READABLE_FORMATS}")
    layers = []
    for i, spec in enumerate(arch["layers"]):
        spec = dict(spec)
        kind = spec.pop("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"layer {i} has unknown type {kind!r}; known: {', '.join(LAYER_TYPES)}")
        layers.append(LAYER_TYPES[kind](**spec))
    net = Sequential(*layers, seed=arch["seed"], dtype=arch["dtype"])
    net.load_state_dict({k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")})
    net.epoch = int(arch["epoch"])
    if "training" in arrays:
        _restore_training(net, _read_json(arrays["training"], "training"),
                          {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")})
    return net


def _restore_training(net: Sequential, training: dict[str, Any], optim_arrays: dict[str, np.ndarray]) -> None:
    """Set loss, optimizer (with its state as host arrays), shuffle seed, metrics and history on ``net``."""
    if training["loss"] is not None:
        kind = training["loss"]["type"]
        if kind not in losses.LOSSES:
            raise ValueError(f"unknown loss type {kind!r}; known: {', '.join(losses.LOSSES)}")
        net.loss = losses.LOSSES[kind](**training["loss"]["config"])
    spec = training["optimizer"]
    if spec is not None:
        if spec["type"] not in optimizers.OPTIMIZERS:
            raise ValueError(f"unknown optimizer type {spec['type']!r}; known: {', '.join(optimizers.OPTIMIZERS)}")
        opt = optimizers.OPTIMIZERS[spec["type"]](**spec["config"])
        params = {f"{i}.{name}": ((i, name), p) for (i, name), p in net.parameters().items()}
        state: dict[tuple[int, str], dict[str, Any]] = {}
        for entry, value in optim_arrays.items():
            param, _, slot = entry.rpartition("/")
            if param not in params:
                raise ValueError(f"optimizer state 'optim/{entry}' names no parameter of the model")
            key, p = params[param]
            if value.shape != tuple(p.shape) or value.dtype.kind != "f":
                raise ValueError(f"optimizer state 'optim/{entry}' has shape {value.shape} and dtype {value.dtype}; "
                                 f"the parameter has shape {tuple(p.shape)}")
            state.setdefault(key, {})[slot] = value
        for param, counters in spec["counters"].items():
            if param not in params:
                raise ValueError(f"optimizer counters name no parameter of the model: {param!r}")
            state.setdefault(params[param][0], {}).update({k: int(v) for k, v in counters.items()})
        net.optimizer_state = state
        net.optimizer = opt
    net.shuffle_seed = None if training["shuffle_seed"] is None else int(training["shuffle_seed"])
    net.metrics = None if training["metrics"] is None else list(training["metrics"])
    net.history = {k: [float(v) for v in values] for k, values in training["history"].items()}
    net.info = dict(training.get("info") or {})
