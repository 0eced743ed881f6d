"""Losses: ``forward(yhat, y, xp)`` returns a 0-d array and keeps what ``backward(xp)`` needs to return dL/dyhat."""

from __future__ import annotations

from typing import Any

import array_api_extra as xpx

from . import host
from .placement import dtype_label


class Loss:
    """Base class. ``reduction`` says how batch losses combine into an epoch loss: 'sum' or 'mean'."""

    reduction = "mean"

    def check(self, out_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
        """Raise ValueError if targets of ``y_shape`` do not fit network outputs of ``out_shape``."""
        if tuple(out_shape) != tuple(y_shape):
            raise ValueError(
                f"{type(self).__name__}: y has shape {tuple(y_shape)} but the network outputs shape {tuple(out_shape)}"
            )

    def check_targets(self, y: Any, out_shape: tuple[int, ...], xp: Any) -> None:
        """Raise ValueError if the values of ``y`` cannot be targets (called once per fit/evaluate, not per step)."""

    def _in_unit_interval(self, y: Any, xp: Any, what: str) -> None:
        """ValueError unless every value of ``y`` lies in [0, 1] (one host read of its range)."""
        if xp.isdtype(y.dtype, "bool"):
            return
        low, high = host.to_float(xp.min(y)), host.to_float(xp.max(y))
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{type(self).__name__}: {what} must lie in [0, 1], got values from {low:g} to {high:g}")

    def forward(self, yhat: Any, y: Any, xp: Any) -> Any:
        raise NotImplementedError

    def backward(self, xp: Any) -> Any:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for saving the loss in a checkpoint as JSON."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SSE(Loss):
    """Sum of squared errors over all samples and outputs (the seed article's loss): sum((yhat - y)^2)."""

    reduction = "sum"

    def forward(self, yhat: Any, y: Any, xp: Any) -> Any:
        self.diff = yhat - y
        return xp.sum(self.diff * self.diff)

    def backward(self, xp: Any) -> Any:
        return 2.0 * self.diff


class MSE(Loss):
    """Mean of squared errors over all samples and outputs: mean((yhat - y)^2)."""

    def forward(self, yhat: Any, y: Any, xp: Any) -> Any:
        self.diff = yhat - y
        return xp.mean(self.diff * self.diff)

    def backward(self, xp: Any) -> Any:
        n = 1
        for s in self.diff.shape:
            n *= s
        return (2.0 / n) * self.diff


class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of softmax(logits) against integer class labels (batch,) or one-hot targets (batch, k).

    Computed from logits with the log-sum-exp shift, so large logits cannot overflow."""

    def check(self, out_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
        if len(out_shape) != 2 or tuple(y_shape) not in ((out_shape[0],), tuple(out_shape)):
            raise ValueError(
                f"SoftmaxCrossEntropy: y has shape {tuple(y_shape)}; with logits of shape {tuple(out_shape)} it "
                f"must be class labels of shape ({out_shape[0]},) or one-hot targets of shape {tuple(out_shape)}"
            )
        if out_shape[1] < 2:
            raise ValueError(f"SoftmaxCrossEntropy: the network outputs {out_shape[1]} logit per sample (shape "
                             f"{tuple(out_shape)}); a softmax needs at least 2 classes: for one output use "
                             "BinaryCrossEntropy")

    def check_targets(self, y: Any, out_shape: tuple[int, ...], xp: Any) -> None:
        if y.ndim == 2:  # one-hot or soft targets: probabilities
            self._in_unit_interval(y, xp, "one-hot targets y")
            return
        if not xp.isdtype(y.dtype, "integral"):  # bool or float labels would be silently cast or one-hot wrongly
            raise TypeError(f"SoftmaxCrossEntropy: class labels y (shape {tuple(y.shape)}) must have an integer "
                            f"dtype, got {dtype_label(y.dtype)}; convert them (e.g. y.astype(int)) or pass one-hot "
                            f"targets of shape ({y.shape[0]}, {out_shape[1]})")
        low, high = host.to_float(xp.min(y)), host.to_float(xp.max(y))  # one host read of the range, once per call
        if low < 0 or high >= out_shape[1]:
            raise ValueError(f"SoftmaxCrossEntropy: class labels must be in [0, {out_shape[1]}) for "
                             f"{out_shape[1]} logits, got labels from {low:g} to {high:g}")

    def forward(self, yhat: Any, y: Any, xp: Any) -> Any:
        z = yhat - xp.max(yhat, axis=1, keepdims=True)
        logp = z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
        self.target = y if y.ndim == 2 else xpx.one_hot(y, yhat.shape[1], dtype=yhat.dtype, xp=xp)
        self.p = xp.exp(logp)
        return -xp.sum(self.target * logp) / float(yhat.shape[0])

    def backward(self, xp: Any) -> Any:
        return (self.p - self.target) / float(self.p.shape[0])


class BinaryCrossEntropy(Loss):
    """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], both of shape (batch, k).

    Computed from logits as max(z, 0) - z*y + log(1 + exp(-|z|)), which neither overflows nor takes log(0)."""

    def check_targets(self, y: Any, out_shape: tuple[int, ...], xp: Any) -> None:
        self._in_unit_interval(y, xp, "targets y")

    def forward(self, yhat: Any, y: Any, xp: Any) -> Any:
        self.z, self.target = yhat, y
        return xp.mean(xp.maximum(yhat, 0.0) - yhat * y + xp.log1p(xp.exp(-xp.abs(yhat))))

    def backward(self, xp: Any) -> Any:
        n = 1
        for s in self.z.shape:
            n *= s
        return (0.5 + 0.5 * xp.tanh(0.5 * self.z) - self.target) / float(n)  # (sigmoid(z) - y) / n


LOSSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (SSE, MSE, SoftmaxCrossEntropy, BinaryCrossEntropy)}
