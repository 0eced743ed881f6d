"""Multi-head scaled dot-product self-attention with torch.nn.MultiheadAttention(batch_first=True)'s layout:

    q, k, v = split(x @ in_proj_weight^T + in_proj_bias)           in_proj_weight (3E, E) stacks q, k, v
    per head (E / num_heads = d wide):  P = softmax(q k^T / sqrt(d)) (future steps masked out when ``causal``)
    y = concat_heads(dropout(P) v) @ out_proj_weight^T + out_proj_bias

torch's keys map one to one: 'in_proj_weight', 'in_proj_bias', 'out_proj.weight' <-> ``out_proj_weight``,
'out_proj.bias' <-> ``out_proj_bias`` (``bias=False`` drops both biases, as torch). The softmax subtracts each row's
maximum; the causal mask is ``xp.where(allowed, scores, -inf)``, so masked weights are exactly 0. Attention dropout
draws its mask from the counter-based generator (``threefry``, as Dropout, also honouring a data-parallel rank's
``ctx.rows``), so every backend drops the same weights and the backward reuses the forward's mask. Initialisation
as torch: xavier_uniform in_proj_weight, out_proj_weight U(-1/sqrt(E), 1/sqrt(E)) (Linear's default), zero biases.
No key padding mask and no cross-attention: self-attention over full (N, T, E) batches.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..array import random as host_random
from ..array.placement import widest
from ..array.types import Array
from ..array.validation import BOOLEAN, COUNT, FRACTION, Checked, Rule
from . import threefry
from .init import glorot_uniform, torch_default
from .layer import Context, Grads, Layer


class MultiHeadAttention(Checked, Layer):
    """(N, T, embed_dim) -> (N, T, embed_dim): self-attention with ``num_heads`` heads of embed_dim / num_heads."""

    keyed = True
    constraints: ClassVar[dict[str, Rule]] = {"embed_dim": COUNT, "num_heads": COUNT, "causal": BOOLEAN,
                                              "dropout": FRACTION, "bias": BOOLEAN}

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0,
                 bias: bool = True) -> None:
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.causal, self.dropout, self.bias = causal, dropout, bias

    def _relations(self, changed: str) -> None:
        e, h = getattr(self, "embed_dim", None), getattr(self, "num_heads", None)
        if e is not None and h is not None and e % h:
            raise ValueError(f"MultiHeadAttention: embed_dim ({e}) must be divisible by num_heads ({h})")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        e = self.embed_dim
        shapes = {"in_proj_weight": (3 * e, e), "in_proj_bias": (3 * e,), "out_proj_weight": (e, e),
                  "out_proj_bias": (e,)}
        return shapes if self.bias else {k: v for k, v in shapes.items() if k.endswith("weight")}

    def init(self, rng: Any) -> dict[str, Any]:
        """in_proj_weight xavier_uniform, then out_proj_weight U(-1/sqrt(E), 1/sqrt(E)); biases zeros (not drawn)."""
        shapes = self.param_shapes()
        weights = {"in_proj_weight": glorot_uniform(rng, shapes["in_proj_weight"]),
                   "out_proj_weight": torch_default(rng, shapes["out_proj_weight"])}
        return {k: weights[k] if k in weights else host_random.zeros(shape) for k, shape in shapes.items()}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) != 3 or shape[2] != self.embed_dim or shape[1] < 1:
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, time >= 1, {self.embed_dim}), got "
                             f"shape {tuple(shape)}")
        return tuple(shape)

    def _heads(self, a: Array, xp: Any) -> Array:
        """(N, T, E) -> (N, heads, T, d)."""
        n, t, _ = a.shape
        return xp.permute_dims(xp.reshape(a, (n, t, self.num_heads, -1)), (0, 2, 1, 3))

    def _merge(self, a: Array, xp: Any) -> Array:
        """(N, heads, T, d) -> (N, T, E)."""
        n, _, t, _ = a.shape
        return xp.reshape(xp.permute_dims(a, (0, 2, 1, 3)), (n, t, self.embed_dim))

    def _keep(self, n: int, t: int, dtype: Any, ctx: Context) -> Array | None:
        """The scaled keep-mask (N, heads, T, T) of attention dropout, or None when nothing is dropped."""
        if not ctx.training or ctx.key is None or self.dropout == 0.0:
            return None
        rows = ctx.rows
        shape = (n if rows is None else rows[2], self.num_heads, t, t)
        seed, layer, epoch, batch = ctx.key  # (model seed, layer index, epoch, batch)
        k = threefry.key(seed, layer, epoch, batch, xp=ctx.xp, device=ctx.device)
        kept = threefry.keep(k, shape, self.dropout, ctx.xp, ctx.device, None if rows is None else rows[:2])
        return ctx.xp.astype(kept, dtype) * (1.0 / (1.0 - self.dropout))

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp, e = ctx.xp, self.embed_dim
        n, t, _ = x.shape
        scale = 1.0 / math.sqrt(e // self.num_heads)
        qkv = x @ params["in_proj_weight"].mT
        qkv = qkv + params["in_proj_bias"] if self.bias else qkv
        q, k, v = (self._heads(qkv[:, :, i * e:(i + 1) * e], xp) for i in range(3))
        scores = (q @ k.mT) * scale  # (N, heads, T, T)
        if self.causal:  # step i sees steps j <= i
            steps = xp.arange(t, dtype=widest(xp, "int64", xp.int32), device=ctx.device)
            scores = xp.where(steps[:, None] >= steps[None, :], scores, -math.inf)
        z = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True))
        p = z / xp.sum(z, axis=-1, keepdims=True)
        keep = self._keep(n, t, p.dtype, ctx)
        pd = p if keep is None else p * keep
        heads = self._merge(pd @ v, xp)  # (N, T, E)
        y = heads @ params["out_proj_weight"].mT
        return (y + params["out_proj_bias"] if self.bias else y), (x, q, k, v, p, keep, heads)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, e = ctx.xp, self.embed_dim
        x, q, k, v, p, keep, heads = saved
        scale = 1.0 / math.sqrt(e // self.num_heads)
        dy2 = xp.reshape(dy, (-1, e))
        grads = {"out_proj_weight": dy2.mT @ xp.reshape(heads, (-1, e))}
        if self.bias:
            grads["out_proj_bias"] = xp.sum(dy2, axis=0)
        dheads = self._heads(dy @ params["out_proj_weight"], xp)  # (N, heads, T, d)
        pd = p if keep is None else p * keep
        dv = pd.mT @ dheads
        dp = dheads @ v.mT
        dp = dp if keep is None else dp * keep
        ds = p * (dp - xp.sum(dp * p, axis=-1, keepdims=True)) * scale  # softmax's Jacobian-vector product
        dq, dk = ds @ k, ds.mT @ q
        dqkv = xp.concat([self._merge(dq, xp), self._merge(dk, xp), self._merge(dv, xp)], axis=2)  # (N, T, 3E)
        dqkv2 = xp.reshape(dqkv, (-1, 3 * e))
        grads["in_proj_weight"] = dqkv2.mT @ xp.reshape(x, (-1, e))
        if self.bias:
            grads["in_proj_bias"] = xp.sum(dqkv2, axis=0)
        grads = {name: grads[name] for name in self.param_shapes()}
        return (dqkv @ params["in_proj_weight"] if ctx.need_dx else None), grads

    def config(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "causal": self.causal,
                "dropout": self.dropout, "bias": self.bias}
