"""The host boundary: the one place that moves arrays between NumPy on the host and any backend's device.

CuPy forbids implicit conversion and array-api-strict's non-default devices refuse it, so nothing else in
portnn calls ``numpy.asarray`` on a backend array.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """Copy a backend array (any device) to a new host NumPy array."""
    if isinstance(x, np.ndarray | np.generic):
        return np.array(x, copy=True)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy().copy()
    if array_api_compat.is_jax_array(x):
        return np.array(x, copy=True)
    if array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(x)):
        import array_api_strict

        return np.array(x.to_device(array_api_strict.Device("CPU_DEVICE")), copy=True)
    if array_api_compat.is_array_api_obj(x):
        return np.from_dlpack(x).copy()
    return np.asarray(x)


def detached(x: Any) -> Any:
    """A backend array cut from any autograd graph: a torch tensor with ``requires_grad`` (or one computed from such a
    tensor) as ``x.detach()``, a view of the same memory; every other array as it is. Inputs come through here so
    that training never records a graph (parameters with a grad_fn, memory growing every step)."""
    if array_api_compat.is_torch_array(x) and (x.requires_grad or x.grad_fn is not None):
        return x.detach()
    return x


def to_float(x: Any) -> float:
    """A 0-d backend array as a Python float (one device-to-host transfer)."""
    if type(x) in (np.ndarray, np.float64, np.float32, float):  # the hot path of every NumPy training step
        return float(x)
    return float(to_numpy(x))


def to_bool(x: Any) -> bool:
    """A 0-d backend boolean array as a Python bool (one device-to-host transfer)."""
    if type(x) in (np.ndarray, np.bool_):
        return bool(x)
    return bool(to_numpy(x))


def count_non_finite(values: np.ndarray) -> int:
    """Number of nan/inf entries of a host array (0 for integer arrays)."""
    if values.dtype.kind not in "fc":
        return 0
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def from_numpy(host: Any, xp: Any, *, device: Any, dtype: Any) -> Any:
    """Copy host data (NumPy array, list or scalar) into namespace ``xp`` on ``device`` as ``dtype``."""
    data = np.asarray(host)
    if data.ndim == 0 and dtype is not None:  # torch refuses to convert a 0-d NumPy array's dtype while copying it
        return xp.reshape(xp.asarray(data.reshape(1), dtype=dtype, device=device, copy=True), ())
    return xp.asarray(data, dtype=dtype, device=device, copy=True)


def not_masked(data: Any, name: str) -> None:
    """Refuse a NumPy masked array: every computation would use the values under its mask as well."""
    if isinstance(data, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy masked array; portnn would compute on its masked values too: fill them "
                        f"({name}.filled(value)) or drop the rows that have any first")


def as_host_array(data: Any, name: str, dtype: str | None = None) -> np.ndarray:
    """Host data given as a list/tuple/NumPy array, as a NumPy array (for inputs a user typed by hand)."""
    not_masked(data, name)
    try:
        return np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: cannot read {type(data).__name__} as an array: {err}") from err


def placeholder(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only array of ``shape`` that allocates nothing (a broadcast view): a leaf standing for a declared
    shape in a tree walk."""
    return np.broadcast_to(np.zeros((), dtype=bool), tuple(int(d) for d in shape))


def is_host(x: Any) -> bool:
    """True for a host NumPy array (a staged buffer), False for any backend's device array."""
    return isinstance(x, np.ndarray)


def zeros(count: int, dtype_name: str) -> np.ndarray:
    """A 1-D host buffer of ``count`` zeros of the named dtype ('float32', 'float64', 'int64')."""
    return np.zeros(count, dtype=np.dtype(dtype_name))


def flat(arrays: list[Any], dtype_name: str) -> np.ndarray:
    """Backend arrays (any device) copied to the host, flattened and joined as one 1-D buffer of ``dtype_name``."""
    parts = [to_numpy(a).reshape(-1).astype(np.dtype(dtype_name), copy=False) for a in arrays]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.dtype(dtype_name))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two host buffers hold bit-identical values (nan payloads and signed zeros included)."""
    bits = np.dtype(f"u{a.dtype.itemsize}")
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a.view(bits), b.view(bits)))


def values(numbers: list[float] | list[int], dtype_name: str) -> np.ndarray:
    """A 1-D host buffer of Python numbers (metric counts, flags) for a collective."""
    return np.array(numbers, dtype=np.dtype(dtype_name))


def indices(start: int, stop: int) -> np.ndarray:
    """The host int64 numbers ``start, ..., stop - 1`` (row orders, epoch numbers for a compiled loop)."""
    return np.arange(start, stop, dtype=np.int64)


def padded(numbers: list[float], size: int) -> np.ndarray:
    """A float64 host buffer of ``size`` holding ``numbers`` then zeros (a schedule's rates for a compiled call)."""
    out = np.zeros(size, dtype=np.float64)
    out[:len(numbers)] = numbers
    return out


def concat(parts: list[np.ndarray], dtype: str | None = None) -> np.ndarray:
    """Host arrays joined along their first axis (in ``dtype``: 'float64' holds each value as ``float`` reads it)."""
    return np.asarray(np.concatenate(parts, axis=0), dtype=dtype)


def shaped(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A host buffer viewed as ``shape``."""
    return np.reshape(values, shape)


def read_rows(rows: Any, record: Any) -> tuple[np.ndarray, np.ndarray]:
    """One device-to-host transfer of per-step values ``rows`` (steps, k) and a small integer ``record`` (cast to
    the rows' dtype on the way: the record's numbers are small counts): (rows, record) as host arrays."""
    if rows is None:
        return np.zeros((0, 0)), to_numpy(record)
    xp = array_api_compat.array_namespace(rows)
    both = to_numpy(xp.concat([xp.reshape(rows, (-1,)), xp.astype(record, rows.dtype)]))
    k = int(record.shape[0])
    return both[:-k].reshape(tuple(rows.shape)), both[-k:]


def full_batches(order: np.ndarray, size: int) -> np.ndarray:
    """The rows of each full batch of ``size`` in a host row order, as a (batches, size) int64 array."""
    whole = order.shape[0] // size
    return np.ascontiguousarray(order[:whole * size].reshape(whole, size), dtype=np.int64)
