"""Saving and loading models: one .npz holding the architecture (JSON) and the weights; no pickle, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, dense
from .layer import Layer
from .sequential import Sequential

FORMAT = "portnn-checkpoint-1"
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (dense.Dense, activations.Sigmoid, activations.Tanh, activations.ReLU)
}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer class loadable from checkpoints by its class name (usable as a decorator)."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


def architecture(net: Sequential) -> dict[str, Any]:
    """The JSON-able description from which ``load`` rebuilds ``net``."""
    return {"format": FORMAT, "seed": net.seed, "dtype": net.placement.dtype_name if net.placement else net.dtype,
            "epoch": net.epoch, "layers": [{"type": type(layer).__name__, **layer.config()} for layer in net.layers]}


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    """Write ``net`` (architecture + weights as host arrays) to ``path`` (.npz), replacing any old file atomically."""
    arrays = {f"param/{k}": v for k, v in net.state_dict().items()}
    arrays["architecture"] = np.frombuffer(json.dumps(architecture(net)).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved by ``save``; parameters stay on the host until the model first sees data."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"load: {path} is not a readable portnn checkpoint (corrupt or truncated?): {err}") from err
    if "architecture" not in arrays:
        raise ValueError(f"load: {path} has no 'architecture' entry; it was not written by portnn.save")
    arch = json.loads(arrays.pop("architecture").tobytes().decode())
    if arch.get("format") != FORMAT:
        raise ValueError(f"load: {path} has format {arch.get('format')!r}, expected {FORMAT!r}")
    layers = []
    for i, spec in enumerate(arch["layers"]):
        spec = dict(spec)
        kind = spec.pop("type")
        if kind not in LAYER_TYPES:
            raise ValueError(f"load: layer {i} of {path} has unknown type {kind!r}")
        layers.append(LAYER_TYPES[kind](**spec))
    net = Sequential(*layers, seed=arch["seed"], dtype=arch["dtype"])
    net.load_state_dict({k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")})
    net.epoch = int(arch["epoch"])
    return net
