"""Where a model computes: namespace, device and float dtype, resolved once per public call and handed down."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import array_api_compat

from . import backends, host
from .compile import keep_compiled

FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Placement:
    """The namespace ``xp``, the device object and the float dtype (an ``xp`` dtype) of a model's arrays."""

    xp: Any
    device: Any
    dtype: Any

    @property
    def dtype_name(self) -> str:
        """'float32' or 'float64'."""
        return "float32" if self.dtype == self.xp.float32 else "float64"

    def describe(self) -> str:
        return f"{backend_name(self.xp)} on {self.device} ({self.dtype_name})"

    @cached_property
    def index_dtype(self) -> Any:
        """The namespace's integer dtype for indices and counters on this device (int32 in JAX without x64)."""
        return self.xp.__array_namespace_info__().default_dtypes(device=self.device)["indexing"]

    @cached_property
    def wide_dtype(self) -> Any:
        """float64 where the namespace has it (JAX without x64 has not: then the model's dtype), for values computed
        more precisely than the model (Adam's bias corrections, a schedule's rates)."""
        return widest(self.xp, "float64", self.dtype)


_DTYPE_NAMES: dict[str, frozenset[str]] = {}  # per namespace name (a plain dict of strings: compilers trace it)


def widest(xp: Any, name: str, fallback: Any) -> Any:
    """``xp``'s dtype ``name`` ('float64', 'int64') where the namespace has it, else ``fallback``: JAX without
    x64 (its default) has neither, and portnn computes with what it has instead of asking for them (which JAX
    answers with a warning and a 32-bit array)."""
    key = xp.__name__
    names = _DTYPE_NAMES.get(key)
    if names is None:
        names = _DTYPE_NAMES[key] = frozenset(xp.__array_namespace_info__().dtypes(kind=None))
    return getattr(xp, name) if name in names else fallback


def standard_namespace(xp: Any) -> Any:
    """The Array API namespace of module ``xp`` (``numpy`` becomes array-api-compat's ``numpy``), the one that
    ``array_namespace`` gives for its arrays, so that a model placed with either accepts the arrays."""
    try:
        found = array_api_compat.array_namespace(xp.asarray(0.0))
    except (AttributeError, TypeError) as err:
        raise TypeError(f"{getattr(xp, '__name__', repr(xp))} is not an array namespace (give a module such as "
                        "numpy or a backend name such as 'torch')") from err
    _meet(found)
    return found


def _meet(xp: Any) -> None:
    """What portnn sets up for a backend the first time it meets it in a public call (as a module or through
    arrays; ``Backend.namespace`` when it loads one by name): where its compiled programs are kept."""
    backend = backends.registry().get(backend_name(xp))
    if backend is not None:
        keep_compiled(backend)  # before the call compiles anything (JAX compiles even its eager operations)


def backend_name(xp: Any) -> str:
    """A short readable name of a namespace, for error messages."""
    for name in ("numpy", "cupy", "torch", "jax", "array_api_strict"):
        if getattr(array_api_compat, f"is_{name}_namespace")(xp):
            return name
    return getattr(xp, "__name__", repr(xp))


def dtype_label(dtype: Any) -> str:
    """A dtype as a short name: 'float32', not 'torch.float32', 'array_api_strict.float32' or NumPy's class."""
    if isinstance(dtype, type):  # NumPy's and JAX's scalar types (np.float64 is what xp.float64 is)
        return dtype.__name__
    return str(dtype).rsplit(".", 1)[-1]


def check_dtype_name(dtype: str | None, where: str) -> str | None:
    """Validate a user-given dtype name ('float32', 'float64' or None)."""
    if dtype is not None and str(dtype) not in FLOAT_DTYPES:
        raise ValueError(f"{where}: dtype must be one of {FLOAT_DTYPES}, got {dtype!r}")
    return None if dtype is None else str(dtype)


def has_values(x: Any, name: str, where: str, fix: str = "create it on a real device (e.g. 'cpu') first") -> None:
    """Refuse an array that holds no values: a torch tensor on the 'meta' device has a shape and a dtype only, and
    fails deep inside the first read of its data."""
    if getattr(x, "is_meta", False) is True:
        raise ValueError(f"{where}: {name} is on torch's 'meta' device, which holds shapes but no values; {fix}")


def namespace_of(arrays: dict[str, Any], where: str) -> tuple[Any, Any]:
    """(xp, device) shared by the named arrays; TypeError/ValueError naming them when they disagree or hold no
    values."""
    for name, a in arrays.items():
        has_values(a, name, where)
    found = {name: (array_api_compat.array_namespace(a), array_api_compat.device(a)) for name, a in arrays.items()}
    names = list(found)
    first = names[0]
    _meet(found[first][0])
    for other in names[1:]:
        if found[other][0] is not found[first][0]:
            raise TypeError(
                f"{where}: {first} is a {backend_name(found[first][0])} array but {other} is a "
                f"{backend_name(found[other][0])} array; put both on one backend"
            )
        if found[other][1] != found[first][1]:
            raise ValueError(
                f"{where}: {first} is on device {found[first][1]} but {other} is on device {found[other][1]}; "
                "move both to one device"
            )
    return found[first]


def as_array(data: Any, name: str, default: Placement | None) -> Any:
    """``data`` as a backend array: arrays pass through, cut from any autograd graph (a torch tensor with
    ``requires_grad``); lists/tuples/NumPy scalars go to ``default`` (or NumPy); a masked array is refused (its mask
    would be ignored)."""
    host.not_masked(data, name)
    if array_api_compat.is_array_api_obj(data):
        return host.detached(data)
    values = host.as_host_array(data, name)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{name} holds {values.dtype} values ({type(data).__name__}); portnn computes on real numbers "
                        "(bool, integer or real floating), convert it first")
    if default is None:
        return values
    return host.from_numpy(values, default.xp, device=default.device, dtype=None if values.dtype.kind in "iub"
                           else default.dtype)


def is_floating(xp: Any, x: Any) -> bool:
    """True when ``x`` has a real floating dtype."""
    return xp.isdtype(x.dtype, "real floating")
