"""Ranks must agree on everything that decides the result: at the start of every data-parallel ``fit`` one
Allgather of per-field 64-bit hashes (``FIELDS``), and on a difference the same ``RanksDisagree`` on every rank
naming the first differing field and two real ranks' values."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..array import host, tree
from ..array.placement import backend_name
from ..train.state import ARRAYS, TrainingState
from ..train.state import FIELDS as STATE_FIELDS
from .communicator import Communicator

# The fields ``fingerprint`` describes, in the order they are checked: the first that differs is named, so causes
# come before their consequences (the dtype changes the data's bytes, a resumed epoch the optimizer's step). Every
# field of the training state is one of them (its settings and counters, then its arrays), so a field added there
# is compared here without a change.
CALL = ("backend", "dtype", "data", "architecture")
ARGUMENTS = ("batch_size", "epochs", "steps", "shuffle", "seed")
FIELDS = (*CALL, *(f for f in STATE_FIELDS if f not in (*ARRAYS, "history")), *ARGUMENTS, *ARRAYS, "history")


class RanksDisagree(ValueError):
    """The ranks of a data-parallel ``fit`` were given different data, model or arguments; raised with the same
    message on every rank, so none is left waiting in a collective."""


def digest64(payload: bytes) -> int:
    """The first 8 bytes of ``payload``'s SHA-256 as a signed int64 (one slot of the gathered vector)."""
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little", signed=True)


def canonical(value: Any) -> bytes:
    """``value`` as canonical JSON (sorted keys, exact float repr): equal bytes on every rank for equal values."""
    return json.dumps(value, sort_keys=True, default=repr).encode()


def call_text(obj: Any) -> str:
    """``Name(key=value, ...)`` of a layer, loss or optimizer from its type and ``config()``."""
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in obj.config().items())})"


def data_digest(arrays: dict[str, Any]) -> tuple[str, int]:
    """(readable summary, hash) of the named arrays' dtypes, shapes and bytes: one host copy of each non-NumPy
    array (NumPy arrays are read in place when contiguous)."""
    digest, parts = hashlib.sha256(), []
    for name, a in arrays.items():
        values = np.ascontiguousarray(a if isinstance(a, np.ndarray) else host.to_numpy(a))
        digest.update(canonical([name, values.dtype.str, list(values.shape)]))
        digest.update(values.data.cast("B"))  # the bytes in place, no copy
        with np.errstate(all="ignore"):  # the mean is only shown, never compared
            mean = f"mean {float(np.mean(values, dtype=np.float64)):.6g}" if values.size else "empty"
        parts.append(f"{name} {values.dtype} {tuple(values.shape)} {mean}")
    full = digest.digest()
    return f"{', '.join(parts)}, sha256 {full.hex()[:16]}", int.from_bytes(full[:8], "little", signed=True)


def state_summary(state: dict[str, Any]) -> tuple[str, Any]:
    """(readable, canonical) of an optimizer state: its slots (trees shaped like the parameters) by name and its
    counters (Adam's step) by value; the slot arrays themselves are broadcast from rank 0, so only their presence
    must agree."""
    if not state:
        return "none", {}
    canon: dict[str, Any] = {}
    for slot, value in state.items():
        if isinstance(value, list):
            canon[slot] = sorted(f"{i}.{n}" for i, layer in enumerate(value) for n in layer)
        else:
            canon[slot] = int(host.to_numpy(value))
    slots = sorted(k for k, v in canon.items() if isinstance(v, list))
    counters = "".join(f"; {k} {v}" for k, v in sorted(canon.items()) if not isinstance(v, list))
    count = max((len(v) for v in canon.values() if isinstance(v, list)), default=0)
    return f"{', '.join(slots) or 'no slots'} of {count} parameters{counters}", canon


def describe(name: str, value: Any) -> tuple[str, Any]:
    """(readable, canonical) of one training-state field: a tree of arrays by the shapes of its entries (the values
    are broadcast from rank 0), the optimizer state by its slots and counters, a configured object (loss,
    optimizer, schedule) by its type and config, the history by the epochs it holds, anything else as it is."""
    if name == "optimizer_state":
        return state_summary(value)
    if name in ARRAYS:
        shapes = {k: list(a.shape) for k, a in tree.flatten(value).items()}
        return f"{sum(math.prod(s) for s in shapes.values())} values in {len(shapes)} arrays", shapes
    if hasattr(value, "config"):
        return call_text(value), [type(value).__name__, value.config()]
    if name == "history":
        lengths = {k: len(v) for k, v in value.items()}
        return f"{max(lengths.values(), default=0)} epochs of {', '.join(sorted(lengths)) or 'nothing'}", lengths
    return repr(value), value


def fingerprint(net: Any, data: tuple[Any, Any], *, batch_size: int, epochs: int, shuffle: bool,
                steps: int | None = None, state: TrainingState | None = None) -> dict[str, tuple[str, int]]:
    """Per field of ``FIELDS``: (readable value, 64-bit hash) of what decides this rank's training (``state``:
    the training state the fit starts from, default the model's)."""
    p = net.placement
    s = net.training if state is None else state
    if s.shuffle_seed is None:
        s = replace(s, shuffle_seed=net.seed)  # the seed the shuffles use
    texts: dict[str, tuple[str, Any]] = {
        "backend": (backend_name(p.xp), backend_name(p.xp)),
        "dtype": (p.dtype_name, p.dtype_name),
        "architecture": (" -> ".join(call_text(layer) for layer in net.layers),
                         [[type(layer).__name__, layer.config()] for layer in net.layers]),
        "batch_size": (str(batch_size), int(batch_size)),
        "epochs": (str(epochs), int(epochs)),
        "steps": (str(steps), steps),
        "shuffle": (str(bool(shuffle)), bool(shuffle)),
        "seed": (str(net.seed), int(net.seed)),
    }
    texts.update({name: describe(name, value) for name, value in s.values().items()})
    out = {"data": data_digest({"X": data[0], "y": data[1]})}
    out.update({field: (text, digest64(canonical([field, value]))) for field, (text, value) in texts.items()})
    return {field: out[field] for field in FIELDS}


def check_agreement(comm: Communicator, fields: dict[str, tuple[str, int]], where: str = "fit") -> None:
    """Raise RanksDisagree, with the same message on every rank, unless all ranks hold the same hashes: one
    Allgather of (hashes, text lengths); on a difference, two broadcasts of the first differing field's text."""
    names = list(fields)
    texts = [fields[k][0].encode() for k in names]
    mine = np.array([fields[k][1] for k in names] + [len(t) for t in texts], dtype=np.int64)
    table = comm.allgather(mine)
    hashes, lengths = table[:, :len(names)], table[:, len(names):]
    differing = np.flatnonzero((hashes != hashes[0]).any(axis=0))
    if differing.size == 0:
        return
    f = int(differing[0])
    others = np.flatnonzero(hashes[:, f] != hashes[0, f])
    b = int(others[0])
    first, second = (shared_text(comm, texts[f], int(lengths[r, f]), r) for r in (0, b))
    first, second = clip(first, second)
    also = [names[i] for i in differing[1:]]
    raise RanksDisagree(
        f"{where}: the {comm.size} ranks disagree on {names[f]}: rank 0: {first}; rank {b}: {second} "
        f"({others.size} of {comm.size} ranks differ from rank 0"
        + (f"; they also disagree on {', '.join(also)}" if also else "")
        + f"). Every rank must call {where} with the same data, model and arguments")


def shared_text(comm: Communicator, text: bytes, length: int, root: int) -> str:
    """Rank ``root``'s ``text`` (``length`` bytes, known to every rank) on every rank, by one broadcast."""
    if length == 0:
        return ""
    mine = np.frombuffer(text, dtype=np.uint8).copy() if comm.rank == root else np.zeros(length, dtype=np.uint8)
    return comm.broadcast(mine, root=root).tobytes().decode(errors="replace")


def clip(a: str, b: str, width: int = 240) -> tuple[str, str]:
    """Two long texts cut to ``width`` characters around where they first differ."""
    if len(a) <= width and len(b) <= width:
        return a, b
    same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    lo = max(0, same - width // 4)

    def cut(s: str) -> str:
        return ("..." if lo else "") + s[lo:lo + width] + ("..." if len(s) > lo + width else "")

    return cut(a), cut(b)
