"""portnn models as torch.nn modules and back: ``to_torch`` builds a ``torch.nn.Sequential`` that computes what
``Sequential.predict`` computes, ``from_torch`` the inverse, for the layers both libraries share exactly.

Layer by layer (portnn -> torch): Dense -> Linear (weight transposed: portnn keeps (in, out), torch (out, in)),
Conv2D/Conv1D -> Conv2d/Conv1d, MaxPool2D/AvgPool2D -> MaxPool2d/AvgPool2d (no padding, so count_include_pad never
matters), GlobalAvgPool1D/2D -> Sequential(AdaptiveAvgPool1d/2d(1), Flatten()), Flatten, Dropout, the activations
(GELU: approximate='tanh'; Softmax: over the last axis), BatchNorm1d/2d, LayerNorm, and Residual -> this module's
``Residual``, a ``torch.nn.Sequential`` whose forward is x + body(x).

State-dict keys are equal on both sides ('3.weight', '4.1.running_mean' inside a residual block), because
``Residual`` *is* the Sequential of its body rather than holding one under a 'body' attribute; only torch's
BatchNorm adds a 'num_batches_tracked' buffer, which portnn does not keep: ``to_torch`` sets it to 0 (torch reads
it only when momentum is None, a cumulative average portnn does not offer) and ``from_torch`` ignores it. Values
are equal except Dense/Linear weights, which are transposed.

torch is imported inside the functions, so portnn imports without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..array.placement import has_values
from ..nn import (
    ELU,
    GELU,
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from ..nn import Residual as _ResidualLayer  # not 'Residual': that name is the torch module below
from ..train.model import Sequential

if TYPE_CHECKING:
    import torch

__all__ = ["from_torch", "to_torch"]

_DTYPES = ("float32", "float64")
_CLASSES: dict[str, type] = {}  # the torch.nn classes of this module, made on first use (they need torch)


def _import_torch(where: str) -> Any:
    """The torch package, or ImportError with the install hint (portnn itself never needs it)."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"{where} needs PyTorch, which is not installed: pip install torch") from err
    return torch


def _classes(torch: Any) -> dict[str, type]:
    """This module's torch.nn classes, defined once torch is imported (importable and picklable by name)."""
    if not _CLASSES:
        class Residual(torch.nn.Sequential):
            """x -> x + body(x), the body being this Sequential's children: keys '0.weight', as portnn's."""

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                """The skip connection around the inner stack (its output shape must equal its input's)."""
                return x + super().forward(x)

        Residual.__module__, Residual.__qualname__ = __name__, "Residual"
        _CLASSES["Residual"] = Residual
    return _CLASSES


def __getattr__(name: str) -> Any:
    """``torch_modules.Residual``: the torch class, made on first access so that importing needs no torch."""
    if name == "Residual":
        return _classes(_import_torch(f"{__name__}.Residual"))["Residual"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dtype_name(dtype: Any, where: str) -> str:
    """'float32' or 'float64' from a name or a torch dtype; ValueError otherwise (portnn computes in these)."""
    name = str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"{where}: dtype must be 'float32' or 'float64' (or the torch dtype), got {dtype!r}")
    return name


# ---- portnn -> torch ------------------------------------------------------------------------------------------

def _pool_args(layer: MaxPool2D | AvgPool2D) -> dict[str, Any]:
    return {"kernel_size": tuple(layer.kernel_size), "stride": tuple(layer.stride)}


def _torch_module(layer: Layer, where: str, torch: Any) -> Any:
    """The torch module computing ``layer`` (weights uninitialised: built on the meta device, loaded later)."""
    nn, kind = torch.nn, type(layer)  # exact types: a subclass may compute something else
    if kind is Dense:
        assert isinstance(layer, Dense)
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if kind is Conv2D:
        assert isinstance(layer, Conv2D)
        return nn.Conv2d(layer.in_channels, layer.out_channels, tuple(layer.kernel_size), stride=tuple(layer.stride),
                         padding=tuple(layer.padding), bias=layer.bias)
    if kind is Conv1D:
        assert isinstance(layer, Conv1D)
        return nn.Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                         padding=layer.padding, bias=layer.bias)
    if kind is MaxPool2D:
        assert isinstance(layer, MaxPool2D)
        return nn.MaxPool2d(**_pool_args(layer))
    if kind is AvgPool2D:  # no padding, so torch's count_include_pad cannot change a window's divisor
        assert isinstance(layer, AvgPool2D)
        return nn.AvgPool2d(**_pool_args(layer))
    if kind is GlobalAvgPool1D:
        return nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())
    if kind is GlobalAvgPool2D:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if kind is BatchNorm1d or kind is BatchNorm2d:
        assert isinstance(layer, BatchNorm1d | BatchNorm2d)
        make = nn.BatchNorm1d if kind is BatchNorm1d else nn.BatchNorm2d
        return make(layer.features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine)
    if kind is LayerNorm:
        assert isinstance(layer, LayerNorm)
        return nn.LayerNorm(list(layer.shape), eps=layer.eps, elementwise_affine=layer.affine)
    if kind is _ResidualLayer:
        assert isinstance(layer, _ResidualLayer)
        return _classes(torch)["Residual"](*[_torch_module(inner, f"{where}.{j}", torch)
                                             for j, inner in enumerate(layer.layers)])
    simple: dict[type, Callable[[Any], Any]] = {  # each from the layer's own settings
        Flatten: lambda _: nn.Flatten(), Sigmoid: lambda _: nn.Sigmoid(), Tanh: lambda _: nn.Tanh(),
        ReLU: lambda _: nn.ReLU(), Identity: lambda _: nn.Identity(), SiLU: lambda _: nn.SiLU(),
        Softmax: lambda _: nn.Softmax(dim=-1), GELU: lambda _: nn.GELU(approximate="tanh"),
        Dropout: lambda d: nn.Dropout(d.p), LeakyReLU: lambda a: nn.LeakyReLU(a.alpha), ELU: lambda a: nn.ELU(a.alpha),
        Softplus: lambda a: nn.Softplus(a.beta, a.threshold),
    }
    if kind in simple:
        return simple[kind](layer)
    raise TypeError(f"to_torch: layer {where} ({layer!r}) has no torch equivalent; supported: "
                    f"{', '.join(sorted(t.__name__ for t in _SUPPORTED_LAYERS))}")


_SUPPORTED_LAYERS = (Dense, Conv2D, Conv1D, MaxPool2D, AvgPool2D, GlobalAvgPool1D, GlobalAvgPool2D, Flatten, Dropout,
                     Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Identity, GELU, SiLU, Softplus, ELU, BatchNorm1d,
                     BatchNorm2d, LayerNorm, _ResidualLayer)


def _layer_keys(layers: list[Layer] | tuple[Layer, ...], prefix: str) -> tuple[list[str], list[str]]:
    """(Dense weight keys, BatchNorm prefixes) of ``layers`` under ``prefix``, inside residual blocks too."""
    dense, norms = [], []
    for i, layer in enumerate(layers):
        if type(layer) is Dense:
            dense.append(f"{prefix}{i}.weight")
        elif type(layer) in (BatchNorm1d, BatchNorm2d):
            norms.append(f"{prefix}{i}.")
        elif isinstance(layer, _ResidualLayer):
            inner_dense, inner_norms = _layer_keys(layer.layers, f"{prefix}{i}.")
            dense, norms = dense + inner_dense, norms + inner_norms
    return dense, norms


def to_torch(model: Sequential, dtype: Any = None) -> torch.nn.Module:
    """A torch.nn.Sequential in eval() mode, on the CPU, computing ``model.predict`` with a copy of its weights and
    running statistics, as ``dtype`` ('float32'/'float64' or the torch dtype; default: the model's dtype)."""
    torch = _import_torch("to_torch")
    if not isinstance(model, Sequential):
        raise TypeError(f"to_torch: model must be a portnn Sequential, got {type(model).__name__}")
    if dtype is None:
        dtype = model.placement.dtype_name if model.placement is not None else model.dtype or "float64"
    target = getattr(torch, _dtype_name(dtype, "to_torch"))
    with torch.device("meta"):  # nothing initialised, so torch's global generator is not drawn from
        module = torch.nn.Sequential(*[_torch_module(layer, str(i), torch) for i, layer in enumerate(model.layers)])
    module = module.to(dtype=target).to_empty(device="cpu")
    dense, norms = _layer_keys(model.layers, "")
    transposed = set(dense)
    tensors = {key: torch.from_numpy(np.ascontiguousarray(value.T if key in transposed else value)).to(target)
               for key, value in model.state_dict().items()}
    # portnn keeps no count of batches; torch reads it only when momentum is None, which portnn does not offer
    tensors.update({f"{prefix}num_batches_tracked": torch.zeros((), dtype=torch.long) for prefix in norms})
    module.load_state_dict(tensors, strict=True)  # every parameter and buffer is overwritten: none stays empty
    return module.eval()


# ---- torch -> portnn ------------------------------------------------------------------------------------------

def _flat(module: Any, path: str, torch: Any) -> list[tuple[str, Any]]:
    """(path, module) of a plain nn.Sequential's children, nested plain Sequentials spliced in (same function)."""
    return _children(module, path, torch) if type(module) is torch.nn.Sequential else [(path, module)]


def _ints(value: Any, count: int) -> tuple[int, ...]:
    """A torch size argument (int or tuple) as a tuple of ``count`` ints."""
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),) * count


def _refuse(path: str, module: Any, setting: str, why: str) -> ValueError:
    """The ValueError naming the module and the setting portnn cannot reproduce exactly."""
    return ValueError(f"from_torch: module {path or '<root>'} ({module!r}): {setting} is not supported ({why})")


def _conv(path: str, m: Any, dims: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(kernel, stride, padding) of a Conv1d/Conv2d whose settings portnn has; ValueError naming any other."""
    kernel, stride = _ints(m.kernel_size, dims), _ints(m.stride, dims)
    if _ints(m.dilation, dims) != (1,) * dims:
        raise _refuse(path, m, f"dilation={m.dilation}", "portnn convolutions have no dilation")
    if m.groups != 1:
        raise _refuse(path, m, f"groups={m.groups}", "portnn convolutions are dense (groups=1)")
    if m.padding_mode != "zeros":
        raise _refuse(path, m, f"padding_mode={m.padding_mode!r}", "portnn pads with zeros only")
    if m.padding == "valid":
        padding = (0,) * dims
    elif m.padding == "same":
        if any(k % 2 == 0 for k in kernel):
            raise _refuse(path, m, "padding='same' with an even kernel", "torch pads it unevenly; portnn evenly")
        padding = tuple((k - 1) // 2 for k in kernel)
    else:
        padding = _ints(m.padding, dims)
    return kernel, stride, padding


def _pool(path: str, m: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """(kernel, stride) of a MaxPool2d/AvgPool2d without padding or ceil mode; ValueError naming any other."""
    if _ints(m.padding, 2) != (0, 0):
        raise _refuse(path, m, f"padding={m.padding}", "portnn pools without padding")
    if m.ceil_mode:
        raise _refuse(path, m, "ceil_mode=True", "portnn's output size rounds down")
    if _ints(getattr(m, "dilation", 1), 2) != (1, 1):
        raise _refuse(path, m, f"dilation={m.dilation}", "portnn pools have no dilation")
    if getattr(m, "return_indices", False):
        raise _refuse(path, m, "return_indices=True", "a portnn layer returns one array")
    if getattr(m, "divisor_override", None) is not None:
        raise _refuse(path, m, f"divisor_override={m.divisor_override}", "portnn divides by the window size")
    kernel = _ints(m.kernel_size, 2)
    stride = kernel if m.stride is None else _ints(m.stride, 2)
    return (kernel[0], kernel[1]), (stride[0], stride[1])


def _global_pool(entries: list[tuple[str, Any]], k: int, torch: Any) -> Layer | None:
    """GlobalAvgPool1D/2D when entries k, k+1 are AdaptiveAvgPool1d/2d(1) then Flatten(1, -1), else None."""
    nn = torch.nn
    m = entries[k][1]
    if type(m) not in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d) or k + 1 == len(entries):
        return None
    follower = entries[k + 1][1]
    if type(follower) is not nn.Flatten or (follower.start_dim, follower.end_dim) != (1, -1):
        return None
    dims = 1 if type(m) is nn.AdaptiveAvgPool1d else 2
    if not isinstance(m.output_size, int | tuple | list) or _ints(m.output_size, dims) != (1,) * dims:
        return None
    return GlobalAvgPool1D() if dims == 1 else GlobalAvgPool2D()


def _arrays(named: dict[str, Any]) -> dict[str, Any]:
    """The module tensors portnn keeps, None ones (a missing bias) left out."""
    return {name: t for name, t in named.items() if t is not None}


def _norm(path: str, m: Any, make: type[BatchNorm1d] | type[BatchNorm2d]) -> tuple[Layer, dict[str, Any]]:
    """A BatchNorm1d/2d with running statistics and a momentum; ValueError naming any other setting."""
    if not m.track_running_stats or m.running_mean is None:
        raise _refuse(path, m, "track_running_stats=False", "portnn's inference uses running statistics")
    if m.affine and m.bias is None:  # recent torch offers BatchNorm(bias=False)
        raise _refuse(path, m, "bias=False", "portnn's BatchNorm has a weight and a bias, or neither")
    if m.momentum is None:
        raise _refuse(path, m, "momentum=None", "portnn keeps an exponential average with a momentum in (0, 1]")
    layer = make(m.num_features, eps=m.eps, momentum=m.momentum, affine=bool(m.affine))
    return layer, _arrays({"weight": m.weight, "bias": m.bias, "running_mean": m.running_mean,
                           "running_var": m.running_var})


def _layer(path: str, m: Any, rank: int | None, torch: Any) -> tuple[Layer, dict[str, Any], int | None]:
    """(portnn layer, its tensors by portnn name, the output rank if known) for one torch module."""
    nn, kind = torch.nn, type(m)  # exact types: a subclass may override forward
    if kind is nn.Linear:
        return (Dense(m.in_features, m.out_features, bias=m.bias is not None),
                _arrays({"weight": m.weight.detach().T, "bias": m.bias}), 2)
    if kind in (nn.Conv1d, nn.Conv2d):
        dims = 1 if kind is nn.Conv1d else 2
        kernel, stride, padding = _conv(path, m, dims)
        conv: Layer = (Conv1D(m.in_channels, m.out_channels, kernel[0], stride=stride[0], padding=padding[0],
                              bias=m.bias is not None) if dims == 1 else
                       Conv2D(m.in_channels, m.out_channels, (kernel[0], kernel[1]), stride=stride, padding=padding,
                              bias=m.bias is not None))
        return conv, _arrays({"weight": m.weight, "bias": m.bias}), dims + 2
    if kind in (nn.MaxPool2d, nn.AvgPool2d):
        kernel, stride = _pool(path, m)
        return (MaxPool2D if kind is nn.MaxPool2d else AvgPool2D)(kernel, stride), {}, 4
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        layer, arrays = _norm(path, m, BatchNorm1d if kind is nn.BatchNorm1d else BatchNorm2d)
        return layer, arrays, 4 if kind is nn.BatchNorm2d else rank
    if kind is nn.LayerNorm:
        if m.elementwise_affine and m.bias is None:
            raise _refuse(path, m, "bias=False", "portnn's LayerNorm has a weight and a bias, or neither")
        shape = tuple(int(d) for d in m.normalized_shape)
        return (LayerNorm(shape[0] if len(shape) == 1 else list(shape), eps=m.eps, affine=bool(m.elementwise_affine)),
                _arrays({"weight": m.weight, "bias": m.bias}), rank)
    if kind is nn.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            raise _refuse(path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}", "portnn flattens (1, -1)")
        return Flatten(), {}, 2
    if kind is nn.Softmax:
        last = m.dim == -1 or (rank is not None and m.dim == rank - 1) or (m.dim is None and rank == 2)
        if not last:
            raise _refuse(path, m, f"dim={m.dim}" + ("" if rank is None else f" on rank-{rank} input"),
                          "portnn's Softmax is over the last axis (dim=-1)")
        return Softmax(), {}, rank
    if kind is nn.GELU:
        if m.approximate != "tanh":
            raise _refuse(path, m, f"approximate={m.approximate!r}", "portnn's GELU is the tanh form: the exact one "
                                                                     "needs erf, which the Array API lacks")
        return GELU(), {}, rank
    simple: dict[type, Callable[[], Layer]] = {
        nn.Sigmoid: Sigmoid, nn.Tanh: Tanh, nn.ReLU: ReLU, nn.Identity: Identity, nn.SiLU: SiLU,
        nn.Dropout: lambda: Dropout(m.p), nn.LeakyReLU: lambda: LeakyReLU(m.negative_slope),
        nn.ELU: lambda: ELU(m.alpha), nn.Softplus: lambda: Softplus(m.beta, m.threshold),
    }
    if kind in simple:
        return simple[kind](), {}, rank
    supported = sorted(t.__name__ for t in (*simple, nn.Linear, nn.Conv1d, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d,
                                            nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Flatten, nn.Softmax,
                                            nn.GELU, nn.Sequential, _classes(torch)["Residual"]))
    raise TypeError(f"from_torch: module {path or '<root>'} ({kind.__module__}.{kind.__qualname__}) has no portnn "
                    f"equivalent; supported: {', '.join(supported)}, and AdaptiveAvgPool1d/2d(1) followed by Flatten()")


def _layers(entries: list[tuple[str, Any]], rank: int | None,
            torch: Any) -> tuple[list[Layer], list[dict[str, Any]], int | None]:
    """(layers, their tensors, the output rank) of a flat list of (path, torch module)."""
    residual = _classes(torch)["Residual"]
    layers: list[Layer] = []
    arrays: list[dict[str, Any]] = []
    k = 0
    while k < len(entries):
        path, m = entries[k]
        pooled = _global_pool(entries, k, torch)
        if pooled is not None:
            layers.append(pooled)
            arrays.append({})
            rank, k = 2, k + 2
            continue
        try:
            if type(m) is residual:
                inner, inner_arrays, _ = _layers(_children(m, path, torch), rank, torch)
                layer: Layer = _ResidualLayer(*inner)
                named = {f"{j}.{name}": t for j, tree in enumerate(inner_arrays) for name, t in tree.items()}
            else:
                if type(m) in (torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d):
                    raise _refuse(path, m, "adaptive pooling not followed by Flatten() or to a size other than 1",
                                  "portnn's global pools are AdaptiveAvgPool1d/2d(1) then Flatten()")
                layer, named, rank = _layer(path, m, rank, torch)
        except (TypeError, ValueError) as err:
            if str(err).startswith("from_torch:"):
                raise
            raise ValueError(f"from_torch: module {path or '<root>'} ({m!r}): {err}") from err
        layers.append(layer)
        arrays.append(named)
        k += 1
    return layers, arrays, rank


def _children(module: Any, path: str, torch: Any) -> list[tuple[str, Any]]:
    """The flat (path, module) list of a Residual's body (its children, nested plain Sequentials spliced in)."""
    return [entry for name, child in module.named_children()
            for entry in _flat(child, f"{path}.{name}" if path else name, torch)]


def _module_dtype(arrays: list[dict[str, Any]]) -> str | None:
    """The one float dtype of the module's tensors ('float32'/'float64'), None when it has none; ValueError else."""
    found = {str(t.dtype).removeprefix("torch.") for tree in arrays for t in tree.values()}
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
    for key, tensor in module.state_dict().items():
        has_values(tensor, f"{key!r}", "from_torch", "materialise the module first (module.to_empty(device='cpu'), "
                   "then load its weights)")
    layers, arrays, _ = _layers(_flat(module, "", torch), None, torch)
    name = _module_dtype(arrays) if dtype is None else _dtype_name(dtype, "from_torch")
    target = getattr(torch, name or "float64")
    # copies on the host: the portnn model never shares memory with the torch parameters
    state = {f"{i}.{key}": t.detach().to(device="cpu", dtype=target, copy=True).contiguous().numpy()
             for i, tree in enumerate(arrays) for key, t in tree.items()}
    return Sequential.from_state_dict(*layers, state=state, seed=seed, dtype=name)
