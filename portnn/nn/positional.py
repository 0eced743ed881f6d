"""Learned positional embedding (GPT-2 / minGPT's ``wpe``): row t of a (max_length, dim) table is added to every
sequence's step t, (N, T, dim) -> (N, T, dim) for T <= max_length. The table starts N(0, 0.02^2), minGPT's (and
GPT-2's) initialisation of embeddings: a small position signal beside the token embedding.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..array.types import Array
from ..array.validation import COUNT, POSITIVE, Checked, Rule
from .layer import Context, Grads, Layer


class PositionalEmbedding(Checked, Layer):
    """y[n, t] = x[n, t] + weight[t] for t < T <= max_length."""

    constraints: ClassVar[dict[str, Rule]] = {"max_length": COUNT, "dim": COUNT, "std": POSITIVE}

    def __init__(self, max_length: int, dim: int, std: float = 0.02) -> None:
        self.max_length, self.dim, self.std = max_length, dim, std

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.max_length, self.dim)}

    def init(self, rng: Any) -> dict[str, Any]:
        """N(0, std^2) (std 0.02, as minGPT), drawn on the host."""
        return {"weight": self.std * rng.standard_normal((self.max_length, self.dim))}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3 or shape[2] != self.dim:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, time, {self.dim}), got shape "
                             f"{tuple(shape)}")
        if shape[1] > self.max_length:
            raise ValueError(f"{where} ({self!r}): sequences of length {shape[1]} (input shape {tuple(shape)}) are "
                             f"longer than max_length {self.max_length}")
        return tuple(shape)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        return x + params["weight"][:x.shape[1], :], None

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, t = ctx.xp, dy.shape[1]
        used = xp.sum(dy, axis=0)  # (T, dim): every sequence's step t adds to row t
        unused = xp.zeros((self.max_length - t, self.dim), dtype=dy.dtype, device=ctx.device)
        return (dy if ctx.need_dx else None), {"weight": xp.concat([used, unused], axis=0)}

    def config(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "dim": self.dim, "std": self.std}
