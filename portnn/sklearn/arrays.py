"""Where the caller's arrays live. scikit-learn's validation hands the estimators NumPy arrays, or, under
``sklearn.set_config(array_api_dispatch=True)``, the caller's own Array API arrays (torch, array-api-strict, CuPy):
the estimators copy them to the host, train where ``backend``/``device`` say, and give results back in the caller's
namespace and on its device, as scikit-learn's Array API estimators do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np

from ..array import host
from ..array.placement import backend_name, dtype_label


@dataclass(frozen=True)
class Space:
    """A namespace and device of inputs: ``key`` (names, picklable) identifies it, ``xp``/``device`` build results
    there (None for NumPy), ``floats`` is the dtype of float results: float32 for float32 inputs, else float64
    (scikit-learn's rule: results follow the input's precision, whatever the model computes in)."""

    key: tuple[str, str]
    xp: Any = field(default=None, compare=False)
    device: Any = field(default=None, compare=False)
    floats: np.dtype = field(default=np.dtype(np.float64), compare=False)


HOST = ("numpy", "cpu")


def space_of(a: Any) -> Space:
    """The namespace, device and float precision of a validated array (NumPy arrays are the host)."""
    floats = np.dtype(np.float32 if dtype_label(a.dtype) == "float32" else np.float64)
    if isinstance(a, np.ndarray):
        return Space(HOST, floats=floats)
    xp = array_api_compat.array_namespace(a)
    if array_api_compat.is_numpy_namespace(xp):
        return Space(HOST, floats=floats)
    device = array_api_compat.device(a)
    return Space((backend_name(xp), str(device)), xp, device, floats)


def to_host(a: Any) -> np.ndarray:
    """A validated array as a host NumPy array (no copy for NumPy input: it is only read, then copied to the
    backend)."""
    return a if isinstance(a, np.ndarray) else host.to_numpy(a)


def host_floats(a: Any) -> np.ndarray:
    """Validated features on the host as floats (integers become float64; the backend copy casts to the model's
    dtype)."""
    values = to_host(a)
    return values if values.dtype.kind == "f" else values.astype(np.float64)


def like(result: np.ndarray, space: Space, *, labels: bool = False) -> Any:
    """A host result in the inputs' namespace, on their device and (floats, not ``labels``) in their precision;
    labels that are not numbers (strings, objects) stay on the host."""
    if result.dtype.kind == "f" and not labels:
        result = result.astype(space.floats, copy=False)
    if space.xp is None or result.dtype.kind not in "biuf":
        return result
    return host.from_numpy(result, space.xp, device=space.device, dtype=None)
