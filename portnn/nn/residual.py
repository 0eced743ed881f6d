"""A skip connection around a stack of layers: y = x + f(x), with f any shape-preserving inner stack (nestable).

The inner layers' parameters and state live in this layer's dicts under 'j.name' (inner index, then the inner
layer's name), so a model's state_dict keys read '{i}.{j}.weight' and stay stable under nesting ('2.1.0.weight').
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from ..array.types import Array
from .layer import Context, Grads, Layer

# Residual blocks nest at most this deep: a checkpoint's JSON is at most 64 levels deep (portnn.io.schema), and each
# block adds two (its object and its 'layers' list) to the model's three, so 30 is the deepest model that saves;
# deeper ones would also meet Python's recursion limit (the forward pass, repr and config recurse per block).
MAX_DEPTH = 30


def _split(tree: dict[str, Array], count: int) -> list[dict[str, Array]]:
    """{'j.name': a} -> one {name: a} per inner layer."""
    out: list[dict[str, Array]] = [{} for _ in range(count)]
    for key, value in tree.items():
        j, _, name = key.partition(".")
        out[int(j)][name] = value
    return out


def _join(trees: list[dict[str, Any]]) -> dict[str, Any]:
    """One {name: a} per inner layer -> {'j.name': a}."""
    return {f"{j}.{name}": value for j, tree in enumerate(trees) for name, value in tree.items()}


class Residual(Layer):
    """x -> x + layers(x) for a stack whose output shape equals its input shape."""

    nested: ClassVar[bool] = True  # checkpoints rebuild the inner layers from config()['layers']

    def __init__(self, *layers: Layer) -> None:
        if not layers:
            raise ValueError("Residual: needs at least one inner layer")
        for j, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Residual: inner layer {j} must be a portnn Layer, got {type(layer).__name__}")
        self.depth: int = 1 + max((layer.depth for layer in layers if isinstance(layer, Residual)), default=0)
        if self.depth > MAX_DEPTH:
            raise ValueError(f"Residual: blocks nest {self.depth} deep, more than {MAX_DEPTH} (a checkpoint holds at "
                             f"most {MAX_DEPTH}); chain the blocks in a Sequential instead of nesting them")
        self.layers = tuple(layers)
        self.keyed = any(layer.keyed for layer in layers)  # type: ignore[misc]  # per instance: its inner layers

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return _join([layer.param_shapes() for layer in self.layers])

    def init(self, rng: Any) -> dict[str, Any]:
        """The inner layers' parameters, drawn in order from ``rng``."""
        return _join([layer.init(rng) for layer in self.layers])

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return _join([layer.state_shapes() for layer in self.layers])

    def init_state(self) -> dict[str, Any]:
        return _join([layer.init_state() for layer in self.layers])

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        inner = tuple(shape)
        for j, layer in enumerate(self.layers):
            inner = layer.output_shape(inner, f"{where} (Residual), inner layer {j}")
        if tuple(inner) != tuple(shape):
            raise ValueError(f"{where} (Residual): the inner layers map shape {tuple(shape)} to {tuple(inner)}; a "
                             "residual block's inner stack must keep the shape (x + f(x))")
        return tuple(shape)

    def _context(self, ctx: Context, j: int) -> Context:
        """The context of inner layer j: a key of its own for a keyed inner layer (seed, hashed index, ...)."""
        if ctx.key is None or not self.layers[j].keyed:
            return ctx
        seed, index, *rest = ctx.key
        return replace(ctx, key=(seed, (index * 65599 + j + 1) & 0xFFFFFFFF, *rest))

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        inner, h, saved = _split(params, len(self.layers)), x, []
        for j, layer in enumerate(self.layers):
            h, s = layer.forward(inner[j], h, self._context(ctx, j))
            saved.append(s)
        return x + h, (inner, saved)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        inner, kept = saved
        grads: list[Grads] = [{} for _ in self.layers]
        dh: Array | None = dy
        for j in range(len(self.layers) - 1, -1, -1):
            # inner layers after the first always pass a gradient on; the first only when this block must
            inner_ctx = replace(self._context(ctx, j), need_dx=bool(j) or ctx.need_dx)
            dh, grads[j] = self.layers[j].backward(inner[j], kept[j], dh, inner_ctx)
        return ((dy + dh) if ctx.need_dx else None), _join(grads)

    def update_state(self, params: dict[str, Array], saved: Any, ctx: Context) -> dict[str, Array]:
        inner, kept = saved
        return _join([layer.update_state(inner[j], kept[j], ctx) if layer.state_shapes() else {}
                      for j, layer in enumerate(self.layers)])

    def config(self) -> dict[str, Any]:
        return {"layers": [{"type": type(layer).__name__, **layer.config()} for layer in self.layers]}

    def __repr__(self) -> str:
        return f"Residual({', '.join(repr(layer) for layer in self.layers)})"
