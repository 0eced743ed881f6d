"""A model's summary as Keras prints it: each layer's output shape for one input shape, its parameter and state
counts, and the totals with their bytes; the inner layers of a Residual block indented under it, named by their
state_dict prefix ('2.0'). Computed from the layers' configuration alone (``output_shape``, ``param_shapes``,
``state_shapes``): nothing is drawn, placed or run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..array.validation import Integer
from ..nn.layer import Layer
from ..nn.residual import Residual

ITEMSIZE = {"float32": 4, "float64": 8}
SAMPLE_SIDE = Integer(1)


@dataclass(frozen=True)
class Row:
    """One line of the table: the layer's name ('2.0 Dense'), nesting depth, output shape and counts."""

    name: str
    depth: int
    shape: tuple[int, ...]
    params: int
    state: int


def sample_shape(net: Any, given: Any = None, where: str = "summary") -> tuple[int, ...]:
    """One sample's shape (no batch axis): ``given``, else ``net.info['input_shape']`` (which `portnn train --save`
    records), else (in_features,) of a first Dense layer; ValueError asking for input_shape otherwise."""
    if given is None:
        given = net.info.get("input_shape")
    if given is None:
        first = net.layers[0] if net.layers else None
        while isinstance(first, Residual):
            first = first.layers[0]
        if first is None or not hasattr(first, "in_features"):
            raise ValueError(f"{where}: give input_shape, one sample's shape without the batch axis (e.g. (64,), "
                             "(1, 8, 8) for images, (T,) for token ids): the model does not record it "
                             f"(net.info['input_shape']) and its first layer ({first!r}) does not fix it")
        given = (first.in_features,)
    sides = tuple(given) if isinstance(given, tuple | list) else (given,)
    if not sides:
        raise ValueError(f"{where}: input_shape must be one sample's shape, positive ints, got {given!r}")
    return tuple(SAMPLE_SIDE(side, f"input_shape[{i}]", where) for i, side in enumerate(sides))


def _count(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


def rows(layers: list[Layer], shape: tuple[int, ...], where: str = "summary", prefix: str = "",
         depth: int = 0) -> tuple[list[Row], tuple[int, ...]]:
    """(the table's rows, the output shape) of ``layers`` for input ``shape`` (batch axis included); a layer that
    does not take its input raises its own ValueError naming ``where`` and the layer."""
    found = []
    for i, layer in enumerate(layers):
        name = f"{prefix}{i}"
        out = tuple(layer.output_shape(shape, f"{where}: layer {name}"))
        found.append(Row(f"{name} {type(layer).__name__}", depth, out, _count(layer.param_shapes()),
                         _count(layer.state_shapes())))
        if isinstance(layer, Residual):  # its inner layers, indented
            found += rows(list(layer.layers), shape, where, f"{name}.", depth + 1)[0]
        shape = out
    return found, shape


def size(nbytes: int) -> str:
    """Bytes in binary units: '512 B', '34.0 KiB', '1.5 MiB'."""
    value, unit = float(nbytes), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{nbytes} B" if unit == "B" else f"{value:.1f} {unit}"


def summary(net: Any, input_shape: Any = None) -> str:
    """The model as a table, one row per layer (inner layers of a Residual indented): output shape for a batch of
    one-sample shape ``input_shape`` (default: ``net.info['input_shape']``, see ``sample_shape``), parameters and
    non-trainable state, then the totals and their bytes in the model's dtype."""
    sample = sample_shape(net, input_shape)
    table, _ = rows(list(net.layers), (1, *sample), f"summary (input_shape {sample})")
    dtype = net.placement.dtype_name if net.placement is not None else (net.dtype or "float64")
    itemsize = ITEMSIZE[dtype]

    def shape_text(shape: tuple[int, ...]) -> str:
        return "(" + ", ".join(["None", *map(str, shape[1:])]) + ("," if len(shape) == 1 else "") + ")"

    header = ("Layer (type)", "Output shape", "Params", "State")
    body = [("  " * r.depth + r.name, shape_text(r.shape), f"{r.params:,}", f"{r.state:,}") for r in table]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(4)]

    def line(cells: tuple[str, str, str, str]) -> str:
        return (f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:>{widths[2]}}  "
                f"{cells[3]:>{widths[3]}}").rstrip()

    rule = "=" * len(line(header))
    params = sum(r.params for r in table if r.depth == 0)
    state = sum(r.state for r in table if r.depth == 0)
    lines = [f"Sequential: {len(net.layers)} layers, {dtype}, input shape {shape_text((1, *sample))}", line(header),
             rule, *map(line, body), rule,
             f"Total: {params + state:,} values ({size((params + state) * itemsize)})",
             f"Trainable parameters: {params:,} ({size(params * itemsize)})",
             f"Non-trainable state: {state:,} ({size(state * itemsize)})"]
    return "\n".join(lines)
