"""The data of a public call (fit, predict, evaluate, gradients), resolved once: one backend and device with the
model, real finite numbers, row counts and shapes checked against the layers and the loss, all before the model is
placed or anything is computed; floats cast to the model's dtype, class labels kept as integers."""

from __future__ import annotations

from typing import Any

from ..array import host
from ..array.placement import Placement, as_array, backend_name, namespace_of
from ..array.types import Array, Namespace
from ..nn.losses import Loss
from . import checks
from .source import Resident, Streamed


def resolve(net: Any, arrays: dict[str, Any], where: str) -> tuple[Namespace, Any, dict[str, Array]]:
    """(xp, device, arrays): one namespace and device, the model's if it is placed; real finite values."""
    p = net.placement
    arrays = {name: as_array(a, name, p) for name, a in arrays.items()}
    xp, device = namespace_of(arrays, where)
    first = next(iter(arrays))
    if p is not None and xp is not p.xp:
        raise TypeError(f"{where}: {first} is a {backend_name(xp)} array but the model lives in {p.describe()}; call "
                        f"model.to(...) or pass {backend_name(p.xp)} arrays")
    if p is not None and device != p.device:
        raise ValueError(f"{where}: {first} is on device {device} but the model is on {p.device}; move the data or "
                         "call model.to(...)")
    checks.data(arrays, where, xp, dtype=p.dtype if p is not None else net.dtype)  # and nothing its dtype overflows
    return xp, device, arrays


def output_shape(net: Any, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """The model's output shape for an input of ``shape``; ValueError naming the layer that does not fit."""
    for i, layer in enumerate(net.layers):
        shape = layer.output_shape(shape, f"{where}: layer {i}")
    return shape


def as_model_dtype(x: Array, p: Placement) -> Array:
    return x if x.dtype == p.dtype else p.xp.astype(x, p.dtype)


def remember_shape(net: Any, x: Array) -> None:
    """Note one sample's shape in ``net.info`` (saved in checkpoints) after a successful fit or predict, so that
    ``summary()`` and ``export_onnx`` need no input_shape."""
    shape = [int(d) for d in tuple(x.shape)[1:]]
    if net.info.get("input_shape") != shape:
        net.info = {**net.info, "input_shape": shape}


def first_input(net: Any, x: Array, xp: Namespace, where: str) -> None:
    """The first layer's check of the input's values (token ids in range), once per call before any work."""
    if net.layers:
        net.layers[0].check_input(x, xp, f"{where}: layer 0")


def as_input(net: Any, x: Array, p: Placement) -> Array:
    """X as the first layer takes it: in the model's dtype, or as integer ids (Embedding)."""
    if net.layers and net.layers[0].integer_input and xp_integral(p.xp, x):
        return x
    return as_model_dtype(x, p)


def xp_integral(xp: Namespace, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "integral"))


def inputs(net: Any, X: Any, where: str) -> tuple[Placement, Array]:
    """(placement, X) of an inference call (predict): checked, the model placed, X as the first layer takes it."""
    xp, device, arrays = resolve(net, {"X": X}, where)
    checks.features(arrays["X"], "X", where)
    output_shape(net, tuple(arrays["X"].shape), where)
    first_input(net, arrays["X"], xp, where)
    p = net.place(xp, device, arrays["X"])
    return p, as_input(net, arrays["X"], p)


def training_data(net: Any, X: Any, y: Any, loss: Loss, where: str,
                  validation: tuple[Any, Any] | None = None) -> tuple[Placement, Array, Array, Any]:
    """(placement, X, y, (X_val, y_val) or None) of a call with targets (see the module docstring)."""
    p, data, val = _checked(net, X, y, loss, where, validation, stream=False)
    return p, data.X, data.y, None if val is None else (val.X, val.y)


def training_source(net: Any, X: Any, y: Any, loss: Loss,
                    validation: tuple[Any, Any] | None = None) -> tuple[Placement, Resident, Any]:
    """(placement, the rows to train on, (X_val, y_val) or None) of ``fit``: arrays in the model's namespace and on
    its device, or, for a model already placed on another device, host NumPy arrays (memory maps too), streamed one
    batch at a time (``portnn.train.source``; validation data then too)."""
    return _checked(net, X, y, loss, "fit", validation, stream=True)


def _streams(net: Any, arrays: dict[str, Any], stream: bool) -> bool:
    """Whether host arrays train a model placed elsewhere (the one mixed placement portnn accepts)."""
    p = net.placement
    return (stream and p is not None and all(host.is_host(a) for a in arrays.values())
            and backend_name(p.xp) != "numpy")


def _checked(net: Any, X: Any, y: Any, loss: Loss, where: str, validation: tuple[Any, Any] | None,
             stream: bool) -> tuple[Placement, Resident, Any]:
    named = {"X": X, "y": y} if validation is None else {"X": X, "y": y, "X_val": validation[0],
                                                        "y_val": validation[1]}
    streams = _streams(net, {k: as_array(a, k, None) for k, a in named.items()}, stream)
    if streams:  # checked on the host, where they are
        arrays = {k: as_array(a, k, None) for k, a in named.items()}
        xp, device = namespace_of(arrays, where)
        checks.data(arrays, where, xp, dtype=net.placement.dtype_name)
    else:
        xp, device, arrays = resolve(net, named, where)
    pairs = [("X", "y")] + ([("X_val", "y_val")] if validation is not None else [])
    labels = {}
    for xn, yn in pairs:
        xa, ya = arrays[xn], arrays[yn]
        checks.features(xa, xn, where)
        if xa.ndim < 2 or ya.ndim < 1 or xa.shape[0] != ya.shape[0]:
            raise ValueError(f"{where}: {xn} has shape {tuple(xa.shape)} and {yn} has shape {tuple(ya.shape)}; they "
                             "need the same number of rows (samples)")
        out_shape = output_shape(net, tuple(xa.shape), where if xn == "X" else f"{where} ({xn})")
        first_input(net, xa, xp, where if xn == "X" else f"{where} ({xn})")
        loss.check(out_shape, tuple(ya.shape))
        loss.check_targets(ya, out_shape, xp)
        labels[yn] = loss.takes_labels(tuple(ya.shape), out_shape)
    if streams:
        p = net.placement
        ids = bool(net.layers) and net.layers[0].integer_input and xp.isdtype(arrays["X"].dtype, "integral")
        dtypes = {n: None if labels.get(n) or (ids and n.startswith("X")) else p.dtype for n in arrays}
        data = Streamed(arrays["X"], arrays["y"], p, dtypes["X"], dtypes["y"])
        val: Resident | None = None if validation is None else Streamed(
            arrays["X_val"], arrays["y_val"], p, dtypes["X_val"], dtypes["y_val"])
        return p, data, val
    p = net.place(xp, device, arrays["X"])
    cast = {name: a if labels.get(name) else as_input(net, a, p) if name.startswith("X") else as_model_dtype(a, p)
            for name, a in arrays.items()}
    val = Resident(cast["X_val"], cast["y_val"], p) if validation is not None else None
    return p, Resident(cast["X"], cast["y"], p), val
