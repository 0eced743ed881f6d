"""AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, as ``torch.optim.AdamW``.

Each step first shrinks every decayed parameter, p <- p * (1 - lr * weight_decay), then takes portnn's Adam step
(no L2 term; the same moments and bias corrections). Which parameters decay is a list of name patterns (fnmatch,
case-sensitive) over 'LayerType.parameter' names, e.g. 'Dense.weight' or 'GRU.weight_*'; a parameter inside a nested
layer (Residual's 'j.name') is named by its inner layer's type. The default decays the weights of linear maps
(Dense, convolutions, recurrent and attention layers) and not biases, normalisation parameters or embeddings, as
minGPT's configure_optimizers; ``decay=['*']`` decays everything (torch's AdamW with one parameter group). The
patterns are JSON, so they survive in ``config()`` and checkpoints. The optimizer sees only parameter trees, so the
trainer tells it the model's layers once per fit with ``bind(layers)`` before any ``update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, ClassVar

import array_api_compat

from ..array.types import Device, Namespace, Params
from ..array.validation import FRACTION, NON_NEGATIVE, POSITIVE, Instance, Items, Pair, Rule
from .adam import Adam, adam_step
from .optimizer import Optimizer, OptState

# the weights of linear maps; not biases, LayerNorm/BatchNorm, Embedding or PositionalEmbedding
DECAYED = ("Dense.weight", "Conv1D.weight", "Conv2D.weight", "GRU.weight_*", "LSTM.weight_*",
           "MultiHeadAttention.in_proj_weight", "MultiHeadAttention.out_proj_weight")


def qualified(layer: Any, name: str) -> str:
    """'LayerType.parameter' of parameter ``name`` of ``layer``; inside a nested layer (Residual: 'j.name'), the
    inner layer's type and name."""
    if getattr(layer, "nested", False):
        j, _, inner = name.partition(".")
        return qualified(layer.layers[int(j)], inner)
    return f"{type(layer).__name__}.{name}"


class AdamW(Optimizer):
    """p <- p (1 - lr wd) for parameters matching ``decay``; then Adam's step (see the module docstring)."""

    constraints: ClassVar[dict[str, Rule]] = {
        "lr": POSITIVE, "betas": Pair(FRACTION, "a pair (beta1, beta2)"), "eps": POSITIVE, "weight_decay": NON_NEGATIVE,
        "decay": Items(Instance(str, "a 'LayerType.parameter' name pattern")),
    }

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decay: Sequence[str] = DECAYED) -> None:
        self.lr, self.betas, self.eps, self.weight_decay, self.decay = lr, betas, eps, weight_decay, decay
        self._names: tuple[dict[str, str], ...] | None = None  # per layer: parameter -> 'LayerType.parameter'
        self._decayed_names: tuple[dict[str, bool], ...] = ()  # per layer: parameter -> decayed (``decay``'s match)

    def bind(self, layers: Sequence[Any]) -> AdamW:
        """Name every parameter of ``layers`` by its layer type and match the ``decay`` patterns once, here: the
        update itself then only reads a table (a compiler traces it without fnmatch)."""
        self._names = tuple({n: qualified(layer, n) for n in layer.param_shapes()} for layer in layers)
        self._match()
        return self

    def _relations(self, changed: str) -> None:
        if changed == "decay":  # new patterns: match them against the bound layers again
            self._match()

    def _match(self) -> None:
        names = getattr(self, "_names", None)
        self._decayed_names = () if names is None else tuple({n: self.decays(q) for n, q in layer.items()}
                                                             for layer in names)

    def decays(self, qualified_name: str) -> bool:
        """Whether the parameter called ``qualified_name`` ('Dense.weight') is decayed."""
        return any(fnmatchcase(qualified_name, pattern) for pattern in self.decay)

    def slot_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return Adam().slot_names()

    def init_state(self, params: Params, xp: Namespace, device: Device) -> OptState:
        return Adam().init_state(params, xp, device)

    def _decayed(self, params: Params, lr: Any) -> Params:
        """``params`` with every decayed parameter scaled by 1 - lr * weight_decay (in its dtype)."""
        names = self._names
        if names is None:
            raise RuntimeError("AdamW.update: which parameters decay depends on their layers; call "
                               "bind(model layers) first (fit does)")
        if len(names) != len(params) or any(not layer.keys() <= n.keys() for layer, n in zip(params, names,
                                                                                                strict=False)):
            raise ValueError(f"AdamW.update: params ({[sorted(layer) for layer in params]}) do not belong to the "
                             f"layers it was bound to ({[sorted(n) for n in names]}); call bind(layers) again")
        first = next((p for layer in params for p in layer.values()), None)
        if first is None or self.weight_decay == 0.0:
            return params
        factor = 1.0 - lr * self.weight_decay
        if type(factor) is not float:  # from a schedule's 0-d float64 rate (NumPy: a float64 scalar, which would
            xp = array_api_compat.array_namespace(first)  # promote float32): rounded once to the parameters' dtype
            factor = xp.astype(factor, first.dtype)
        return [{n: p * factor if decayed[n] else p for n, p in layer.items()}
                for layer, decayed in zip(params, self._decayed_names, strict=True)]

    def _update(self, params: Params, grads: Params, state: OptState, lr: Any) -> tuple[Params, OptState]:
        return adam_step(self._decayed(params, lr), grads, state, lr, self.betas, self.eps)

    def config(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "decay": list(self.decay)}
