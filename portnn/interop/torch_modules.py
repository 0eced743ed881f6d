"""portnn models as torch.nn modules and back, through one table: ``CONVERTERS`` holds one ``Converter`` per portnn
layer type (the torch module that computes it, how each is built from the other's settings, portnn's parameter and
state names against torch's state_dict keys, the tensors torch keeps transposed, the torch buffers portnn does not
keep), and ``to_torch``/``from_torch`` walk it, one each way. A new layer is one entry.

``to_torch`` gives a ``torch.nn.Sequential`` computing ``Sequential.predict``; ``from_torch`` the inverse. The layer
pairs (see the table): Dense <-> Linear (weight transposed: portnn keeps (in, out), torch (out, in)); Conv1D/2D,
MaxPool2D/AvgPool2D (no padding, so count_include_pad never matters), BatchNorm1d/2d, LayerNorm, Flatten, Dropout,
the activations (GELU: approximate='tanh'; Softmax: the last axis) <-> their nn namesakes; GlobalAvgPool1D/2D <->
AdaptiveAvgPool1d/2d(1) followed by Flatten() (a Sequential of the two); Embedding <-> nn.Embedding. The others
become this package's small torch modules, named after the layer (``torch_layers``, re-exported here): Residual (an
nn.Sequential of its body, forward x + body(x)), PositionalEmbedding, GRU and LSTM (nn.GRU/nn.LSTM, batch_first,
one layer, returning what portnn returns: the sequence or the last hidden state), MultiHeadAttention
(nn.MultiheadAttention as self-attention, causal by an attn_mask), LastStep and GlobalAvgPoolTime.

Keys are portnn's with the layer's renames ('2.weight_ih' <-> '2.weight_ih_l0', '3.out_proj_weight' <->
'3.out_proj.weight'); a residual block's inner keys read '4.1.running_mean' on both sides, because torch's Residual
*is* the Sequential of its body. torch's BatchNorm adds 'num_batches_tracked', which portnn does not keep:
``to_torch`` sets it to 0 (torch reads it only when momentum is None, a cumulative average portnn does not offer)
and ``from_torch`` ignores it. Values are equal but for the transposed ones.

``from_torch`` splices plain nn.Sequential children in place, and checks a Softmax's axis against the rank it can
infer (a first Linear is read as taking (N, features) rows, a first Embedding (N, T) ids, portnn's conventions).
torch is imported inside the functions, so portnn imports without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn as pnn
from ..array import tree
from ..array.placement import has_values
from ..nn.layer import Layer
from ..nn.recurrent import NAMES as RECURRENT_NAMES
from ..train.model import Sequential

if TYPE_CHECKING:
    import torch

__all__ = ["CONVERTERS", "Converter", "from_torch", "to_torch"]

_DTYPES = ("float32", "float64")


def _import_torch(where: str) -> Any:
    """The torch package, or ImportError with the install hint (portnn itself never needs it)."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{where} needs PyTorch, which is not installed: pip install torch") from err
    return torch


def _torch_layers(where: str) -> Any:
    """This package's torch modules (``torch_layers``), imported once torch is known to be there."""
    _import_torch(where)
    from . import torch_layers
    return torch_layers


def __getattr__(name: str) -> Any:
    """``torch_modules.Residual``, ``torch_modules.GRU``, ...: the torch classes, imported on first access."""
    if name in {c.module for c in _TABLE if not c.module.startswith("nn.")}:
        return getattr(_torch_layers(f"{__name__}.{name}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dtype_name(dtype: Any, where: str) -> str:
    """'float32' or 'float64' from a name or a torch dtype; ValueError otherwise (portnn computes in these)."""
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"{where}: dtype must be 'float32' or 'float64' (or the torch dtype), got {dtype!r}")
    return name


# ---- the table ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """A torch module being read: its path, its input's rank when known, the module after it (``follower``), and
    the portnn layers read from its children (a Residual's)."""

    module: Any
    path: str
    rank: int | None
    follower: Any = None
    inner: tuple[Layer, ...] = ()

    def need(self, ok: Any, setting: str, why: str) -> None:
        """ValueError naming the module and the setting portnn cannot reproduce exactly, unless ``ok``."""
        if not ok:
            raise ValueError(f"from_torch: module {self.path or '<root>'} ({self.module!r}): {setting} is not "
                             f"supported ({why})")


def _same_rank(_: Any, rank: int | None) -> int | None:
    return rank


def _fixed_rank(rank: int) -> Callable[[Any, int | None], int]:
    return lambda _m, _r: rank


@dataclass(frozen=True)
class Converter:
    """How one portnn layer type and one torch module type map onto each other (exact types both ways: a subclass
    may compute something else)."""

    layer: type[Layer]
    module: str  # the torch class: 'nn.Linear', or one of ``torch_layers``' ('GRU')
    build: Callable[[Any, Any], Any]  # (layer, torch_layers) -> the torch module (torch.nn is torch_layers.nn)
    read: Callable[[Source], dict[str, Any]]  # the torch module's settings as the layer's arguments
    keys: Mapping[str, str] = field(default_factory=dict)  # portnn name -> torch state_dict key, where they differ
    transposed: frozenset[str] = frozenset()  # portnn names whose torch tensor is the transpose
    extra: tuple[str, ...] = ()  # torch counters portnn does not keep: 0 in torch, ignored when read back
    rank: Callable[[Any, int | None], int | None] = _same_rank  # (torch module, input rank) -> output rank
    follower: str | None = None  # a torch module that must follow this one (Flatten after adaptive pooling)
    make: Callable[..., Layer] | None = None  # builds the layer from ``read``'s arguments (default: its class)

    def name(self) -> str:
        """The torch class as users write it: 'nn.Linear', 'torch_modules.GRU'."""
        name = self.module if self.module.startswith("nn.") else f"torch_modules.{self.module}"
        return name if self.follower is None else f"{name}(1) followed by {self.follower}()"


def _plain(layer: type[Layer], module: str) -> Converter:
    """A layer without settings or tensors."""
    return Converter(layer, module, lambda _, t: attrgetter(module)(t)(), lambda _: {})


def _ints(value: Any, count: int) -> tuple[int, ...]:
    """A torch size argument (int or tuple) as a tuple of ``count`` ints."""
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),) * count


def _conv(s: Source, dims: int) -> dict[str, Any]:
    """Conv1d/Conv2d settings portnn has; ValueError naming any other."""
    m = s.module
    kernel = _ints(m.kernel_size, dims)
    s.need(_ints(m.dilation, dims) == (1,) * dims, f"dilation={m.dilation}", "portnn convolutions have no dilation")
    s.need(m.groups == 1, f"groups={m.groups}", "portnn convolutions are dense (groups=1)")
    s.need(m.padding_mode == "zeros", f"padding_mode={m.padding_mode!r}", "portnn pads with zeros only")
    s.need(m.padding != "same" or all(k % 2 for k in kernel), "padding='same' with an even kernel",
           "torch pads it unevenly; portnn evenly")
    padding = ((0,) * dims if m.padding == "valid" else tuple((k - 1) // 2 for k in kernel) if m.padding == "same"
               else _ints(m.padding, dims))
    sizes = {"kernel_size": kernel, "stride": _ints(m.stride, dims), "padding": padding}
    return {"in_channels": m.in_channels, "out_channels": m.out_channels, "bias": m.bias is not None,
            **(sizes if dims == 2 else {k: v[0] for k, v in sizes.items()})}


def _pool(s: Source) -> dict[str, Any]:
    """MaxPool2d/AvgPool2d without padding, ceil mode, dilation or indices; ValueError naming any other."""
    m = s.module
    dilation = getattr(m, "dilation", 1)
    s.need(_ints(m.padding, 2) == (0, 0), f"padding={m.padding}", "portnn pools without padding")
    s.need(not m.ceil_mode, "ceil_mode=True", "portnn's output size rounds down")
    s.need(_ints(dilation, 2) == (1, 1), f"dilation={dilation}", "portnn pools have no dilation")
    s.need(not getattr(m, "return_indices", False), "return_indices=True", "a portnn layer returns one array")
    s.need(getattr(m, "divisor_override", None) is None, f"divisor_override={getattr(m, 'divisor_override', None)}",
           "portnn divides by the window size")
    kernel = _ints(m.kernel_size, 2)
    return {"kernel_size": kernel, "stride": kernel if m.stride is None else _ints(m.stride, 2)}


def _global_pool(s: Source, dims: int) -> dict[str, Any]:
    """AdaptiveAvgPool1d/2d(1) followed by Flatten(1, -1); ValueError otherwise."""
    f, size = s.follower, s.module.output_size
    s.need(f is not None and (f.start_dim, f.end_dim) == (1, -1) and isinstance(size, int | tuple | list)
           and _ints(size, dims) == (1,) * dims, "adaptive pooling not followed by Flatten() or to a size other than 1",
           "portnn's global pools are AdaptiveAvgPool1d/2d(1) then Flatten()")
    return {}


def _norm(s: Source) -> dict[str, Any]:
    """BatchNorm1d/2d with running statistics and a momentum; ValueError naming any other setting."""
    m = s.module
    s.need(m.track_running_stats and m.running_mean is not None, "track_running_stats=False",
           "portnn's inference uses running statistics")
    s.need(not m.affine or m.bias is not None, "bias=False", "portnn's BatchNorm has a weight and a bias, or neither")
    s.need(m.momentum is not None, "momentum=None", "portnn keeps an exponential average with a momentum in (0, 1]")
    return {"features": m.num_features, "eps": m.eps, "momentum": m.momentum, "affine": bool(m.affine)}


def _layer_norm(s: Source) -> dict[str, Any]:
    m = s.module
    s.need(not m.elementwise_affine or m.bias is not None, "bias=False",
           "portnn's LayerNorm has a weight and a bias, or neither")
    shape = [int(d) for d in m.normalized_shape]
    return {"features": shape[0] if len(shape) == 1 else shape, "eps": m.eps, "affine": bool(m.elementwise_affine)}


def _softmax(s: Source) -> dict[str, Any]:
    dim, rank = s.module.dim, s.rank
    last = dim == -1 or (rank is not None and dim == rank - 1) or (dim is None and rank == 2)
    s.need(last, f"dim={dim}" + ("" if rank is None else f" on rank-{rank} input"),
           "portnn's Softmax is over the last axis (dim=-1)")
    return {}


def _gelu(s: Source) -> dict[str, Any]:
    s.need(s.module.approximate == "tanh", f"approximate={s.module.approximate!r}",
           "portnn's GELU is the tanh form: the exact one needs erf, which the Array API lacks")
    return {}


def _flatten(s: Source) -> dict[str, Any]:
    m = s.module
    s.need((m.start_dim, m.end_dim) == (1, -1), f"start_dim={m.start_dim}, end_dim={m.end_dim}",
           "portnn flattens (1, -1)")
    return {}


def _embedding(s: Source) -> dict[str, Any]:
    m = s.module
    s.need(m.padding_idx is None, f"padding_idx={m.padding_idx}", "portnn trains every row")
    s.need(m.max_norm is None, f"max_norm={m.max_norm}", "portnn's rows are not renormalised")
    s.need(not m.scale_grad_by_freq, "scale_grad_by_freq=True", "portnn's gradient sums every occurrence")
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}


def _recurrent(s: Source) -> dict[str, Any]:
    m = s.module
    s.need(m.num_layers == 1, f"num_layers={m.num_layers}", "a portnn GRU/LSTM is one layer: stack them")
    s.need(m.batch_first, "batch_first=False", "portnn's sequences are (N, T, features)")
    s.need(m.bias, "bias=False", "portnn's GRU/LSTM have biases")
    projection = getattr(m, "proj_size", 0)
    s.need(projection == 0, f"proj_size={projection}", "portnn's LSTM has no projection")
    return {"input_size": m.input_size, "hidden_size": m.hidden_size, "return_sequences": bool(m.return_sequences),
            "bidirectional": bool(m.bidirectional)}


def _attention(s: Source) -> dict[str, Any]:
    m = s.module
    s.need(m._qkv_same_embed_dim, f"kdim={m.kdim}, vdim={m.vdim}", "portnn's attention is self-attention")
    s.need(m.bias_k is None, "add_bias_kv=True", "portnn's keys and values have no extra bias step")
    s.need(not m.add_zero_attn, "add_zero_attn=True", "portnn attends to the sequence only")
    s.need(m.batch_first, "batch_first=False", "portnn's sequences are (N, T, E)")
    return {"embed_dim": m.embed_dim, "num_heads": m.num_heads, "causal": bool(m.causal), "dropout": m.dropout,
            "bias": m.in_proj_bias is not None}


_RECURRENT_KEYS = {name + s: f"{name}_l0{s}" for name in RECURRENT_NAMES for s in ("", "_reverse")}
_ATTENTION_KEYS = {"out_proj_weight": "out_proj.weight", "out_proj_bias": "out_proj.bias"}


def _conv_module(c: Any, t: Any) -> Any:
    make = t.nn.Conv1d if isinstance(c, pnn.Conv1D) else t.nn.Conv2d
    return make(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride, padding=c.padding, bias=c.bias)


def _recurrent_module(r: Any, t: Any) -> Any:
    make = t.GRU if isinstance(r, pnn.GRU) else t.LSTM
    return make(r.input_size, r.hidden_size, bidirectional=r.bidirectional, return_sequences=r.return_sequences)


def _torch_module(layer: Layer, t: Any) -> Any:
    """The torch module computing ``layer`` (a supported one: see ``_converter``)."""
    return CONVERTERS[type(layer)].build(layer, t)


_TABLE = (
    Converter(pnn.Dense, "nn.Linear", lambda d, t: t.nn.Linear(d.in_features, d.out_features, bias=d.bias),
              lambda s: {"in_features": s.module.in_features, "out_features": s.module.out_features,
                         "bias": s.module.bias is not None},
              transposed=frozenset({"weight"}), rank=lambda _, r: 2 if r is None else r),
    Converter(pnn.Conv2D, "nn.Conv2d", _conv_module, lambda s: _conv(s, 2), rank=_fixed_rank(4)),
    Converter(pnn.Conv1D, "nn.Conv1d", _conv_module, lambda s: _conv(s, 1), rank=_fixed_rank(3)),
    # no padding, so torch's count_include_pad cannot change a window's divisor
    Converter(pnn.MaxPool2D, "nn.MaxPool2d", lambda p, t: t.nn.MaxPool2d(p.kernel_size, p.stride), _pool,
              rank=_fixed_rank(4)),
    Converter(pnn.AvgPool2D, "nn.AvgPool2d", lambda p, t: t.nn.AvgPool2d(p.kernel_size, p.stride), _pool,
              rank=_fixed_rank(4)),
    Converter(pnn.GlobalAvgPool1D, "nn.AdaptiveAvgPool1d",
              lambda _, t: t.nn.Sequential(t.nn.AdaptiveAvgPool1d(1), t.nn.Flatten()), lambda s: _global_pool(s, 1),
              rank=_fixed_rank(2), follower="nn.Flatten"),
    Converter(pnn.GlobalAvgPool2D, "nn.AdaptiveAvgPool2d",
              lambda _, t: t.nn.Sequential(t.nn.AdaptiveAvgPool2d(1), t.nn.Flatten()), lambda s: _global_pool(s, 2),
              rank=_fixed_rank(2), follower="nn.Flatten"),
    Converter(pnn.Flatten, "nn.Flatten", lambda _, t: t.nn.Flatten(), _flatten, rank=_fixed_rank(2)),
    Converter(pnn.Dropout, "nn.Dropout", lambda d, t: t.nn.Dropout(d.p), lambda s: {"p": s.module.p}),
    _plain(pnn.Sigmoid, "nn.Sigmoid"), _plain(pnn.Tanh, "nn.Tanh"), _plain(pnn.ReLU, "nn.ReLU"),
    _plain(pnn.Identity, "nn.Identity"), _plain(pnn.SiLU, "nn.SiLU"),
    Converter(pnn.LeakyReLU, "nn.LeakyReLU", lambda a, t: t.nn.LeakyReLU(a.alpha),
              lambda s: {"alpha": s.module.negative_slope}),
    Converter(pnn.ELU, "nn.ELU", lambda a, t: t.nn.ELU(a.alpha), lambda s: {"alpha": s.module.alpha}),
    Converter(pnn.Softplus, "nn.Softplus", lambda a, t: t.nn.Softplus(a.beta, a.threshold),
              lambda s: {"beta": s.module.beta, "threshold": s.module.threshold}),
    Converter(pnn.Softmax, "nn.Softmax", lambda _, t: t.nn.Softmax(dim=-1), _softmax),
    Converter(pnn.GELU, "nn.GELU", lambda _, t: t.nn.GELU(approximate="tanh"), _gelu),
    Converter(pnn.BatchNorm1d, "nn.BatchNorm1d",
              lambda b, t: t.nn.BatchNorm1d(b.features, eps=b.eps, momentum=b.momentum, affine=b.affine), _norm,
              extra=("num_batches_tracked",)),
    Converter(pnn.BatchNorm2d, "nn.BatchNorm2d",
              lambda b, t: t.nn.BatchNorm2d(b.features, eps=b.eps, momentum=b.momentum, affine=b.affine), _norm,
              extra=("num_batches_tracked",), rank=_fixed_rank(4)),
    Converter(pnn.LayerNorm, "nn.LayerNorm",
              lambda n, t: t.nn.LayerNorm(list(n.shape), eps=n.eps, elementwise_affine=n.affine), _layer_norm),
    Converter(pnn.Residual, "Residual", lambda r, t: t.Residual(*(_torch_module(inner, t) for inner in r.layers)),
              lambda s: {"layers": s.inner}, make=lambda layers: pnn.Residual(*layers)),
    Converter(pnn.Embedding, "nn.Embedding", lambda e, t: t.nn.Embedding(e.num_embeddings, e.embedding_dim),
              _embedding, rank=lambda _, r: 3 if r is None else r + 1),
    Converter(pnn.PositionalEmbedding, "PositionalEmbedding",
              lambda p, t: t.PositionalEmbedding(p.max_length, p.dim, std=p.std),
              lambda s: {"max_length": s.module.max_length, "dim": s.module.dim, "std": s.module.std},
              rank=_fixed_rank(3)),
    Converter(pnn.GRU, "GRU", _recurrent_module, _recurrent, keys=_RECURRENT_KEYS,
              rank=lambda m, _: 3 if m.return_sequences else 2),
    Converter(pnn.LSTM, "LSTM", _recurrent_module, _recurrent, keys=_RECURRENT_KEYS,
              rank=lambda m, _: 3 if m.return_sequences else 2),
    Converter(pnn.MultiHeadAttention, "MultiHeadAttention",
              lambda a, t: t.MultiHeadAttention(a.embed_dim, a.num_heads, causal=a.causal, dropout=a.dropout,
                                                bias=a.bias),
              _attention, keys=_ATTENTION_KEYS, rank=_fixed_rank(3)),
    _plain(pnn.LastStep, "LastStep"),
    _plain(pnn.GlobalAvgPoolTime, "GlobalAvgPoolTime"),
)
CONVERTERS: dict[type[Layer], Converter] = {c.layer: c for c in _TABLE}


def _keys(layer: Layer) -> dict[str, tuple[str | None, bool]]:
    """{torch key: (portnn name or None for a torch-only counter, transposed)} of one layer's tensors; a residual
    block's inner ones under 'j.' on both sides."""
    if type(layer) is pnn.Residual:
        return {f"{j}.{key}": (None if name is None else f"{j}.{name}", flip)
                for j, inner in enumerate(layer.layers) for key, (name, flip) in _keys(inner).items()}
    c = CONVERTERS[type(layer)]
    names = (*layer.param_shapes(), *layer.state_shapes())
    return {**{c.keys.get(n, n): (n, n in c.transposed) for n in names}, **dict.fromkeys(c.extra, (None, False))}


# ---- portnn -> torch ---------------------------------------------------------------------------------------------

def _nested(layers: tuple[Layer, ...] | list[Layer]) -> list[Any]:
    """The layers as a tree (a residual block: the list of its inner layers), so that tree.items names them '1.0'."""
    return [_nested(layer.layers) if type(layer) is pnn.Residual else layer for layer in layers]


def to_torch(model: Sequential, dtype: Any = None) -> torch.nn.Module:
    """A torch.nn.Sequential in eval() mode, on the CPU, computing ``model.predict`` with a copy of its weights and
    running statistics, as ``dtype`` ('float32'/'float64' or the torch dtype; default: the model's dtype)."""
    torch = _import_torch("to_torch")
    if not isinstance(model, Sequential):
        raise TypeError(f"to_torch: model must be a portnn Sequential, got {type(model).__name__}")
    if dtype is None:
        dtype = model.placement.dtype_name if model.placement is not None else model.dtype or "float64"
    target = getattr(torch, _dtype_name(dtype, "to_torch"))
    for path, layer in tree.items(_nested(model.layers)):  # exact types: a subclass may compute something else
        if type(layer) not in CONVERTERS:
            raise TypeError(f"to_torch: layer {path} ({layer!r}) has no torch equivalent; supported: "
                            f"{', '.join(sorted(t.__name__ for t in CONVERTERS))}")
    t = _torch_layers("to_torch")
    with torch.device("meta"):  # nothing initialised, so torch's global generator is not drawn from
        module = t.nn.Sequential(*(_torch_module(layer, t) for layer in model.layers))
    module = module.to(dtype=target).to_empty(device="cpu")
    state = model.state_dict()

    def tensor(name: str | None, flip: bool) -> Any:
        if name is None:  # a counter portnn does not keep; torch reads it only when momentum is None
            return torch.zeros((), dtype=torch.long)
        return torch.from_numpy(np.ascontiguousarray(state[name].T if flip else state[name])).to(target)

    module.load_state_dict({f"{i}.{key}": tensor(None if name is None else f"{i}.{name}", flip)
                            for i, layer in enumerate(model.layers) for key, (name, flip) in _keys(layer).items()},
                           strict=True)  # every parameter and buffer is overwritten: none stays empty
    return module.eval()


# ---- torch -> portnn ---------------------------------------------------------------------------------------------

def _children(module: Any, path: str, t: Any) -> list[tuple[str, Any]]:
    """(path, module) of a module's children, nested plain nn.Sequentials spliced in (a residual block's body)."""
    return [entry for name, child in module.named_children()
            for entry in _flat(child, f"{path}.{name}" if path else name, t)]


def _flat(module: Any, path: str, t: Any) -> list[tuple[str, Any]]:
    """A plain nn.Sequential's children, spliced in; any other module as it is."""
    return _children(module, path, t) if type(module) is t.nn.Sequential else [(path, module)]


@cache
def _by_module(t: Any) -> dict[type, Converter]:
    return {attrgetter(c.module)(t): c for c in _TABLE}


def _converter(path: str, m: Any, t: Any) -> Converter:
    """The table entry of torch module ``m``; TypeError naming it when there is none."""
    found = _by_module(t).get(type(m))
    if found is not None:
        return found
    kind = type(m)
    wraps = {cls.__bases__[0]: cls for cls in (t.GRU, t.LSTM, t.MultiHeadAttention)}
    hint = (f"; torch_modules.{wraps[kind].__name__} computes it as a layer (load this module's state_dict into one)"
            if kind in wraps else "")
    raise TypeError(f"from_torch: module {path or '<root>'} ({kind.__module__}.{kind.__qualname__}) has no portnn "
                    f"equivalent{hint}; supported: {', '.join(sorted(c.name() for c in _TABLE))}, and nn.Sequential "
                    "(its children spliced in)")


def _read(entries: list[tuple[str, Any]], k: int, rank: int | None, t: Any) -> tuple[Layer, Any, int | None, int]:
    """(portnn layer, its tensors by portnn name, output rank, modules used) of entries[k] (and its follower)."""
    path, m = entries[k]
    c = _converter(path, m, t)
    nested = c.layer is pnn.Residual
    follower = None
    if c.follower is not None and k + 1 < len(entries) and type(entries[k + 1][1]) is attrgetter(c.follower)(t):
        follower = entries[k + 1][1]
    arrays: Any
    inner, arrays = _read_all(_children(m, path, t), rank, t) if nested else ([], None)
    source = Source(m, path, rank, follower, tuple(inner))
    args = c.read(source)
    try:  # portnn's own checks of the settings (LeakyReLU's alpha, ...), with the module named
        layer = (c.make or c.layer)(**args)
    except (TypeError, ValueError) as err:
        raise ValueError(f"from_torch: module {path or '<root>'} ({m!r}): {err}") from err
    if not nested:
        tensors = m.state_dict()
        keys = _keys(layer)
        source.need(set(tensors) == set(keys), f"tensors {sorted(set(tensors) ^ set(keys))}",
                    f"portnn's {type(layer).__name__} holds {sorted(keys)}")
        arrays = {name: tensors[key].T if flip else tensors[key] for key, (name, flip) in keys.items() if name}
    return layer, arrays, c.rank(m, rank), 1 if follower is None else 2


def _read_all(entries: list[tuple[str, Any]], rank: int | None, t: Any) -> tuple[list[Layer], list[Any]]:
    """(layers, their tensor trees) of a flat list of (path, torch module)."""
    layers, arrays, k = [], [], 0
    while k < len(entries):
        layer, tensors, rank, used = _read(entries, k, rank, t)
        layers.append(layer)
        arrays.append(tensors)
        k += used
    return layers, arrays


def _module_dtype(tensors: list[Any]) -> str | None:
    """The one float dtype of the module's tensors ('float32'/'float64'), None when it has none; ValueError else."""
    found = {str(a.dtype).removeprefix("torch.") for a in tensors}
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"from_torch: the module mixes dtypes {sorted(found)}; pass dtype='float32' or 'float64'")
    (name,) = found
    if name not in _DTYPES:
        raise ValueError(f"from_torch: the module holds {name} tensors; portnn computes in float32 or float64: pass "
                         "dtype='float32' or 'float64'")
    return name


def from_torch(module: torch.nn.Module, seed: int = 0, dtype: Any = None) -> Sequential:
    """A portnn Sequential computing what ``module`` computes in eval() mode (running statistics, no dropout), with
    copies of its weights (nothing drawn) as ``dtype`` (default: the module's float dtype); ``seed`` keys dropout
    and shuffles of later training."""
    torch = _import_torch("from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module, got {type(module).__name__}")
    for key, value in module.state_dict().items():
        has_values(value, f"{key!r}", "from_torch", "materialise the module first (module.to_empty(device='cpu'), "
                   "then load its weights)")
    t = _torch_layers("from_torch")
    layers, arrays = _read_all(_flat(module, "", t), None, t)
    name = _module_dtype(tree.leaves(arrays)) if dtype is None else _dtype_name(dtype, "from_torch")
    target = getattr(torch, name or "float64")
    # copies on the host: the portnn model never shares memory with the torch parameters
    state = {key: a.detach().to(device="cpu", dtype=target, copy=True).contiguous().numpy()
             for key, a in tree.flatten(arrays).items()}
    return Sequential.from_state_dict(*layers, state=state, seed=seed, dtype=name)
