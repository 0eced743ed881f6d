"""Gradient clipping by the global L2 norm, as ``torch.nn.utils.clip_grad_norm_``: pure, on the device, jit-safe."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ..array.placement import widest
from ..array.types import Array, Device, Namespace, Params
from ..array.validation import POSITIVE


def clip_by_global_norm(grads: Params, max_norm: float, *, xp: Namespace | None = None,
                        device: Device = None) -> tuple[Params, Array | float]:
    """(grads scaled by min(max_norm / (total_norm + 1e-6), 1), total_norm): torch's clip_grad_norm_, out of place.

    total_norm is the L2 norm of the per-parameter L2 norms (torch's foreach path), a 0-d array of the grads'
    dtype; the coefficient is clamped with ``xp.minimum`` and cast to each gradient's dtype, so there is no host read
    and no Python branch on a value (it traces under jax.jit) and float32 stays float32. Every gradient is
    multiplied, also when the coefficient is 1 (torch does the same, to avoid a device sync); a non-finite norm
    gives non-finite gradients, as torch's default (error_if_nonfinite=False). Parameter-free layers ({}) pass
    through. A tree without any gradient comes back as it is, with a 0 norm: float64 in ``xp`` on ``device``, or
    the Python float 0.0 when no ``xp`` is given (torch returns tensor(0.0)); ``xp`` and ``device`` are used for
    nothing else."""
    max_norm = POSITIVE(max_norm, "max_norm", "clip_by_global_norm")
    if not isinstance(grads, list | tuple) or not all(isinstance(layer, dict) for layer in grads):
        raise TypeError("clip_by_global_norm: grads must be a list with one {name: array} dict per layer, got "
                        f"{type(grads).__name__}")
    leaves = [g for layer in grads for g in layer.values()]
    if not leaves:  # network code imports no array library: without ``xp`` the zero norm is a Python float
        return list(grads), (0.0 if xp is None else xp.asarray(0.0, dtype=widest(xp, "float64", xp.float32),
                                                                  device=device))
    xp = array_api_compat.array_namespace(leaves[0])  # once
    norms = [xp.sqrt(xp.sum(g * g)) for g in leaves]
    dev = array_api_compat.device(leaves[0])
    total = xp.sqrt(xp.sum(xp.square(xp.stack(norms))))
    total = xp.asarray(total, dtype=total.dtype, device=dev)  # NumPy's 0-d results are scalars
    coef = max_norm / (total + 1e-6)
    # torch.clamp(coef, max=1.0); NaN stays NaN, as there
    coef = xp.minimum(coef, xp.ones_like(coef, dtype=coef.dtype, device=dev))
    cast: dict[Any, Array] = {}
    for g in leaves:
        if g.dtype not in cast:
            cast[g.dtype] = xp.astype(coef, g.dtype)
    return [layer and {n: g * cast[g.dtype] for n, g in layer.items()} for layer in grads], total
