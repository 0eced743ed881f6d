"""ONNX export from the model's own code: the inference forward pass (``Step.forward``, training=False) runs once on
ndonnx arrays, which record every standard call as an ONNX graph; no layer is written a second time.

The input is a symbolic ``ndx.argument`` of shape ("N", *features) (or a fixed batch), the parameters and layer
state become constants copied from the host, and onnxruntime's offline optimisation shrinks the graph before it is
written atomically. Nothing of the model changes: its arrays are only read (through the host), never moved.

Sequence models: a model whose first layer takes token ids (Embedding) gets an int64 input of shape (batch, T)
(``input_shape=(T,)``; ids outside [0, num_embeddings) are onnxruntime's Gather error, not checked in the graph).
The time axis is always fixed by ``input_shape``: GRU and LSTM unroll their time loop (T copies of the cell), the
reverse direction reads the input through ``xp.flip``, causal attention masks with ``xp.where(..., -inf)``.
Some layers export with a fixed batch (``batch=<int>``) only, because their forward pass sizes an array by the
batch, a Python int, where ndonnx's symbolic batch axis has no size (its shape holds None): Embedding (the rows it
takes are reshaped to the ids' shape), GRU and LSTM (the zero initial state), MultiHeadAttention (the heads are
split by a reshape to (batch, T, heads, d)) and Dense on input of rank > 2 (its rows are unfolded to the leading
sizes). ``export_onnx`` refuses a dynamic batch for them, naming the layer, before any work (``BATCH_SIZED``).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..array import host
from ..array.placement import Placement, check_dtype_name
from ..array.types import Params
from ..io.atomic import atomic_write
from ..nn.attention import MultiHeadAttention
from ..nn.dense import Dense
from ..nn.embedding import Embedding
from ..nn.gru import GRU
from ..nn.layer import Layer
from ..nn.lstm import LSTM
from ..nn.residual import Residual
from ..train.model import Sequential
from ..train.step import Step
from ..train.summary import sample_shape

INPUT, OUTPUT = "input", "output"  # the graph's input and output names
BATCH = "N"  # the symbolic batch dimension of a dynamic-batch export
# onnxruntime's offline level. BASIC: constant folding and redundant-node elimination, standard ONNX ops only, so the
# file passes onnx.checker and runs in any onnxruntime (and other runtimes). EXTENDED and ALL add com.microsoft
# contrib fusions and, for ALL, the NCHWc layout that onnxruntime itself says ties the saved file to this machine's
# CPU; on these graphs (matmuls inside ndonnx's zero-size If guards) they removed no further node either.
LEVEL = "ORT_ENABLE_BASIC"
HINT = 'ONNX export needs ndonnx, onnx and onnxruntime: pip install "portnn[onnx]"'
# Layers whose forward pass sizes an array by the batch (see the module docstring): the reason, given the layer's
# input shape, or None where it exports with a dynamic batch after all
BATCH_SIZED: dict[type[Layer], Callable[[tuple[int, ...]], str | None]] = {
    Embedding: lambda _: "reshapes the rows it takes to the ids' shape (batch, ..., dim)",
    GRU: lambda _: "starts from a zero state of shape (batch, hidden_size)",
    LSTM: lambda _: "starts from a zero state of shape (batch, hidden_size)",
    MultiHeadAttention: lambda _: "splits the heads by a reshape to (batch, T, num_heads, head size)",
    Dense: lambda shape: "unfolds the rows of its rank > 2 input to the leading sizes" if len(shape) > 2 else None,
}


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote: the file, its graph size before and after optimisation, opset and signature."""

    path: Path
    nodes: int  # top-level nodes of the written (optimised) graph
    nodes_traced: int  # top-level nodes of the graph ndonnx traced, before optimisation
    opset: int  # of the default ONNX domain
    inputs: dict[str, tuple[int | str, ...]]  # name -> shape; 'N' is the symbolic batch of a dynamic export
    outputs: dict[str, tuple[int | str, ...]]
    dtype: str  # 'float32' or 'float64', of the constants and the output (and the input but for token ids)
    optimization: str  # the onnxruntime level applied (LEVEL)
    input_dtype: str  # the input's: ``dtype``, or 'int64' for the token ids of a first Embedding layer


def require() -> None:
    """ImportError with the install hint unless ndonnx, onnx and onnxruntime can be imported (check before work)."""
    _modules()


def _modules() -> tuple[Any, Any, Any]:
    """(ndonnx, onnx, onnxruntime), or ImportError naming the missing one with the install hint."""
    found = []
    for name in ("ndonnx", "onnx", "onnxruntime"):
        try:
            found.append(importlib.import_module(name))
        except ImportError as err:
            raise ImportError(f"{HINT} ({name} is missing: {err})") from err
    return found[0], found[1], found[2]


def _batch(batch: Any) -> int | str:
    """'dynamic' as the symbolic 'N', or a positive int; TypeError/ValueError otherwise."""
    if batch == "dynamic":
        return BATCH
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise TypeError(f"export_onnx: batch must be 'dynamic' or a positive int, got {batch!r}")
    if batch < 1:
        raise ValueError(f"export_onnx: batch must be 'dynamic' or a positive int, got {batch}")
    return batch


def _input_shape(model: Sequential, input_shape: Any) -> tuple[int, ...]:
    """One sample's shape: ``input_shape``, the one the model remembers from fit/predict (``info``), or
    (in_features,) of a first Dense layer (``portnn.train.summary.sample_shape``)."""
    if not model.layers:
        raise ValueError("export_onnx: the model has no layers")
    return sample_shape(model, input_shape, "export_onnx")


def _dynamic(layers: tuple[Layer, ...] | list[Layer], shape: tuple[int, ...], where: str = "") -> None:
    """ValueError naming the first of ``layers`` (inside residual blocks too) that cannot take a symbolic batch
    (``BATCH_SIZED``), for input ``shape`` (checked to fit)."""
    for i, layer in enumerate(layers):
        rule = next((why for kind, why in BATCH_SIZED.items() if isinstance(layer, kind)), None)
        why = rule(shape) if rule is not None else None
        if why is not None:
            raise ValueError(f"export_onnx: layer {where}{i} ({layer!r}) exports with a fixed batch only: its forward "
                             f"pass {why}, a size the symbolic batch of a dynamic export does not have (ndonnx "
                             "gives None); pass batch=<int>")
        if isinstance(layer, Residual):
            _dynamic(layer.layers, shape, f"{where}{i}.")
        shape = layer.output_shape(shape, f"export_onnx: layer {where}{i}")


def _constants(tree: Params, ndx: Any, device: Any, dtype: Any) -> Params:
    """Parameter or state trees copied through the host into ndonnx constants (floats as ``dtype``, ints int64)."""
    def constant(a: Any) -> Any:
        values = host.to_numpy(a)
        return host.from_numpy(values, ndx, device=device, dtype=dtype if values.dtype.kind == "f" else ndx.int64)

    return [{name: constant(a) for name, a in layer.items()} for layer in tree]


def _trace(step: Step, params: Params, state: Params, x: Any) -> Any:
    """The output of ``step.forward`` on the ndonnx input ``x``; TypeError naming the first layer that fails."""
    try:
        return step.forward(params, state, x)[0]
    except Exception as err:  # find the layer: run them one by one with the same context
        h, ctx = x, step.inference
        for i, (layer, p, s) in enumerate(zip(step.layers, params, state, strict=True)):
            try:
                h, _ = layer.forward({**p, **s}, h, ctx)
            except Exception as inner:
                raise TypeError(f"export_onnx: layer {i} ({layer!r}) cannot be traced to ONNX by ndonnx "
                                f"({type(inner).__name__}: {inner}); a layer exports when its inference forward "
                                "pass uses only Array API standard functions that ndonnx implements") from inner
        raise TypeError(f"export_onnx: the forward pass cannot be traced to ONNX by ndonnx "
                        f"({type(err).__name__}: {err})") from err


def _shape(value: Any) -> tuple[int | str, ...]:
    """The declared shape of a graph input/output (dim_param names, dim_value ints; '?' where unknown)."""
    return tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                 for d in value.type.tensor_type.shape.dim)


def _declare(value: Any, shape: tuple[int | str, ...]) -> None:
    """Declare a graph output's shape (ndonnx loses it after a matmul): consumers and onnxruntime's checks see it."""
    dims = value.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dim = dims.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def _optimise(proto: Any, onnx: Any, ort: Any) -> Any:
    """The model after onnxruntime's offline optimisation at LEVEL, with unused opset imports dropped."""
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVEL)
    options.log_severity_level = 3  # errors only
    options.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory(prefix="portnn-onnx-") as folder:
        options.optimized_model_filepath = os.path.join(folder, "optimised.onnx")
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(options.optimized_model_filepath)
    used = {node.domain for node in optimised.graph.node} | {""}
    kept = [entry for entry in optimised.opset_import if entry.domain in used]
    del optimised.opset_import[:]
    optimised.opset_import.extend(kept)
    return optimised


def export_onnx(model: Sequential, path: str | os.PathLike, *, batch: int | str = "dynamic", dtype: str | None = None,
                input_shape: tuple[int, ...] | None = None) -> OnnxExport:
    """Write ``model``'s inference forward pass as an ONNX file at ``path`` (atomically), traced from its own layer
    code on ndonnx arrays and optimised by onnxruntime; the model is unchanged.

    ``batch``: 'dynamic' (any batch size, the symbolic 'N'; refused, naming the layer, for the layers in
    ``BATCH_SIZED``) or a fixed int. ``dtype``: 'float32' or 'float64' (default: the model's placement's, else its
    dtype, else float64); token ids (a first Embedding layer) are an int64 input. ``input_shape``: one sample's
    shape without the batch axis (default: (in_features,) of a first Dense layer; required otherwise, e.g.
    (1, 8, 8), or (T,) for token ids)."""
    ndx, onnx, ort = _modules()
    if not isinstance(model, Sequential):
        raise TypeError(f"export_onnx: model must be a portnn Sequential, got {type(model).__name__}")
    rows = _batch(batch)
    name = check_dtype_name(dtype, "export_onnx") or (model.placement.dtype_name if model.placement is not None
                                                      else model.dtype or "float64")
    features = _input_shape(model, input_shape)
    shape: tuple[int, ...] = (1 if isinstance(rows, str) else rows, *features)
    for i, layer in enumerate(model.layers):  # ValueError naming the layer when the input shape does not fit
        shape = layer.output_shape(shape, f"export_onnx: layer {i}")
    if isinstance(rows, str):  # ValueError naming the layer when it cannot take a symbolic batch
        _dynamic(model.layers, (1, *features))
    ids = bool(model.layers) and model.layers[0].integer_input
    device, xdtype = ndx.__array_namespace_info__().default_device(), getattr(ndx, name)
    step = Step(model.layers, None, None, Placement(ndx, device, xdtype), model.seed)
    params = _constants(model.params, ndx, device, xdtype)
    state = _constants(model.state, ndx, device, xdtype)
    x = ndx.argument(shape=(rows, *features), dtype=ndx.int64 if ids else xdtype)
    y = _trace(step, params, state, x)
    proto = ndx.build({INPUT: x}, {OUTPUT: y})
    _declare(proto.graph.output[0], (rows, *shape[1:]))
    traced = len(proto.graph.node)
    optimised = _optimise(proto, onnx, ort)
    optimised.producer_name, optimised.producer_version = "portnn", __version__
    onnx.checker.check_model(optimised, full_check=True)
    data = optimised.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    opset = next(entry.version for entry in optimised.opset_import if entry.domain in ("", "ai.onnx"))
    return OnnxExport(path=Path(path), nodes=len(optimised.graph.node), nodes_traced=traced, opset=opset,
                      inputs={v.name: _shape(v) for v in optimised.graph.input},
                      outputs={v.name: _shape(v) for v in optimised.graph.output}, dtype=name, optimization=LEVEL,
                      input_dtype="int64" if ids else name)


__all__ = ["OnnxExport", "export_onnx"]
