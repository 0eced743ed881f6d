"""Normalisation layers with PyTorch's semantics: BatchNorm1d/2d (batch statistics while training, running ones in
inference; the running statistics are the layer's non-trainable state) and LayerNorm (per sample, no state).

Both normalise x_hat = (x - mean) / sqrt(var + eps) with the biased variance and scale y = weight * x_hat + bias.
The input gradient of a normalisation over m values is the textbook one:
dx = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), with dx_hat = dy * weight.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..array import random as host_random
from ..array.types import Array
from ..array.validation import BOOLEAN, COUNT, POSITIVE, Number
from .layer import Context, Grads, Layer


def _normalised_backward(dx_hat: Array, x_hat: Array, inv_std: Array, axes: tuple[int, ...], xp: Any) -> Array:
    """Input gradient of x_hat = (x - mean(x)) * inv_std over ``axes`` (see the module docstring)."""
    mean_dx_hat = xp.mean(dx_hat, axis=axes, keepdims=True)
    mean_dx_hat_x_hat = xp.mean(dx_hat * x_hat, axis=axes, keepdims=True)
    return inv_std * (dx_hat - mean_dx_hat - x_hat * mean_dx_hat_x_hat)


class Saved(NamedTuple):
    """What BatchNorm's forward keeps for backward and update_state."""

    x_hat: Array  # the normalised input
    inv_std: Array  # 1 / sqrt(var + eps), per channel
    mean: Array  # the statistics used: the batch's in training, the running ones in inference
    var: Array
    per_channel: int | None  # values per channel over the (global) batch; None in inference


class _BatchNorm(Layer):
    """Per-channel normalisation over the batch and spatial axes; channels on axis 1."""

    spatial: tuple[int, ...] = ()  # the input ranks this layer accepts

    def __init__(self, features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        owner = type(self).__name__
        self.features = COUNT(features, "features", owner)
        self.eps = POSITIVE(eps, "eps", owner)
        self.momentum = Number(0.0, 1.0, low_open=True, high_open=False)(momentum, "momentum", owner)
        self.affine = BOOLEAN(affine, "affine", owner)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.features,), "bias": (self.features,)} if self.affine else {}

    def init(self, rng: Any) -> dict[str, Any]:
        """Weight ones, bias zeros (as PyTorch); nothing is drawn from ``rng``."""
        if not self.affine:
            return {}
        return {"weight": host_random.zeros((self.features,)) + 1.0, "bias": host_random.zeros((self.features,))}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (self.features,), "running_var": (self.features,)}

    def init_state(self) -> dict[str, Any]:
        return {"running_mean": host_random.zeros((self.features,)),
                "running_var": host_random.zeros((self.features,)) + 1.0}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        if len(shape) not in self.spatial or shape[1] != self.features:
            ranks = " or ".join(_layout(r) for r in self.spatial)
            raise ValueError(f"{where} ({self!r}) expects input of shape {ranks} with channels = {self.features}, got "
                             f"shape {tuple(shape)}")
        return tuple(shape)

    def _channels(self, a: Array, ndim: int, xp: Any) -> Array:
        """(C,) -> shaped to broadcast against an input of rank ``ndim`` with channels on axis 1."""
        return xp.reshape(a, (1, self.features) + (1,) * (ndim - 2))

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp, axes, sync = ctx.xp, (0, *range(2, x.ndim)), ctx.sync
        count: int | None = None  # values per channel, in training only (an ONNX export traces an unknown batch)
        if ctx.training:
            count = math.prod(x.shape) // self.features
            if sync is not None and ctx.rows is not None:  # the global batch's statistics (SyncBN)
                count = count // (ctx.rows[1] - ctx.rows[0]) * ctx.rows[2]
            if count < 2:
                raise ValueError(f"{self!r}: training needs more than one value per channel, got input of shape "
                                 f"{tuple(x.shape)} (use a larger batch)")
            if sync is None:
                mean = xp.mean(x, axis=axes, keepdims=True)
                centred = x - mean
                var = xp.mean(centred * centred, axis=axes, keepdims=True)  # biased, as PyTorch's forward pass
            else:  # two passes over all ranks, as the two means above
                mean = sync.total(xp.sum(x, axis=axes, keepdims=True)) / count
                centred = x - mean
                var = sync.total(xp.sum(centred * centred, axis=axes, keepdims=True)) / count
        else:
            mean = self._channels(params["running_mean"], x.ndim, xp)
            var = self._channels(params["running_var"], x.ndim, xp)
            centred = x - mean
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        x_hat = centred * inv_std
        y = x_hat * self._channels(params["weight"], x.ndim, xp) + self._channels(params["bias"], x.ndim, xp) \
            if self.affine else x_hat
        return y, Saved(x_hat, inv_std, mean, var, count)

    def backward(self, params: dict[str, Array], saved: Saved, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, axes = ctx.xp, (0, *range(2, dy.ndim))
        x_hat, inv_std = saved.x_hat, saved.inv_std
        grads = {"weight": xp.sum(dy * x_hat, axis=axes), "bias": xp.sum(dy, axis=axes)} if self.affine else {}
        if not ctx.need_dx:
            return None, grads
        dx_hat = dy * self._channels(params["weight"], dy.ndim, xp) if self.affine else dy
        if not ctx.training:  # running statistics are constants
            return dx_hat * inv_std, grads
        sync = ctx.sync
        if sync is None:
            return _normalised_backward(dx_hat, x_hat, inv_std, axes, xp), grads
        # the two means over the global batch, in this rank's gradient scale (dy here = global dy / weight)
        count = saved.per_channel
        assert count is not None  # training
        local = xp.concat([xp.sum(dx_hat, axis=axes, keepdims=True), xp.sum(dx_hat * x_hat, axis=axes, keepdims=True)])
        means = sync.total(local * sync.weight) / (count * sync.weight)
        return inv_std * (dx_hat - means[0:1, ...] - x_hat * means[1:2, ...]), grads

    def update_state(self, params: dict[str, Array], saved: Saved, ctx: Context) -> dict[str, Array]:
        """Running statistics: (1 - momentum) * running + momentum * batch, with the unbiased batch variance."""
        xp, m = ctx.xp, self.momentum
        mean, var, count = saved.mean, saved.var, saved.per_channel
        assert count is not None  # called after a training forward
        unbiased = xp.reshape(var, (self.features,)) * (count / (count - 1))
        return {"running_mean": (1.0 - m) * params["running_mean"] + m * xp.reshape(mean, (self.features,)),
                "running_var": (1.0 - m) * params["running_var"] + m * unbiased}

    def config(self) -> dict[str, Any]:
        return {"features": self.features, "eps": self.eps, "momentum": self.momentum, "affine": self.affine}


def _layout(ndim: int) -> str:
    return {2: "(batch, channels)", 3: "(batch, channels, length)", 4: "(batch, channels, height, width)"}[ndim]


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L), as torch.nn.BatchNorm1d."""

    spatial = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) per channel, as torch.nn.BatchNorm2d."""

    spatial = (4,)


class LayerNorm(Layer):
    """Normalisation of each sample over its last axes (``features``: an int or the trailing shape), as
    torch.nn.LayerNorm; affine weight (ones) and bias (zeros) of that shape."""

    def __init__(self, features: int | tuple[int, ...] | list[int], eps: float = 1e-5, affine: bool = True) -> None:
        shape = tuple(features) if isinstance(features, tuple | list) else (features,)
        if not shape:
            raise ValueError("LayerNorm: features must be an int or a non-empty shape, got ()")
        self.shape = tuple(COUNT(d, "features", "LayerNorm") for d in shape)
        self.eps = POSITIVE(eps, "eps", "LayerNorm")
        self.affine = BOOLEAN(affine, "affine", "LayerNorm")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": self.shape, "bias": self.shape} if self.affine else {}

    def init(self, rng: Any) -> dict[str, Any]:
        """Weight ones, bias zeros (as PyTorch); nothing is drawn from ``rng``."""
        return {"weight": host_random.zeros(self.shape) + 1.0, "bias": host_random.zeros(self.shape)} \
            if self.affine else {}

    def output_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
        k = len(self.shape)
        if len(shape) < k + 1 or tuple(shape[-k:]) != self.shape:
            trailing = ", ".join(map(str, self.shape))
            raise ValueError(f"{where} ({self!r}) expects input of shape (batch, ..., {trailing}), got shape "
                             f"{tuple(shape)}")
        return tuple(shape)

    def forward(self, params: dict[str, Array], x: Array, ctx: Context) -> tuple[Array, Any]:
        xp, axes = ctx.xp, tuple(range(x.ndim - len(self.shape), x.ndim))
        mean = xp.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        x_hat = centred * inv_std
        y = x_hat * params["weight"] + params["bias"] if self.affine else x_hat
        return y, (x_hat, inv_std)

    def backward(self, params: dict[str, Array], saved: Any, dy: Array, ctx: Context) -> tuple[Array | None, Grads]:
        xp, k = ctx.xp, len(self.shape)
        x_hat, inv_std = saved
        lead = tuple(range(dy.ndim - k))
        grads = {"weight": xp.sum(dy * x_hat, axis=lead), "bias": xp.sum(dy, axis=lead)} if self.affine else {}
        if not ctx.need_dx:
            return None, grads
        dx_hat = dy * params["weight"] if self.affine else dy
        return _normalised_backward(dx_hat, x_hat, inv_std, tuple(range(dy.ndim - k, dy.ndim)), xp), grads

    def config(self) -> dict[str, Any]:
        return {"features": list(self.shape) if len(self.shape) > 1 else self.shape[0], "eps": self.eps,
                "affine": self.affine}
