"""The one schema of a portnn checkpoint: every field ``load`` reads, with its type, range and finiteness, checked
here, so no later code path (``fit``, ``predict``) meets a damaged value.

Layers, loss and optimizer are constructed inside the check, so a config their constructor refuses is an
``Invalid`` naming the field ('architecture.layers[2]'). JSON is bounded before it is parsed (size, number of
containers), parsed strictly (no NaN/Infinity, no duplicate keys, only finite numbers) and at most 64 levels deep.
"""

from __future__ import annotations

import functools
import inspect
import json
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..array.validation import Integer
from ..nn import LAYERS, LOSSES, metrics
from ..nn.layer import Layer
from ..optim import OPTIMIZERS, SCHEDULES, Optimizer, OptState
from ..train.state import TrainingState

FORMAT = "portnn-checkpoint-3"  # what save writes (since portnn 0.2.0, also for models without layer state)
# version 1 held the architecture and weights only, version 2 (0.1.0) also the training state but no layer state
READABLE_FORMATS = ("portnn-checkpoint-1", "portnn-checkpoint-2", FORMAT)
LAYER_TYPES = LAYERS  # every Layer subclass registers itself by class name (portnn.nn.layer)
FLOAT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))  # parameters and optimizer state: little-endian float32/64
# optimizer step counters (and a schedule's t) at most 2**53: float64 holds every count up to it exactly, so Adam's
# b**step is computed for the true step; the int64 counter has room for 2**63 - 2**53 more steps (a file with
# 2**63 - 1 loaded, then overflowed to a negative step on the next one, and b**step to inf)
MAX_COUNT = 2**53
# entries whose values are never negative, by kind and last name: (what they are, for the message)
NON_NEGATIVE = {("state", "running_var"): "a running variance", ("optim", "v"): "Adam's mean of squared gradients"}
# JSON limits: a stored entry's text is in the file; a deflated one is held to 4 MiB, so parsing a small file
# builds at most a few tens of MB of Python objects; the container count bounds the costliest objects (dicts).
JSON_MAX_BYTES = 64 << 20
JSON_MAX_INFLATED = 4 << 20
JSON_MAX_DEPTH = 64
JSON_MAX_CONTAINERS = 1 << 16


class Invalid(ValueError):
    """A checkpoint that breaks the schema; the message names the field or entry."""


def short(value: Any, limit: int = 80) -> str:
    """repr of an untrusted value, cut to ``limit`` characters so messages stay readable."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# ---- JSON ---------------------------------------------------------------------------------------------------
def check_json_text(data: bytes, name: str, max_bytes: int = JSON_MAX_BYTES) -> None:
    """Refuse JSON text too large or with too many arrays and objects, before it is parsed. Brackets are counted in
    the raw text (inside strings too: a safe over-count), which costs no memory, unlike stripping the strings."""
    if len(data) > max_bytes:
        raise Invalid(f"entry {name!r} holds {len(data)} bytes of JSON, more than {max_bytes}")
    if data.count(b"[") + data.count(b"{") > JSON_MAX_CONTAINERS:
        raise Invalid(f"entry {name!r} holds more than {JSON_MAX_CONTAINERS} JSON arrays and objects")


def check_depth(doc: Any, name: str) -> None:
    """Refuse a document nested deeper than JSON_MAX_DEPTH (walked without recursion), so no later json.dumps or
    walk of it can hit the recursion limit."""
    deepest, todo = 0, [(doc, 1)]
    while todo:
        node, depth = todo.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    if deepest > JSON_MAX_DEPTH:
        raise Invalid(f"entry {name!r} nests JSON {deepest} levels deep, more than {JSON_MAX_DEPTH}")


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} overflows a float")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {short(key)} appears twice in one object")
            seen.add(key)
    return result


def parse_json(data: bytes, name: str, max_bytes: int = JSON_MAX_BYTES) -> Any:
    """Strictly parse the UTF-8 JSON of entry ``name`` within the limits above."""
    check_json_text(data, name, max_bytes)
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_constant, parse_float=_finite_float,
                         object_pairs_hook=_unique)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digit limit, ours
        raise Invalid(f"entry {name!r} is not valid JSON: {err}") from err
    except RecursionError as err:  # json's C scanner stops cleanly at the recursion limit (~1000 levels)
        raise Invalid(f"entry {name!r} nests JSON more than {JSON_MAX_DEPTH} levels deep") from err
    check_depth(doc, name)
    return doc


# ---- field checks -------------------------------------------------------------------------------------------
def _object(doc: Any, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``doc`` as a JSON object with exactly ``keys``, and perhaps ``optional`` ones (a misspelt or extra key is
    damage, not a default)."""
    if not isinstance(doc, dict):
        raise Invalid(f"{where} must be a JSON object, got {type(doc).__name__} {short(doc)}")
    missing = [k for k in keys if k not in doc]
    unknown = sorted(set(doc) - set(keys) - set(optional))
    if missing or unknown:
        raise Invalid(f"{where}: missing keys {missing}, unknown keys {short(unknown)}")
    return doc


def _count(value: Any, where: str, high: int | None = MAX_COUNT) -> int:
    """A JSON int in [0, high] (True and 3.0 are not ints here), by the validation module's rule, as Invalid."""
    rule = Integer(0, high)
    if type(value) is not int:
        raise Invalid(f"{where} must be {rule.describe()}, got {type(value).__name__} {short(value)}")
    try:
        return rule(value, where, "schema")
    except ValueError:
        raise Invalid(f"{where} must be {rule.describe()}, got {short(value)}") from None


def _optional_count(value: Any, where: str) -> int | None:
    return None if value is None else _count(value, where, None)


@functools.cache
def _signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls)  # slow: once per class, not once per layer of a file with many layers


def _construct(cls: type, config: Any, where: str) -> Any:
    """``cls(**config)``; any failure (unknown argument, value the constructor refuses) names ``where``."""
    if not isinstance(config, dict):
        raise Invalid(f"{where}: config must be a JSON object, got {type(config).__name__} {short(config)}")
    try:
        _signature(cls).bind(**config)
    except TypeError as err:
        raise Invalid(f"{where} ({cls.__name__}): {err}") from err
    try:
        return cls(**config)
    except Exception as err:  # the constructor of a (possibly user-registered) class refused values from the file
        raise Invalid(f"{where} ({cls.__name__}): {type(err).__name__}: {err}") from err


def _kind(value: Any, known: dict[str, type], where: str, hint: str = "") -> type:
    """The class named ``value`` among ``known``; Invalid naming the type, the known ones and ``hint`` otherwise."""
    if not isinstance(value, str) or value not in known:
        raise Invalid(f"{where} has unknown type {short(value)}; known: {', '.join(known)}{hint}")
    return known[value]


# ---- architecture -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    """The validated 'architecture' entry, with its layers constructed."""

    format: str
    seed: int
    dtype: str | None
    epoch: int
    layers: list[Layer]


def architecture(doc: Any) -> Architecture:
    """Check the architecture JSON and build its layers; Invalid naming the field otherwise."""
    if not isinstance(doc, dict):
        raise Invalid(f"architecture must be a JSON object, got {type(doc).__name__}")
    fmt = doc.get("format")
    if not isinstance(fmt, str) or fmt not in READABLE_FORMATS:
        raise Invalid(f"architecture.format {short(fmt)} is not one of {READABLE_FORMATS}")
    _object(doc, "architecture", ("format", "seed", "dtype", "epoch", "layers"))
    dtype = doc["dtype"]
    if dtype not in (None, "float32", "float64"):
        raise Invalid(f"architecture.dtype must be null, 'float32' or 'float64', got {short(dtype)}")
    if not isinstance(doc["layers"], list):
        raise Invalid(f"architecture.layers must be a JSON array, got {type(doc['layers']).__name__}")
    return Architecture(fmt, _count(doc["seed"], "architecture.seed", None), dtype,
                        _count(doc["epoch"], "architecture.epoch", None),
                        [_layer(spec, f"architecture.layers[{i}]") for i, spec in enumerate(doc["layers"])])


def _layer(spec: Any, where: str) -> Layer:
    if not isinstance(spec, dict):
        raise Invalid(f"{where} must be a JSON object, got {type(spec).__name__} {short(spec)}")
    config = dict(spec)
    kind = config.pop("type", None)
    # a layer class of the user's own registers itself when its module is imported (portnn.nn.layer)
    cls = _kind(kind, LAYER_TYPES, where, "" if not isinstance(kind, str) else
                f". If {short(kind)} is a Layer subclass of your own, define or import the module that defines this "
                "Layer subclass before load()")
    if getattr(cls, "nested", False):  # a container (Residual): its inner layers are specs of their own
        inner = config.pop("layers", None)
        if not isinstance(inner, list):
            raise Invalid(f"{where}.layers must be a JSON array of layers, got {type(inner).__name__}")
        built = [_layer(s, f"{where}.layers[{j}]") for j, s in enumerate(inner)]
        if config:
            raise Invalid(f"{where} ({cls.__name__}): unknown keys {short(sorted(config))}")
        try:
            layer = cls(*built)
        except Exception as err:
            raise Invalid(f"{where} ({cls.__name__}): {type(err).__name__}: {err}") from err
    else:
        layer = _construct(cls, config, where)
    if not isinstance(layer, Layer):
        raise Invalid(f"{where}: {cls.__name__} did not build a portnn Layer")
    return layer


def _shape(shape: Any, where: str) -> tuple[int, ...]:
    """A shape a layer declares, checked: a layer built from the file's config may declare anything."""
    if not isinstance(shape, tuple | list) or not all(
            hasattr(d, "__index__") and not isinstance(d, bool) and d >= 0 for d in shape):
        raise Invalid(f"{where} of shape {short(shape)}")
    return tuple(operator.index(d) for d in shape)


def _declared(layers: list[Layer]) -> dict[str, tuple[int, ...]]:
    """'param/INDEX.NAME' -> the shape each layer declares (nothing is drawn or allocated)."""
    return {f"param/{i}.{name}": _shape(shape, f"architecture.layers[{i}] declares parameter {name!r}")
            for i, layer in enumerate(layers) for name, shape in layer.param_shapes().items()}


def _exactly(entries: dict[str, tuple[int, ...]], names: set[str], prefix: str,
             what: str) -> dict[str, tuple[int, ...]]:
    """``entries`` when the file's names under ``prefix`` are exactly them; Invalid listing the difference."""
    missing = sorted(set(entries) - names)
    extra = sorted(n for n in names if n.startswith(prefix) and n not in entries)
    if missing or extra:
        raise Invalid(f"the architecture's {what} and the file's disagree: missing entries {short(missing)}, "
                      f"unexpected entries {short(extra)}")
    return entries


def param_entries(layers: list[Layer], names: set[str]) -> dict[str, tuple[int, ...]]:
    """The 'param/' entries to read, with the shapes the layers declare: exactly those the file has."""
    return _exactly(_declared(layers), names, "param/", "parameters")


# ---- training ----------------------------------------------------------------------------------------------
# How the 'training' entry holds each training-state field beyond the arrays (portnn.train.state.TrainingState);
# 'epoch' is in the architecture entry (the 0.1.0 layout). tests/train/test_state.py checks that every field of
# the state is written and read back.
def training_doc(s: TrainingState, info: dict[str, Any], counters: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The 'training' entry of state ``s`` (``counters``: the optimizer's per-parameter step counters)."""
    doc: dict[str, Any] = {
        "loss": None if s.loss is None else {"type": type(s.loss).__name__, "config": s.loss.config()},
        "optimizer": None if s.optimizer is None else {"type": type(s.optimizer).__name__,
                                                       "config": s.optimizer.config(), "counters": counters},
        "shuffle_seed": s.shuffle_seed, "metrics": s.metrics, "history": s.history, "info": info,
    }
    if s.schedule is not None:
        doc["schedule"] = {"type": type(s.schedule).__name__, "config": s.schedule.config(), "t": s.schedule_t}
    if s.clip_norm is not None:
        doc["clip_norm"] = s.clip_norm
    return doc


@dataclass(frozen=True)
class Training:
    """The validated 'training' entry: the training-state fields it holds, the optimizer's counters, the info."""

    fields: dict[str, Any]
    counters: dict[str, dict[str, int]]
    info: dict[str, Any]

    @property
    def optimizer(self) -> Optimizer | None:
        optimizer: Optimizer | None = self.fields.get("optimizer")
        return optimizer


EMPTY = Training({}, {}, {})  # a version 1 file holds no training state


def training(doc: Any) -> Training:
    """Check the training JSON and build its loss, optimizer and schedule; Invalid naming the field otherwise."""
    doc = _object(doc, "training", ("loss", "optimizer", "shuffle_seed", "metrics", "history", "info"),
                  ("schedule", "clip_norm"))
    loss = None
    if doc["loss"] is not None:
        spec = _object(doc["loss"], "training.loss", ("type", "config"))
        loss = _construct(_kind(spec["type"], LOSSES, "training.loss"), spec["config"], "training.loss")
    opt, counters = None, {}
    if doc["optimizer"] is not None:
        spec = _object(doc["optimizer"], "training.optimizer", ("type", "config", "counters"))
        cls = _kind(spec["type"], OPTIMIZERS, "training.optimizer")
        opt = _construct(cls, spec["config"], "training.optimizer")
        counters = _counters(spec["counters"], "training.optimizer.counters")
    if not isinstance(doc["info"], dict):
        raise Invalid(f"training.info must be a JSON object, got {type(doc['info']).__name__}")
    schedule, schedule_t = None, 0
    if doc.get("schedule") is not None:
        spec = _object(doc["schedule"], "training.schedule", ("type", "config", "t"))
        schedule = _construct(_kind(spec["type"], SCHEDULES, "training.schedule"), spec["config"], "training.schedule")
        schedule_t = _count(spec["t"], "training.schedule.t")
    clip = doc.get("clip_norm")
    if clip is not None and (type(clip) not in (int, float) or not clip > 0):
        raise Invalid(f"training.clip_norm must be null or a positive number, got {short(clip)}")
    fields = {"loss": loss, "optimizer": opt, "metrics": _metrics(doc["metrics"]), "schedule": schedule,
              "clip_norm": None if clip is None else float(clip),
              "shuffle_seed": _optional_count(doc["shuffle_seed"], "training.shuffle_seed"),
              "schedule_t": schedule_t, "history": _history(doc["history"])}
    return Training(fields, counters, doc["info"])


def _counters(doc: Any, where: str) -> dict[str, dict[str, int]]:
    if not isinstance(doc, dict):
        raise Invalid(f"{where} must be a JSON object, got {type(doc).__name__}")
    result = {}
    for param, slots in doc.items():
        if not isinstance(slots, dict):
            raise Invalid(f"{where}[{short(param)}] must be a JSON object, got {type(slots).__name__}")
        result[param] = {k: _count(v, f"{where}[{short(param)}][{short(k)}]") for k, v in slots.items()}
    return result


def _metrics(doc: Any) -> list[str] | None:
    if doc is None:
        return None
    if not isinstance(doc, list) or not all(isinstance(m, str) for m in doc):
        raise Invalid(f"training.metrics must be null or a list of metric names, got {short(doc)}")
    unknown = [m for m in doc if m not in metrics.METRICS]
    if unknown:
        raise Invalid(f"training.metrics: unknown metrics {short(unknown)}; known: {', '.join(metrics.METRICS)}")
    return list(doc)


def _history(doc: Any) -> dict[str, list[float]]:
    if not isinstance(doc, dict):
        raise Invalid(f"training.history must be a JSON object of lists, got {type(doc).__name__}")
    history = {}
    for key, values in doc.items():
        if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
            raise Invalid(f"training.history[{short(key)}] must be a list of numbers, got {short(values)}")
        history[key] = [float(v) for v in values]  # parse_float refused non-finite floats; ints are finite
    return history


# ---- layer state and optimizer state ------------------------------------------------------------------------
def layer_state_entries(layers: list[Layer], names: set[str], fmt: str = FORMAT
                        ) -> dict[str, tuple[int, ...]]:
    """The 'state/INDEX.NAME' entries to read (non-trainable layer state), shaped as ``state_shapes()``: exactly
    those the file has. Only format 3 holds layer state (``save`` writes it for every model with some)."""
    entries = {}
    for i, layer in enumerate(layers):
        declared = layer.state_shapes()
        if not declared:
            continue
        where = f"architecture.layers[{i}] ({type(layer).__name__})"
        if fmt != FORMAT:
            raise Invalid(f"architecture.format is {fmt!r}, which holds no layer state, but {where} declares state "
                          f"{short(list(declared))}; files of models with layer state are {FORMAT!r}")
        both = sorted(set(declared) & set(layer.param_shapes()))
        if both:
            raise Invalid(f"{where} declares {short(both)} as both parameters and state")
        entries.update({f"state/{i}.{name}": _shape(shape, f"{where} declares state {name!r}")
                        for name, shape in declared.items()})
    return _exactly(entries, names, "state/", "layer state")


def state_entries(layers: list[Layer], optimizer: Optimizer | None, counters: dict[str, dict[str, int]],
                  names: set[str]) -> dict[str, tuple[int, ...]]:
    """The 'optim/INDEX.NAME/SLOT' entries to read, with their shapes: for every parameter exactly the slots
    ``optimizer.slot_names()`` says, or none at all (a fresh optimizer, whose state ``fit`` creates)."""
    stored = {n for n in names if n.startswith("optim/")}
    if optimizer is None:  # (counters are only read with an optimizer)
        if stored:
            raise Invalid(f"entry {min(stored)!r} is optimizer state, but the file names no optimizer")
        return {}
    slots, counter_names = optimizer.slot_names()
    params = {entry.removeprefix("param/"): shape for entry, shape in _declared(layers).items()}
    expected = {f"optim/{p}/{s}": shape for p, shape in params.items() for s in slots}
    expected_counters = {p: set(counter_names) for p in params} if counter_names else {}
    if not stored and not counters:
        return {}
    missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
    if missing or extra:
        raise Invalid(f"optimizer state for {type(optimizer).__name__}: missing entries {short(missing)}, "
                      f"unexpected entries {short(extra)}")
    found = {p: set(c) for p, c in counters.items()}
    if found != expected_counters:
        raise Invalid(f"training.optimizer.counters must give {short(sorted(counter_names))} for each of "
                      f"{short(sorted(params))}, got {short(counters)}")
    return expected


def optimizer_state(arrays: dict[str, np.ndarray], counters: dict[str, dict[str, int]],
                    layers: list[Layer]) -> OptState:
    """``net.optimizer_state`` from the checked arrays ('optim/INDEX.NAME/SLOT': a tree per slot) and counters
    ('INDEX.NAME' -> {'step': t}, one 0-d int64 array per counter: every parameter must give the same value)."""
    keys = {f"{i}.{name}": (i, name) for i, layer in enumerate(layers) for name in layer.param_shapes()}
    state: OptState = {}
    for entry, array in arrays.items():
        param, _, slot = entry.removeprefix("optim/").rpartition("/")
        i, name = keys[param]
        tree = state.setdefault(slot, [{} for _ in layers])
        tree[i][name] = array
    values: dict[str, set[int]] = {}
    for slots in counters.values():
        for counter, value in slots.items():
            values.setdefault(counter, set()).add(value)
    for counter, seen in values.items():
        if len(seen) != 1:
            raise Invalid(f"training.optimizer.counters: every parameter must have the same {counter!r} "
                          f"(one optimizer step moves them all), got {short(sorted(seen))}")
        state[counter] = np.asarray(seen.pop(), dtype=np.int64)
    return state


def check_range(name: str, array: np.ndarray) -> None:
    """Entries with a range beyond finiteness (``NON_NEGATIVE``) hold values in it: a file can hold a negative
    variance, a model cannot use one (it would fail later as an overflow or a divergence)."""
    kind, last = name.partition("/")[0], name.replace("/", ".").rpartition(".")[2]
    what = NON_NEGATIVE.get((kind, last))
    if what is None:
        return
    negative = array < 0
    bad = int(np.count_nonzero(negative))
    if bad:
        first = array[negative].flat[0]
        raise Invalid(f"entry {name!r} has {bad} negative value(s) of {array.size} (the first {first:.6g}); {what} "
                      "is >= 0")


def check_finite(name: str, array: np.ndarray) -> None:
    """Parameters and optimizer state are finite: a model never holds nan or inf."""
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise Invalid(f"entry {name!r} has {bad} non-finite value(s) (nan or inf) of {array.size}")
