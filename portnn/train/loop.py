"""The loop around the pure step: batches and epochs, the history, callbacks, and the guarantee that ``fit`` never
leaves the model with non-finite parameters, state or optimizer state.

A non-finite loss stops training at once (FloatingPointError naming the epoch and batch) with the weights of the
last step whose loss was finite. Parameters that turn non-finite while the loss stays finite (a saturated sigmoid
or a dead ReLU hides an inf weight; Adam's second moment can overflow) cost no per-step check: the model is verified
at the end of the fit and before every callback, and if a verification fails, the steps since the last verified
point are replayed deterministically with a check after every update. The error then names the first update that
went non-finite and the model is rolled back to the weights before it, exactly as a per-step check would leave it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

from ..array import host
from ..array.types import Array
from .batches import batches
from .callbacks import Callback, EpochEvent, StepEvent, due, wants_steps
from .history import History
from .parallel import Local, Parallel
from .rates import Rates
from .step import Step, leaves
from .totals import Totals


@dataclass(frozen=True)
class Verified:
    """A point of this fit where the model was checked finite: where a replay starts."""

    params: Any
    state: Any
    opt_state: Any
    epoch: int
    schedule_t: int  # the model's schedule counter at that point
    recorded: int  # epochs this fit had recorded in its History at that point


class Unverified(Exception):
    """Internal: the model may hold non-finite values since the last verified point; the loop replays from there."""


def named_arrays(net: Any, params: Any = None, state: Any = None, opt_state: Any = None) -> dict[str, Array]:
    """Parameters ('0.weight'), layer state ('3.running_mean') and optimizer state ('optim/m/0.weight', 'optim/step')
    of ``net`` (or of the given trees) by readable name."""
    params = net.params if params is None else params
    state = net.state if state is None else state
    opt_state = net.optimizer_state if opt_state is None else opt_state
    named = {f"{i}.{n}": a for tree in (params, state) for i, layer in enumerate(tree) for n, a in layer.items()}
    for slot, value in opt_state.items():
        if isinstance(value, list):
            named.update({f"optim/{slot}/{i}.{n}": a for i, layer in enumerate(value) for n, a in layer.items()})
        else:
            named[f"optim/{slot}"] = value
    return named


class Trainer:
    """One ``fit``: the model, its step, the data-parallel strategy and the callbacks."""

    def __init__(self, net: Any, step: Step, parallel: Parallel, callbacks: list[Callback], rates: Rates) -> None:
        self.net, self.step, self.parallel, self.callbacks, self.rates = net, step, parallel, callbacks, rates
        self.per_step = wants_steps(callbacks)
        self.local = isinstance(parallel, Local)
        assert step.optimizer is not None
        self.update = step.apply if step.clip_norm is not None else step.optimizer.update
        self.last_good: tuple[Any, Any, Any] | None = None  # (params, state, optimizer state) before the last update
        self.verified: Verified | None = None
        self.exact = False  # replaying: check the model after every update
        self.steps = 0
        self.first = 0  # the model's epoch when this fit started

    # ---- finiteness -----------------------------------------------------------------------------------------
    def finite(self, params: Any, state: Any, opt_state: Any) -> bool:
        return host.to_bool(self.step.finite(params, state, opt_state))

    def non_finite(self, params: Any = None, state: Any = None, opt_state: Any = None) -> list[str]:
        """Names of the arrays holding nan or inf (for messages; one host read per array)."""
        xp = self.step.training.xp
        return [k for k, a in named_arrays(self.net, params, state, opt_state).items()
                if xp.isdtype(a.dtype, "real floating") and not host.to_bool(xp.all(xp.isfinite(a)))]

    def model_finite(self) -> bool:
        net = self.net
        return self.finite(net.params, net.state, net.optimizer_state)

    def mark(self, recorded: int) -> None:
        """Remember the model as it is now as the last verified point."""
        net = self.net
        self.verified = Verified(net.params, net.state, net.optimizer_state, net.epoch, net.schedule_t, recorded)

    def restore(self, params: Any, state: Any, opt_state: Any) -> None:
        self.net.params, self.net.state, self.net.optimizer_state = params, state, opt_state
        self.last_good = None

    # ---- one step -------------------------------------------------------------------------------------------
    def train_step(self, xb: Array, yb: Array, batch: int, lr: float | None = None) -> tuple[float, Array, Array]:
        """One step on one batch: (loss, this rank's output, the targets it was compared with). The model changes
        only when the loss (and, replaying, the new model) is finite; then everything changes together."""
        net, step = self.net, self.step
        params, state, opt_state = net.params, net.state, net.optimizer_state
        if self.local:
            value, grads, new_state, out = step.gradients(params, state, xb, yb, (net.epoch, batch))
            y_local = yb
        else:
            value, grads, new_state, out, y_local = self.parallel.gradients(step, params, state, xb, yb,
                                                                            (net.epoch, batch))
        value = host.to_float(value)
        if not math.isfinite(value):
            if self.last_good is not None:  # the weights this batch saw came from a step that went wrong
                if not self.exact and not self.finite(*self.last_good):
                    raise Unverified
                self.restore(*self.last_good)
            raise FloatingPointError(
                f"fit: loss is {value} at epoch {net.epoch + 1}, batch {batch + 1}; the model is rolled back to the "
                "weights of the last step whose loss was finite (lower the learning rate or check the data)")
        # step.apply without clipping: one call less; lr only with a schedule (an optimizer of 0.1.0 takes none)
        new_params, new_opt = (self.update(params, grads, opt_state) if lr is None
                               else self.update(params, grads, opt_state, lr))
        if self.exact and not self.finite(new_params, new_state, new_opt):
            bad = self.non_finite(new_params, new_state, new_opt)
            raise FloatingPointError(
                f"fit: the update at epoch {net.epoch + 1}, batch {batch + 1} made {len(bad)} array(s) non-finite "
                f"({', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}) although the loss was {value:g}; the model "
                "is rolled back to the weights before that update (lower the learning rate or check the data)")
        self.last_good = (params, state, opt_state)
        net.params, net.state, net.optimizer_state = new_params, new_state, new_opt
        return value, out, y_local

    # ---- the loop -------------------------------------------------------------------------------------------
    def run(self, X: Array, y: Array, *, epochs: int, size: int, shuffle: bool, names: list[str],
            validate: Callable[[], dict[str, float]] | None, steps: int | None = None) -> History:
        """``epochs`` passes over (X, y) in batches of ``size`` (the last one cut short after ``steps`` steps in
        all, when given); records loss, ``names`` metrics and (with ``validate``) 'val_*' each epoch in the returned
        History and in the model's ``history``. A callback that sets ``model.stop_training`` ends the fit."""
        net = self.net
        if not self.model_finite():
            bad = self.non_finite()
            raise ValueError(f"fit: the model holds non-finite values before training in {', '.join(bad)}; "
                             "load finite weights (load_state_dict) first")
        self.mark(recorded=0)
        history = History()
        self.first = net.epoch  # callbacks run by epoch of this fit (Callback.every)
        loop = {"X": X, "y": y, "size": size, "shuffle": shuffle, "stop": net.epoch + epochs, "steps": steps}
        try:
            self._epochs(**loop, history=history, report=True, names=names, validate=validate)
            if not self.model_finite():
                raise Unverified
        except Unverified:
            self._replay(loop, history)
        return history

    def _replay(self, loop: dict[str, Any], history: History) -> None:
        """Rerun the steps since the last verified point with a check after every update; raises the
        FloatingPointError a per-step check would have raised, with the model and history as it would leave them."""
        start, net = self.verified, self.net
        assert start is not None  # run() marks the start before any step
        self.restore(start.params, start.state, start.opt_state)
        net.epoch, net.schedule_t, self.exact = start.epoch, start.schedule_t, True
        try:
            self._epochs(**loop, history=History(), report=False, names=[], validate=None)
        except FloatingPointError:
            history.truncate(start.recorded + net.epoch - start.epoch, net.history)
            raise
        finally:
            self.exact = False
        if not self.model_finite():  # only a non-deterministic backend gets here
            self.restore(start.params, start.state, start.opt_state)
            net.epoch, net.schedule_t = start.epoch, start.schedule_t
            history.truncate(start.recorded, net.history)
            raise FloatingPointError("fit: parameters became non-finite and a replay did not reproduce where; the "
                                     f"model is rolled back to its weights at epoch {start.epoch}")

    def _epochs(self, X: Array, y: Array, *, size: int, shuffle: bool, stop: int, steps: int | None,
                history: History, report: bool, names: list[str],
                validate: Callable[[], dict[str, float]] | None) -> None:
        """Train until the model's epoch counter reaches ``stop``; ``report`` False: replaying, report nothing."""
        net, p, loss = self.net, self.step.training, self.step.loss
        assert loss is not None
        n = X.shape[0]
        seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
        whole = ((X, y),) if size >= n else None  # full-batch training: the same one batch every epoch
        per_step = report and self.per_step
        totals = Totals(loss, names, p.xp)
        train_step, add = self.train_step, totals.add
        per_epoch = 1 if whole else -(-n // size)
        while net.epoch < stop:
            totals.reset()
            order = whole or batches(X, y, size, net.placement, (seed, net.epoch) if shuffle else None)
            # every epoch before a fit's last is whole, so the steps left follow from the epoch (also in a replay)
            count = per_epoch if steps is None else min(per_epoch, steps - (net.epoch - self.first) * per_epoch)
            rates = self.rates.epoch(net.schedule_t, count)
            rows = 0
            for b, (xb, yb) in enumerate(order):
                if b == count:
                    break
                value, out, y_local = train_step(xb, yb, b, rates[b] if rates is not None else None)
                add(value, xb.shape[0], out, y_local)
                rows += xb.shape[0]
                self.steps += 1
                if per_step:
                    self._verified(history)
                    step_event = StepEvent(net.epoch + 1, b + 1, self.steps, value, net)
                    self._call(methodcaller("on_step", step_event), history)
            net.epoch += 1
            net.schedule_t += self.rates.advance(count)
            if not report:
                continue
            called = due(self.callbacks, net.epoch - self.first, stop - self.first)
            if validate is not None or called:
                self._verified(history)
            record = totals.result(n if count == per_epoch else rows, self.parallel.sum_counts)
            if validate is not None:
                record.update({f"val_{k}": v for k, v in validate().items()})
            history.record(record, net.history)
            if called:
                epoch_event = EpochEvent(net.epoch, record, net, final=net.epoch == stop)
                self._call(methodcaller("on_epoch", epoch_event), history, called)
                if net.stop_training:
                    return

    def _verified(self, history: History) -> None:
        """Check the model before a callback sees it (Unverified if it fails) and mark it."""
        if not self.model_finite():
            raise Unverified
        self.mark(len(history))

    def _call(self, event: Callable[[Callback], None], history: History,
              callbacks: list[Callback] | None = None) -> None:
        """Run ``event`` on the callbacks (all by default); if one changed the weights, check them and train on."""
        net = self.net
        before = ([dict(d) for d in net.params], [dict(d) for d in net.state], net.optimizer_state)
        ids = [id(a) for a in leaves(*before)]
        for callback in self.callbacks if callbacks is None else callbacks:
            event(callback)
        if [id(a) for a in leaves(net.params, net.state, net.optimizer_state)] == ids:
            return
        self.last_good = None
        if not self.model_finite():
            bad = self.non_finite()
            self.restore(*before)
            raise FloatingPointError(f"fit: a callback at epoch {net.epoch} set non-finite values in "
                                     f"{', '.join(bad)}; the model is restored to its weights before the callback")
        self.mark(len(history))
