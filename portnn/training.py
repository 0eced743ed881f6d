"""The loop inside ``Sequential.fit``: epochs of batches, one gradient step per batch, one history record per epoch.

``Sequential.fit`` checks its arguments and places the data, then hands a ``Trainer`` everything resolved once
(namespace, loss, optimizer, the parameter slots); the loops below then touch only what each step needs. With tiny
networks (the seed net: about 25 array operations of a few µs in all per step) the Python around the arithmetic
is most of the cost, so the per-step path is kept short.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import host, host_random
from . import metrics as metrics_
from .placement import Placement

Progress = Callable[[int, float], None]
# (global batch x, y, batch index) -> (loss, output, the targets it was compared with, gradients keyed by
# (layer index, name) or None when the loss is not finite)
Gradients = Callable[[Any, Any, int], tuple[float, Any, Any, Any]]


class History(list):
    """The loss of each epoch of one ``fit`` (a list of floats), with ``metrics``: every recorded quantity by name
    ('loss', 'accuracy', 'val_loss', 'val_accuracy'), one value per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, list[float]] = {}

    def record(self, values: dict[str, float], everything: dict[str, list[float]]) -> None:
        """Append one epoch's values here and to ``everything`` (the model's history over all fits)."""
        self.append(values["loss"])
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)
            everything.setdefault(key, []).append(value)


def batches(X: Any, y: Any, size: int, p: Placement, order_seed: tuple[int, int] | None = None) -> Iterable:
    """(x, y) batches of ``size`` rows, in order, or shuffled by the host permutation of ``order_seed`` =
    (shuffle seed, epoch) so every backend sees the same batches. One batch: the arrays themselves."""
    if size >= X.shape[0]:
        return ((X, y),)
    return _shuffled(X, y, size, p, order_seed) if order_seed is not None else _in_order(X, y, size)


def _in_order(X: Any, y: Any, size: int) -> Iterator:
    n = X.shape[0]
    for start in range(0, n, size):
        yield X[start:min(start + size, n), ...], y[start:min(start + size, n), ...]


def _shuffled(X: Any, y: Any, size: int, p: Placement, order_seed: tuple[int, int]) -> Iterator:
    n = X.shape[0]
    order = host.from_numpy(host_random.permutation(*order_seed, n), p.xp, device=p.device, dtype=p.xp.int64)
    for start in range(0, n, size):
        idx = order[start:min(start + size, n)]  # strict rejects out-of-range slice stops
        yield p.xp.take(X, idx, axis=0), p.xp.take(y, idx, axis=0)


class Trainer:
    """One ``fit`` call: the model, where it computes, and its parameter slots, resolved once for every step."""

    def __init__(self, net: Any, p: Placement, gradients: Gradients | None = None) -> None:
        self.net, self.p, self.xp, self.loss, self.optimizer = net, p, p.xp, net.loss, net.optimizer
        # (key, layer, name) of every parameter: the optimizer sees {key: array}, the layer holds params[name]
        self.slots = [((i, name), layer, name) for i, layer in enumerate(net.layers) for name in layer.params]
        self.gradients = gradients or self.local_gradients
        self.last_good: tuple[dict, dict] | None = None  # (params, optimizer state) before the last update
        self.params: dict | None = None  # the optimizer's last output: the layers' parameters, by key

    def local_gradients(self, xb: Any, yb: Any, batch: int) -> tuple[float, Any, Any, Any]:
        """Forward, loss and (when the loss is finite) backward on one batch in this process."""
        net, xp, loss = self.net, self.xp, self.loss
        out = net._forward(xb, xp, batch)
        value = host.to_float(loss.forward(out, yb, xp))
        if not math.isfinite(value):
            return value, out, yb, None
        net._backward(loss.backward(xp), xp)
        return value, out, yb, {key: layer.grads[name] for key, layer, name in self.slots}

    def step(self, xb: Any, yb: Any, batch: int) -> tuple[float, Any, Any]:
        """One gradient step; returns (loss, output, the targets it was compared with). Nothing is committed
        unless the loss is finite; then parameters and optimizer state change together."""
        value, out, yb, grads = self.gradients(xb, yb, batch)
        optimizer = self.optimizer
        if not math.isfinite(value):
            if self.last_good is not None:  # the weights this batch saw came from a step that went wrong
                for key, layer, name in self.slots:
                    layer.params[name] = self.last_good[0][key]
                self.net.optimizer_state = self.last_good[1]
            raise FloatingPointError(
                f"fit: loss is {value} at epoch {self.net.epoch + 1}, batch {batch + 1}; the model is rolled back "
                "to the weights of the last step whose loss was finite (lower the learning rate or check the data)")
        params = self.params or {key: layer.params[name] for key, layer, name in self.slots}
        new, state = optimizer.update(params, grads, self.net.optimizer_state)
        for key, layer, name in self.slots:
            layer.params[name] = new[key]
        self.last_good, self.params = (params, self.net.optimizer_state), new
        self.net.optimizer_state = state
        return value, out, yb

    def run(self, X: Any, y: Any, *, epochs: int, size: int, shuffle: bool, names: list[str],
            validate: Callable[[], dict[str, float]] | None, progress: Progress | None,
            sum_counts: Callable[[dict[str, float]], dict[str, float]] | None = None) -> History:
        """``epochs`` passes over (X, y) in batches of ``size``; records loss, ``names`` metrics and (with
        ``validate``) 'val_*' each epoch in the returned History and in the model's ``history``."""
        net, p, xp, step = self.net, self.p, self.xp, self.step
        n = X.shape[0]
        per_sample = self.loss.reduction != "sum"
        threshold = metrics_.threshold(self.loss)
        seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
        history = History()
        whole = ((X, y),) if size >= n else None  # full-batch training: the same one batch every epoch
        for _ in range(epochs):
            total, sums = 0.0, dict.fromkeys(names)
            for b, (xb, yb) in enumerate(whole or batches(X, y, size, p, (seed, net.epoch) if shuffle else None)):
                value, out, yb = step(xb, yb, b)
                total += value * xb.shape[0] if per_sample else value
                for name in names:  # summed on the device, moved to the host once per epoch
                    count = metrics_.METRICS[name](out, yb, xp, threshold)
                    sums[name] = count if sums[name] is None else sums[name] + count
            net.epoch += 1
            record = {"loss": total / n if per_sample else total}
            if names:
                counts = {name: host.to_float(sums[name]) for name in names}
                if sum_counts is not None:
                    counts = sum_counts(counts)
                record.update({name: counts[name] / n for name in names})
            if validate is not None:
                record.update({f"val_{k}": v for k, v in validate().items()})
            history.record(record, net.history)
            if progress is not None:
                progress(net.epoch, record["loss"])
                self.params = None  # the callback may have changed the model: read the layers again
        return history
