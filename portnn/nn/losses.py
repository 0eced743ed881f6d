"""Losses as pure functions: ``forward(out, y, ctx) -> (value, saved)`` gives a 0-d array and what
``backward(saved, ctx)`` needs to return dL/dout. ``check``/``check_targets`` run once per fit, on the host side."""

from __future__ import annotations

import math
from typing import Any

import array_api_extra as xpx

from ..array import host
from ..array.placement import dtype_label
from ..array.types import Array, Namespace
from ..array.validation import Integer, Optional
from .activations import scalar, sigmoid
from .layer import Context

LOSSES: dict[str, type[Loss]] = {}  # every public Loss subclass by class name (checkpoints rebuild it)


class Loss:
    """Base class. ``reduction`` says how batch losses combine into an epoch loss: 'sum' or 'mean'."""

    reduction = "mean"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LOSSES[cls.__name__] = cls

    def check(self, out_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
        """Raise ValueError if targets of ``y_shape`` do not fit network outputs of ``out_shape``."""
        if tuple(out_shape) != tuple(y_shape):
            raise ValueError(
                f"{type(self).__name__}: y has shape {tuple(y_shape)} but the network outputs shape {tuple(out_shape)}"
            )

    def check_targets(self, y: Array, out_shape: tuple[int, ...], xp: Namespace) -> None:
        """Raise ValueError if the values of ``y`` cannot be targets (called once per fit/evaluate, not per step)."""

    def takes_labels(self, y_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
        """Whether targets of ``y_shape`` are integer class labels (kept as integers, never cast to the model's
        float dtype) rather than values of the outputs' shape. None of the regression losses take labels."""
        return False

    def _in_unit_interval(self, y: Array, xp: Namespace, what: str) -> None:
        """ValueError unless every value of ``y`` lies in [0, 1] (one host read of its range)."""
        if xp.isdtype(y.dtype, "bool"):
            return
        low, high = host.to_float(xp.min(y)), host.to_float(xp.max(y))
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{type(self).__name__}: {what} must lie in [0, 1], got values from {low:g} to {high:g}")

    def forward(self, out: Array, y: Array, ctx: Context) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, saved: Any, ctx: Context) -> Array:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the loss in a checkpoint as JSON."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SSE(Loss):
    """Sum of squared errors over all samples and outputs (the seed article's loss): sum((out - y)^2), out and y of
    one shape (batch, k), a 0-d result."""

    reduction = "sum"

    def forward(self, out: Array, y: Array, ctx: Context) -> tuple[Array, Array]:
        diff = out - y
        return ctx.xp.sum(diff * diff), diff

    def backward(self, diff: Array, ctx: Context) -> Array:
        return 2.0 * diff


class MSE(Loss):
    """Mean of squared errors over all samples and outputs: mean((out - y)^2), out and y of one shape (batch, k), a
    0-d result."""

    def forward(self, out: Array, y: Array, ctx: Context) -> tuple[Array, Array]:
        diff = out - y
        return ctx.xp.mean(diff * diff), diff

    def backward(self, diff: Array, ctx: Context) -> Array:
        n = 1
        for s in diff.shape:
            n *= s
        return (2.0 / n) * diff


class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of softmax(logits) over the last axis against integer class labels or one-hot targets:
    logits (batch, k) with labels (batch,) or targets (batch, k); per position, logits (batch, ..., k) with labels
    (batch, ...) or targets (batch, ..., k), averaged over every position (torch's CrossEntropyLoss).

    ``ignore_index`` (labels only; None by default, minGPT uses -1): positions with that label count for nothing,
    and the mean is over the counted positions; a batch with none gives loss 0 and zero gradient (torch: nan).
    Computed from logits with the log-sum-exp shift, so large logits cannot overflow."""

    def __init__(self, ignore_index: int | None = None) -> None:
        self.ignore_index = Optional(Integer())(ignore_index, "ignore_index", "SoftmaxCrossEntropy")

    def check(self, out_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
        if len(out_shape) < 2 or tuple(y_shape) not in (tuple(out_shape[:-1]), tuple(out_shape)):
            raise ValueError(
                f"SoftmaxCrossEntropy: y has shape {tuple(y_shape)}; with logits of shape {tuple(out_shape)} it "
                f"must be class labels of shape {tuple(out_shape[:-1])} or one-hot targets of shape "
                f"{tuple(out_shape)}"
            )
        if out_shape[-1] < 2:
            raise ValueError(f"SoftmaxCrossEntropy: the network outputs {out_shape[-1]} logit per sample (shape "
                             f"{tuple(out_shape)}); a softmax needs at least 2 classes: for one output use "
                             "BinaryCrossEntropy")

    def takes_labels(self, y_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
        """Labels (N, ...) for logits (N, ..., k); targets of the logits' own shape are one-hot probabilities."""
        return len(y_shape) == len(out_shape) - 1

    def check_targets(self, y: Array, out_shape: tuple[int, ...], xp: Namespace) -> None:
        k = out_shape[-1]
        if not self.takes_labels(tuple(y.shape), out_shape):  # one-hot or soft targets: probabilities
            self._in_unit_interval(y, xp, "one-hot targets y")
            return
        if not xp.isdtype(y.dtype, "integral"):  # bool or float labels would be silently cast or one-hot wrongly
            raise TypeError(f"SoftmaxCrossEntropy: class labels y (shape {tuple(y.shape)}) must have an integer "
                            f"dtype, got {dtype_label(y.dtype)}; convert them (e.g. np.asarray(y, dtype=np.int64)) or "
                            f"pass one-hot targets of shape {(*tuple(y.shape), k)}")
        if self.ignore_index is not None:  # the range of the counted labels (ignored ones read as 0)
            y = xp.where(y == self.ignore_index, 0, y)
        low, high = host.to_float(xp.min(y)), host.to_float(xp.max(y))  # one host read of the range, once per call
        if low < 0 or high >= k:
            also = "" if self.ignore_index is None else f" (or {self.ignore_index}, the ignore_index)"
            raise ValueError(f"SoftmaxCrossEntropy: class labels must be in [0, {k}){also} for {k} logits, got "
                             f"labels from {low:g} to {high:g}")

    def forward(self, out: Array, y: Array, ctx: Context) -> tuple[Array, Any]:
        xp, k = ctx.xp, out.shape[-1]
        z = out - xp.max(out, axis=-1, keepdims=True)
        logp = z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))
        if y.ndim == out.ndim or self.ignore_index is None:  # every position counts
            target = y if y.ndim == out.ndim else xpx.one_hot(y, k, dtype=out.dtype, xp=xp)
            count = float(math.prod(out.shape[:-1]))
            return -xp.sum(target * logp) / count, (xp.exp(logp), target, count)
        counted = y != self.ignore_index
        target = xpx.one_hot(xp.where(counted, y, 0), k, dtype=out.dtype, xp=xp)
        weight = xp.astype(counted, out.dtype)[..., None]
        # (..., 1): 1 / count where counted; no count: 0, not nan
        weight = weight / xp.maximum(xp.sum(weight), scalar(1.0, weight, xp))
        return -xp.sum(target * logp * weight), (xp.exp(logp), target, weight)

    def backward(self, saved: Any, ctx: Context) -> Array:
        p, target, per = saved  # per: the number of positions, or each position's weight (ignore_index)
        return (p - target) / per if isinstance(per, float) else (p - target) * per

    def config(self) -> dict[str, Any]:
        return {} if self.ignore_index is None else {"ignore_index": self.ignore_index}

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()" if self.ignore_index is None else \
            f"SoftmaxCrossEntropy(ignore_index={self.ignore_index})"


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], both of shape (batch, k).

    Computed from logits as max(z, 0) - z*y + log(1 + exp(-|z|)), which neither overflows nor takes log(0)."""

    def check_targets(self, y: Array, out_shape: tuple[int, ...], xp: Namespace) -> None:
        self._in_unit_interval(y, xp, "targets y")

    def forward(self, out: Array, y: Array, ctx: Context) -> tuple[Array, Any]:
        xp = ctx.xp
        return xp.mean(xp.maximum(out, scalar(0.0, out, xp)) - out * y + xp.log1p(xp.exp(-xp.abs(out)))), (out, y)

    def backward(self, saved: Any, ctx: Context) -> Array:
        z, target = saved
        n = 1
        for s in z.shape:
            n *= s
        return (sigmoid(z, ctx.xp) - target) / float(n)
