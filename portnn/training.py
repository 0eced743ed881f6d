"""The loop inside ``Sequential.fit``: epochs of batches, one gradient step per batch, one history record per epoch.

``Sequential.fit`` checks its arguments and places the data, then hands a ``Trainer`` everything resolved once
(namespace, loss, optimizer, the parameter slots); the loops below then touch only what each step needs. With tiny
networks (the seed net: about 25 array operations of a few µs in all per step) the Python around the arithmetic
is most of the cost, so the per-step path is kept short.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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

    def truncate(self, keep: int, everything: dict[str, list[float]]) -> None:
        """Keep only this fit's first ``keep`` epochs, here and in ``everything`` (the model's history)."""
        drop = len(self) - keep
        if drop <= 0:
            return
        del self[keep:]
        for key, values in self.metrics.items():
            del values[keep:]
            del everything[key][len(everything[key]) - drop:]

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


@dataclass(frozen=True)
class Verified:
    """A point of this fit where parameters and optimizer state were checked finite: where a replay starts."""

    params: dict[Any, Any]
    state: dict[Any, Any]
    epoch: int
    recorded: int  # epochs this fit had recorded in its History at that point


class Unverified(Exception):
    """Internal: the model may hold non-finite values since the last verified point; the loop replays from there."""


class Trainer:
    """One ``fit`` call: the model, where it computes, and its parameter slots, resolved once for every step.

    The guarantee: fit never leaves the model with non-finite parameters or optimizer state. A non-finite loss stops
    training at once (FloatingPointError naming epoch and batch) with the weights of the last step whose loss was
    finite. Parameters that turn non-finite while the loss stays finite (a saturated sigmoid or a dead ReLU hides an
    inf weight; Adam's second moment can overflow) cost no per-step check: parameters and state are verified at the
    end of the fit and before each epoch-end callback, and if they fail, the steps since the last verified point are
    replayed deterministically with a check after every update, so the error names the first update that went
    non-finite and the model is rolled back to the weights before it — exactly what a per-step check would give."""

    def __init__(self, net: Any, p: Placement, gradients: Gradients | None = None) -> None:
        self.net, self.p, self.xp, self.loss, self.optimizer = net, p, p.xp, net.loss, net.optimizer
        # (key, layer, name) of every parameter: the optimizer sees {key: array}, the layer holds params[name]
        self.slots = [((i, name), layer, name) for i, layer in enumerate(net.layers) for name in layer.params]
        self.gradients = gradients or self.local_gradients
        self.last_good: tuple[dict, dict] | None = None  # (params, optimizer state) before the last update
        self.params: dict | None = None  # the optimizer's last output: the layers' parameters, by key
        self.verified: Verified | None = None
        self.exact = False  # replaying: check parameters and state after every update

    # ---- finiteness -----------------------------------------------------------------------------------------
    def _arrays(self, params: dict, state: dict) -> dict[str, Any]:
        """Parameters ('0.weight') and optimizer state arrays ('0.weight/m') by readable name."""
        named = {f"{i}.{name}": a for (i, name), a in params.items()}
        named.update({f"{i}.{name}/{slot}": a for (i, name), slots in state.items() for slot, a in slots.items()
                      if not isinstance(a, int)})
        return named

    def finite(self, params: dict, state: dict) -> bool:
        """True when every parameter and state array is finite (one reduction per array, one host read)."""
        xp, ok = self.xp, None
        for a in self._arrays(params, state).values():
            flag = xp.all(xp.isfinite(a))
            ok = flag if ok is None else ok & flag
        return True if ok is None else host.to_bool(ok)

    def non_finite(self, params: dict, state: dict) -> list[str]:
        """Names of the arrays holding nan or inf (for messages; one host read per array)."""
        xp = self.xp
        return [k for k, a in self._arrays(params, state).items() if not host.to_bool(xp.all(xp.isfinite(a)))]

    def current(self) -> dict:
        return {key: layer.params[name] for key, layer, name in self.slots}

    def mark(self, recorded: int) -> None:
        """Remember the model as it is now as the last verified point."""
        self.verified = Verified(self.current(), self.net.optimizer_state, self.net.epoch, recorded)

    def restore(self, params: dict, state: dict) -> None:
        for key, layer, name in self.slots:
            layer.params[name] = params[key]
        self.net.optimizer_state = state
        self.params, self.last_good = None, None

    # ---- one step -------------------------------------------------------------------------------------------
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
        unless the loss is finite (and, when replaying, the new parameters and state); then parameters and
        optimizer state change together."""
        value, out, yb, grads = self.gradients(xb, yb, batch)
        net, where = self.net, f"epoch {self.net.epoch + 1}, batch {batch + 1}"
        if not math.isfinite(value):
            if self.last_good is not None:  # the weights this batch saw came from a step that went wrong
                if not self.exact and not self.finite(*self.last_good):
                    raise Unverified
                self.restore(*self.last_good)
            raise FloatingPointError(
                f"fit: loss is {value} at {where}; the model is rolled back to the weights of the last step whose "
                "loss was finite (lower the learning rate or check the data)")
        params = self.params or self.current()
        new, state = self.optimizer.update(params, grads, net.optimizer_state)
        if self.exact and not self.finite(new, state):
            bad = self.non_finite(new, state)
            raise FloatingPointError(
                f"fit: the update at {where} made {len(bad)} parameter or optimizer-state array(s) non-finite "
                f"({', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}) although the loss was {value:g}; the model "
                "is rolled back to the weights before that update (lower the learning rate or check the data)")
        for key, layer, name in self.slots:
            layer.params[name] = new[key]
        self.last_good, self.params = (params, net.optimizer_state), new
        net.optimizer_state = state
        return value, out, yb

    # ---- the loop -------------------------------------------------------------------------------------------
    def run(self, X: Any, y: Any, *, epochs: int, size: int, shuffle: bool, names: list[str],
            validate: Callable[[], dict[str, float]] | None, progress: Progress | None,
            sum_counts: Callable[[dict[str, float]], dict[str, float]] | None = None) -> History:
        """``epochs`` passes over (X, y) in batches of ``size``; records loss, ``names`` metrics and (with
        ``validate``) 'val_*' each epoch in the returned History and in the model's ``history``."""
        net = self.net
        bad = self.non_finite(self.current(), net.optimizer_state)
        if bad:
            raise ValueError(f"fit: the model holds non-finite values before training in {', '.join(bad)}; "
                             "load finite weights (load_state_dict) first")
        self.mark(recorded=0)
        history, stop = History(), net.epoch + epochs
        loop = dict(X=X, y=y, size=size, shuffle=shuffle, stop=stop)
        try:
            self._epochs(**loop, history=history, names=names, validate=validate, progress=progress,
                         sum_counts=sum_counts)
            if not self.finite(self.current(), net.optimizer_state):
                raise Unverified
        except Unverified:
            self._replay(loop, history)
        return history

    def _replay(self, loop: dict[str, Any], history: History) -> None:
        """Rerun the steps since the last verified point with a check after every update; raises the
        FloatingPointError a per-step check would have raised, with the model and history as it would leave them."""
        start, net = self.verified, self.net
        self.restore(start.params, start.state)
        net.epoch, self.exact = start.epoch, True
        try:
            self._epochs(**loop, history=None, names=[], validate=None, progress=None, sum_counts=None)
        except FloatingPointError:
            history.truncate(start.recorded + net.epoch - start.epoch, net.history)
            raise
        finally:
            self.exact = False
        if not self.finite(self.current(), net.optimizer_state):  # only a non-deterministic backend gets here
            self.restore(start.params, start.state)
            net.epoch = start.epoch
            history.truncate(start.recorded, net.history)
            raise FloatingPointError("fit: parameters became non-finite and a replay did not reproduce where; the "
                                     f"model is rolled back to its weights at epoch {start.epoch}")

    def _epochs(self, X: Any, y: Any, *, size: int, shuffle: bool, stop: int, history: History | None,
                names: list[str], validate: Callable[[], dict[str, float]] | None, progress: Progress | None,
                sum_counts: Callable[[dict[str, float]], dict[str, float]] | None) -> None:
        """Train until the model's epoch counter reaches ``stop``; ``history`` None: replaying, record nothing."""
        net, p, xp, step = self.net, self.p, self.xp, self.step
        n = X.shape[0]
        per_sample = self.loss.reduction != "sum"
        threshold = metrics_.threshold(self.loss)
        seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
        whole = ((X, y),) if size >= n else None  # full-batch training: the same one batch every epoch
        while net.epoch < stop:
            total, sums = 0.0, dict.fromkeys(names)
            for b, (xb, yb) in enumerate(whole or batches(X, y, size, p, (seed, net.epoch) if shuffle else None)):
                value, out, yb = step(xb, yb, b)
                total += value * xb.shape[0] if per_sample else value
                for name in names:  # summed on the device, moved to the host once per epoch
                    count = metrics_.METRICS[name](out, yb, xp, threshold)
                    sums[name] = count if sums[name] is None else sums[name] + count
            net.epoch += 1
            if history is None:
                continue
            if (validate is not None or progress is not None) and not self.finite(self.current(),
                                                                                    net.optimizer_state):
                raise Unverified  # callbacks only ever see a finite model
            if validate is not None or progress is not None:
                self.mark(recorded=len(history))
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
                before = self.current()
                progress(net.epoch, record["loss"])
                self._after_callback(before, len(history))

    def _after_callback(self, before: dict, recorded: int) -> None:
        """A progress callback may have changed the weights: train on from them, once they are checked finite."""
        now = self.current()
        if all(now[k] is before[k] for k in now):
            return
        self.params, self.last_good = None, None
        if not self.finite(now, self.net.optimizer_state):
            bad = self.non_finite(now, self.net.optimizer_state)
            self.restore(before, self.net.optimizer_state)
            raise FloatingPointError(f"fit: the progress callback at epoch {self.net.epoch} set non-finite values "
                                     f"in {', '.join(bad)}; the model is restored to its weights before the callback")
        self.mark(recorded)
