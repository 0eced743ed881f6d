"""Token embedding as torch.nn.Embedding: integer ids of any shape (N, ...) -> their rows of a (V, D) table,
(N, ..., D). The weight gradient sums the output gradients of every occurrence of an id, repeated ids included, as
a one-hot product onehot(ids, V)^T @ dY in the model's float dtype: exact, standard-only (scatter-add is not in the
standard, and array_api_extra's ``at(...).add`` does not accumulate repeated indices), O(ids * V * D) work, which
suits vocabularies of up to a few thousand tokens. The ids have no gradient (``backward`` gives dx None).

Ids outside [0, V) are refused by ``check_input`` (one host read of their range, run once per fit/predict before
any work); ``forward`` does no host read and, called with such ids anyway, gives what the backend's ``take`` gives
(an IndexError on NumPy, a clamped row on JAX, a wrapped row for negative ids on NumPy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_extra as xpx

from ..array import host
from ..array.placement import dtype_label
from ..array.types import Array, Namespace
from ..array.validation import COUNT, Checked, Rule
from .layer import Context, Grads, Layer


class Embedding(Checked, Layer):
    """Integer ids (N, ...) -> rows of ``weight`` (num_embeddings, embedding_dim): (N, ..., embedding_dim)."""

    constraints: ClassVar[dict[str, Rule]] = {"num_embeddings": COUNT, "embedding_dim": COUNT}
    integer_input = True

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def init(self, rng: Any) -> dict[str, Any]:
        """N(0, 1), torch's default, drawn on the host."""
        return {"weight": rng.standard_normal((self.num_embeddings, self.embedding_dim))}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) < 1:
            raise ValueError(f"{where} ({self!r}) expects integer ids of shape (batch, ...), got shape {tuple(shape)}")
        return (*shape, self.embedding_dim)

    def _integers(self, ids: Array, xp: Namespace, where: str) -> None:
        if not xp.isdtype(ids.dtype, "integral"):
            raise TypeError(f"{where} ({self!r}) expects integer token ids, got dtype {dtype_label(ids.dtype)} (shape "
                            f"{tuple(ids.shape)}); pass the ids as integers, not floats")

    def check_input(self, x: Array, xp: Namespace, where: str) -> None:
        """TypeError unless the ids are integers; ValueError naming the first bad id unless all lie in [0, V)."""
        self._integers(x, xp, where)
        if 0 in tuple(x.shape):
            return
        low, high = (int(v) for v in host.to_numpy(xp.stack([xp.min(x), xp.max(x)])))  # one read of the range
        if low < 0 or high >= self.num_embeddings:
            bad = low if low < 0 else high
            raise ValueError(f"{where} ({self!r}): token ids must lie in [0, {self.num_embeddings}), got id {bad} "
                             f"(ids range from {low} to {high})")

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        self._integers(x, xp, "Embedding.forward")  # a static dtype check: no host read
        flat = xp.reshape(x, (-1,))
        y = xp.take(params["weight"], flat, axis=0)
        return xp.reshape(y, (*x.shape, self.embedding_dim)), flat

    def backward(self, params: dict[str, Array], flat: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp = ctx.xp
        onehot = xpx.one_hot(flat, self.num_embeddings, dtype=dy.dtype, xp=xp)  # (ids, V)
        return None, {"weight": onehot.mT @ xp.reshape(dy, (-1, self.embedding_dim))}

    def config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}
