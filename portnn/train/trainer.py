"""The one training loop: every fit runs here, eager or compiled, in one process or data-parallel.

A fit works on a ``TrainingState`` and commits it to the model at the end. It either completes, or raises
FloatingPointError with the model rolled back as described below, or (any other exception) leaves the model exactly
as it was before the call.

How often the host reads the device is the one thing that differs between backends (``portnn.array.policy``):
- per step, where a read is free (eager NumPy and the other CPU backends): the loss is read after each step and the
  update committed in Python. Parameters that turn non-finite while the loss stays finite (a dead ReLU hides an inf
  weight; Adam's second moment overflows) cost no per-step check: the model is verified before callbacks and at the
  end, and a failed verification replays the steps since the last verified point with the exact check below.
- per epoch (GPUs, compiled backends), per step only for a callback that wants steps, or once per run of full-batch
  epochs between reports (compiled): the steps run in ``Kernels``, committed on the device only when finite.
Either way a non-finite loss rolls the model back to the weights of the last step whose loss was finite, a
non-finite update leaves it before that update, each with its one message naming the epoch and batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from operator import methodcaller
from typing import Any

from ..array import host, tree
from ..array.compile import Compiler
from ..array.types import Array
from . import source
from .callbacks import Callback, EpochEvent, StepEvent, due, next_due, wants_steps
from .history import History
from .kernels import BATCH, CAPACITY, EPOCH, FAILED, KIND, LOSS, Kernels
from .parallel import Local, Parallel
from .plan import Plan
from .rates import Rates
from .source import Resident
from .state import TrainingState

Model = tuple[Any, Any, Any]  # (params, layer state, optimizer state)


class Failed(Exception):
    """Internal: training failed; the model keeps ``state`` and the fit raises FloatingPointError(``message``)."""

    def __init__(self, message: str, state: TrainingState) -> None:
        super().__init__(message)
        self.state = state


class Unverified(Exception):
    """Internal: the model may hold non-finite values since the last verified point; the loop replays from there."""


@dataclass(frozen=True)
class Verified:
    """A point of this fit where the model was checked finite: where a replay starts."""

    state: TrainingState
    recorded: int  # epochs this fit had recorded at that point
    steps: int
    prev: Model | None


def _since(start: int, epoch: int, _batch: int) -> int:
    """The row of ``epoch`` in the rows of a run of full-batch epochs from ``start``."""
    return epoch - start


def readable(s: TrainingState) -> dict[str, Array]:
    """The arrays of a state by readable name: '0.weight', '3.running_mean', 'optim/m/0.weight', 'optim/step'."""
    named = {**tree.flatten(s.params), **tree.flatten(s.state)}
    for slot, value in s.optimizer_state.items():
        named.update(tree.flatten(value, f"optim/{slot}/") if isinstance(value, list) else {f"optim/{slot}": value})
    return {k.replace("/.", "/"): v for k, v in named.items()}


def non_finite(s: TrainingState) -> list[str]:
    """Names of the arrays of ``s`` holding nan or inf (for messages; one host read per array)."""
    return [k for k, a in readable(s).items() if host.count_non_finite(host.to_numpy(a))]


class Trainer:
    """One fit of ``net``: its step, how it compiles and reads the host, the data-parallel strategy, the callbacks,
    the metrics and learning rates, and the validation to run after each epoch."""

    def __init__(self, net: Any, kernels: Kernels, *, parallel: Parallel, callbacks: list[Callback], rates: Rates,
                 validate: Callable[[TrainingState], dict[str, float]] | None, reads_per_step: bool) -> None:
        self.net, self.kernels, self.step = net, kernels, kernels.step
        self.compiler: Compiler = kernels.compiler
        self.parallel, self.local = parallel, isinstance(parallel, Local)
        self.callbacks, self.rates, self.validate, self.names = callbacks, rates, validate, kernels.names
        self.per_step = wants_steps(callbacks)
        self.host_steps = reads_per_step and not self.compiler.compiles  # commit in Python after a read per step
        self.xp = self.step.training.xp
        loss = self.step.loss
        assert loss is not None
        self.per_sample = loss.reduction != "sum"
        self.steps = 0  # steps of this fit
        self.prev: Model | None = None  # read-per-step: the model before the last update
        self.verified: Verified | None = None
        self.committed = False  # the model holds what this fit leaves (its end, or a rollback)

    # ---- the fit ------------------------------------------------------------------------------------------------
    def run(self, data: Resident, plan: Plan) -> History:
        """Train ``plan``'s epochs on ``data`` (rows on the device, or streamed from the host) and commit;
        FloatingPointError after committing the rolled-back model."""
        net = self.net
        start = net.training
        bad = self._bad(start)
        if bad:
            raise ValueError(f"fit: the model holds non-finite values before training in {', '.join(bad)}; load "
                             "finite weights (load_state_dict) first")
        history = self.history = History()
        s = start.owned()
        self.plan, self.data = plan, data
        try:
            try:
                self._verify(s, mark=True)
                s = self._epochs(s, history)
                self._verify(s)
            except Unverified:
                self._replay(history)
        except Failed as failure:
            net.training, self.committed = failure.state, True
            raise FloatingPointError(str(failure)) from None
        net.training, self.committed = s, True
        return history

    def _epochs(self, s: TrainingState, history: History) -> TrainingState:
        """Train until the plan's last epoch (or until a callback stops the fit)."""
        plan, e = self.plan, s.epoch - self.plan.first
        carry = None
        while e < plan.epochs:
            if self.host_steps:
                s, rows = self._host_epochs(s, e, self._report_at(e))
                count, failure = len(rows), None
            else:
                carry = carry or self.kernels.carry(self._model_dict(s))
                carry, s, rows, count, failure = self._device_epochs(carry, s, e)
            called = due(self.callbacks, e + count, plan.epochs)
            if called or self.validate is not None:
                self._verify(s)  # before validation and callbacks read the model
            self._record(s, rows, e, count, history)
            if failure is not None:
                raise failure
            e += count
            if called or self.validate is not None:
                s, changed = self._report(s, history, called, final=e == plan.epochs)
                carry = None if changed else carry
            if self.net.stop_training:
                break
        return s

    def _report_at(self, e: int) -> int:
        """The first epoch after this fit's epoch ``e`` whose end is reported (validation, a callback due, the end):
        the epochs before it run without reading the history or the model."""
        plan = self.plan
        if self.validate is not None or self.per_step:
            return e + 1
        return next_due(self.callbacks, e, plan.epochs)

    # ---- read per step: commit in Python ----------------------------------------------------------------------
    def _host_epochs(self, s: TrainingState, e: int, stop: int) -> tuple[TrainingState, list[Any]]:
        """This fit's epochs e .. stop - 1 with a host read of the loss after each step (the fast path of eager CPU
        training): (the state after them, each epoch's ((loss, rows) per step, metric counts))."""
        plan, step, names = self.plan, self.step, self.names
        params, state, opt = s.params, s.state, s.optimizer_state
        epoch, t = s.epoch, s.schedule_t
        # bound once: this loop is the hot path of small networks, where each attribute lookup shows
        gradients: Callable[..., Any] = step.gradients if self.local else self._gradients
        scheduled, per_step, local = self.rates.schedule is not None, self.per_step, self.local
        update = step.apply if step.clip_norm is not None or scheduled else step.optimizer.update  # type: ignore[union-attr]
        to_float, isfinite, full = host.to_float, math.isfinite, plan.per_epoch
        whole = (self.data.whole(),) if plan.full_batch else None  # full batch: the same one batch every epoch
        done: list[Any] = []
        try:
            for k in range(e, stop):
                count = full if plan.steps is None else plan.batches(k)
                lrs = self.rates.epoch(t, count) if scheduled else None
                losses: list[tuple[float, int]] = []
                counts = None  # the metric counts summed on the device, read once at the end of the epoch
                for b, (xb, yb) in enumerate(whole or source.batches(self.data, plan, k)):
                    if b == count:
                        break
                    if local:
                        value, grads, new_state, out = gradients(params, state, xb, yb, (epoch, b))
                        y_local = yb
                    else:
                        value, grads, new_state, out, y_local = gradients(params, state, xb, yb, (epoch, b))
                    loss = to_float(value)
                    if not isfinite(loss):
                        self._host_loss_failed(s.evolve(params=params, state=state, optimizer_state=opt,
                                                         epoch=epoch, schedule_t=t), epoch, b, loss)
                    new_params, new_opt = (update(params, grads, opt) if lrs is None
                                           else update(params, grads, opt, lrs[b]))
                    self.prev = (params, state, opt)
                    params, state, opt = new_params, new_state, new_opt
                    losses.append((loss, xb.shape[0]))
                    if names:
                        step_counts = self.xp.stack(self.kernels.counts(out, y_local))
                        counts = step_counts if counts is None else counts + step_counts
                    if per_step:
                        self.steps += 1
                        now = self._verify(s.evolve(params=params, state=state, optimizer_state=opt, epoch=epoch,
                                                    schedule_t=t), mark=True)
                        now = self._call(methodcaller("on_step", StepEvent(epoch + 1, b + 1, self.steps, loss,
                                                                           self.net)), now)
                        params, state, opt = now.params, now.state, now.optimizer_state
                done.append((losses, None if counts is None else host.to_numpy(counts).tolist()))
                epoch += 1
                if scheduled:
                    t += self.rates.advance(count)
            if not per_step:
                self.steps += sum(len(losses) for losses, _ in done)
        except (Failed, Unverified):
            self._record(s, done, e, len(done), self.history)  # the epochs completed before the failure
            raise
        return s.evolve(params=params, state=state, optimizer_state=opt, epoch=epoch, schedule_t=t), done

    def _host_loss_failed(self, s: TrainingState, epoch: int, batch: int, loss: float) -> None:
        """A non-finite loss read on the host: roll back to the model before the last update (Unverified when that
        model itself may not be finite: the replay then names the update that broke it)."""
        if self.prev is not None:
            s = replace(s, params=self.prev[0], state=self.prev[1], optimizer_state=self.prev[2])
            if self._bad(s):
                raise Unverified
        raise Failed(self._message(LOSS, epoch, batch, loss), replace(s, epoch=epoch))

    # ---- read per epoch or per report: commit on the device ---------------------------------------------------
    def _device_epochs(self, carry: dict[str, Any], s: TrainingState,
                       e: int) -> tuple[dict[str, Any], TrainingState, list[Any], int, Failed | None]:
        """One epoch, or a run of full-batch epochs up to the next report, through the kernels, then one host read:
        (carry, state, the host rows of its steps, epochs done, the failure to raise once they are recorded)."""
        plan, kernels, compiler = self.plan, self.kernels, self.compiler
        count, epoch = plan.batches(e), s.epoch
        if plan.full_batch and compiler.loops and self.local and not self.per_step and self.validate is None:
            return self._device_run(carry, s, e)
        lrs = self.rates.epoch(s.schedule_t, count)
        order = plan.order(e)
        order = host.indices(0, plan.n) if order is None else order
        rows: list[Any] = []
        done = 0
        whole = min(plan.whole, count)
        if (not plan.full_batch and whole > 1 and compiler.loops and self.local and not self.per_step
                and not self.data.streams):
            idx = self._input(host.full_batches(order[:plan.whole * plan.size], plan.size))
            carry, ys = kernels.function("epoch")(carry, self.data.X, self.data.y, self._input([epoch, whole]), idx,
                                                  self._rates(lrs, plan.whole))
            rows.append(ys[:whole, ...])
            done = whole
            self.steps += whole
        read: list[Any] = []
        for b in range(done, count):
            carry, row = self._device_step(carry, None if plan.full_batch else order[slice(*plan.span(b))], epoch,
                                           b, None if lrs is None else self._rates(lrs[b:b + 1], 1))
            rows.append(self.xp.reshape(row, (1, -1)))
            self.steps += 1
            if self.per_step:  # read each step, and call the callbacks with the committed model
                carry, s, values, failure = self._read(carry, s, rows.pop(), s.epoch, s.schedule_t, lambda _e, _b: 0)
                if failure is not None:
                    return carry, s, [], 0, failure
                read.append(values)
                after = self._call(methodcaller("on_step", StepEvent(epoch + 1, b + 1, self.steps,
                                                                     float(values[0, 0]), self.net)), s)
                if after is not s:
                    carry, s = self.kernels.carry(self._model_dict(after)), after
        pending = self.xp.concat(rows, axis=0) if rows else None
        carry, s, values, failure = self._read(carry, s, pending, epoch + 1,
                                               s.schedule_t + self.rates.advance(count), lambda _e, b: b)
        read += [values] if pending is not None else []
        return carry, s, ([] if failure else read), (0 if failure else 1), failure

    def _device_step(self, carry: dict[str, Any], order: Any, epoch: int, b: int,
                     lr: Array | None) -> tuple[dict[str, Any], Array]:
        """One step through the kernels on the rows ``order`` (a host index array; None: every row): local (the
        rows gathered inside the compiled step from device-resident data), or data-parallel around the
        Allreduce."""
        ctrl = self._input([epoch, b])
        if lr is not None:
            lr = lr[0]
        data = self.data
        if self.local and not data.streams:
            idx = None if order is None else self._input(order)
            return self.kernels.function("step")(carry, data.X, data.y, ctrl, idx, lr)
        xb, yb = data.whole() if order is None else data.rows(order)
        if self.local:
            return self.kernels.function("step")(carry, xb, yb, ctrl, None, lr)
        packed, new_state, out, y_local = self.kernels.function("gradients")(carry, xb, yb, ctrl)
        total = self.parallel.reduce(packed)
        return self.kernels.function("commit")(carry, total, new_state, out, y_local, ctrl, lr)

    def _device_run(self, carry: dict[str, Any], s: TrainingState,
                    e: int) -> tuple[dict[str, Any], TrainingState, list[Any], int, Failed | None]:
        """Full-batch epochs up to the next callback report as compiled runs of at most CAPACITY epochs."""
        plan = self.plan
        stop = next_due(self.callbacks, e, plan.epochs)
        rows: list[Any] = []
        done = e
        while done < stop:
            count, start, t = min(CAPACITY, stop - done), s.epoch, s.schedule_t
            lrs = None if self.rates.schedule is None else [self.rates.schedule.lr(self.rates.base, t + k)
                                                            for k in range(count)]
            X, y = self.data.whole()
            carry, ys = self.kernels.function("run")(carry, X, y, self._input([start, count]),
                                                     self._rates(lrs, CAPACITY))
            carry, s, values, failure = self._read(carry, s, ys[:count, ...], start + count,
                                                   t + self.rates.advance(1) * count, partial(_since, start))
            if failure is not None:
                completed = failure.state.epoch - start
                self.steps += completed
                return carry, s, [*rows, values[:completed]], done - e + completed, failure
            rows.append(values)
            self.steps += count
            done += count
        return carry, s, rows, stop - e, None

    def _read(self, carry: dict[str, Any], s: TrainingState, rows: Array | None, epoch: int, t: int,
              row_of: Callable[[int, int], int]) -> tuple[dict[str, Any], TrainingState, Any, Failed | None]:
        """The one host read after device steps (their rows and the record in one transfer): (carry, the state
        with the carry's model at ``epoch`` and schedule counter ``t``, the rows on the host, None), or on a failure
        the model the read-per-step path leaves (``row_of(epoch, batch)``: the failing step's row)."""
        values, flags = host.read_rows(rows, carry["record"])
        if flags[FAILED]:
            kind, failed_epoch, batch = int(flags[KIND]), int(flags[EPOCH]), int(flags[BATCH])
            loss = float(values[row_of(failed_epoch, batch), 0])
            completed = failed_epoch - s.epoch  # epochs of a run before the failing one
            kept = replace(s, **self._model_of(carry["prev"] if kind == LOSS else carry, s), epoch=failed_epoch,
                           schedule_t=s.schedule_t + self.rates.advance(1) * completed)
            if kind == LOSS:
                return carry, s, values, Failed(self._message(LOSS, failed_epoch, batch, loss), kept)
            bad, loss = self._which(kept, failed_epoch, batch)
            return carry, s, values, Failed(self._message(kind, failed_epoch, batch, loss, bad), kept)
        return carry, s.evolve(**self._model_of(carry, s), epoch=epoch, schedule_t=t), values, None

    def _model_of(self, source: dict[str, Any], s: TrainingState) -> dict[str, Any]:
        """The arrays of a carry as state fields, each dict in the key order of ``s``'s (a compiler may hand dicts
        back with sorted keys), copied where the carry goes on to a donating call."""
        model = {"params": source["params"], "state": source["state"], "optimizer_state": source["opt"]}
        if self.compiler.donate:
            model = self.compiler.copy_tree(model, self.xp, self.step.training.device)
        return tree.map(lambda _old, new: new, s.arrays(), model)

    def _which(self, s: TrainingState, epoch: int, batch: int) -> tuple[list[str], float]:
        """Rerun the failing step eagerly (deterministic: same batch, same keys) to name what went non-finite."""
        plan, step = self.plan, self.step
        xb, yb = self._batch(epoch - plan.first, batch)
        value, grads, new_state = self._gradients(s.params, s.state, xb, yb, (epoch, batch))[:3]
        lrs = self.rates.epoch(s.schedule_t, batch + 1)
        params, opt = step.apply(s.params, grads, s.optimizer_state, None if lrs is None else lrs[batch])
        loss = host.to_float(value)
        return non_finite(replace(s, params=params, state=new_state, optimizer_state=opt)), loss

    # ---- shared by both paths -----------------------------------------------------------------------------------
    def _gradients(self, params: Any, state: Any, xb: Array, yb: Array,
                   key: tuple[Any, Any]) -> tuple[Array, Any, Any, Array, Array]:
        """(global loss, gradients, new state, this process's output and targets) of one batch."""
        if self.local:
            return (*self.step.gradients(params, state, xb, yb, key), yb)
        packed, new_state, out, y_local = self.parallel.local(self.step, params, state, xb, yb, key, None)
        value, grads = self.parallel.unpack(self.parallel.reduce(packed), params, self.step)
        return value, grads, new_state, out, y_local

    def _batch(self, e: int, b: int) -> tuple[Array, Array]:
        """Batch ``b`` of this fit's epoch ``e`` (to rerun one step)."""
        plan = self.plan
        if plan.full_batch:
            return self.data.whole()
        order = plan.order(e)
        order = host.indices(0, plan.n) if order is None else order
        return self.data.rows(order[slice(*plan.span(b))])

    def _input(self, values: Any) -> Array:
        return self.compiler.inputs(host.values(values, "int64"), self.xp, self.step.training.device,
                                    self.step.placement.index_dtype)

    def _rates(self, lrs: list[float] | None, size: int) -> Array | None:
        """A schedule's rates padded to ``size`` as an input (the model's dtype: float64 where it trains in
        float64; None: the optimizer's own rate)."""
        if lrs is None:
            return None
        p = self.step.placement
        return self.compiler.inputs(host.padded(lrs, size), self.xp, p.device, p.wide_dtype)

    def _model_dict(self, s: TrainingState) -> dict[str, Any]:
        return {"params": s.params, "state": s.state, "opt": s.optimizer_state}

    def _bad(self, s: TrainingState) -> list[str]:
        """Names of non-finite arrays of ``s`` (empty when all are finite: one host read in that case)."""
        ctx = self.step.training
        if host.to_bool(tree.finite(ctx.xp, ctx.device, s.params, s.state, s.optimizer_state)):
            return []
        return non_finite(s)

    def _record(self, s: TrainingState, rows: list[Any], e: int, count: int, history: History) -> None:
        """Append this fit's epochs e .. e + count - 1 to the history, from the read-per-step path ((loss, rows) of
        each step and the epoch's metric counts, per epoch) or from the device rows [loss, counts...] (one per step,
        or one per full-batch epoch of a run), the losses summed on the host in float64 alike."""
        plan, names = self.plan, self.names
        if not count:
            return
        if not self.host_steps and plan.full_batch and plan.steps is None and self.local:
            # a row per epoch of n rows: the columns at once, in the float64 arithmetic of the loop below
            values, n = host.concat(rows, "float64"), plan.n
            loss = (0.0 + values[:, 0] * n) / n if self.per_sample else 0.0 + values[:, 0]
            columns = {"loss": loss.tolist(), **{m: (values[:, 1 + j] / n).tolist() for j, m in enumerate(names)}}
        else:
            columns = self._columns(rows, e)
        if self.validate is not None:  # one epoch at a time (validation reads the model of that epoch)
            columns.update({f"val_{m}": [v] for m, v in self.validate(s).items()})
        history.record_many(columns, s.history)

    def _columns(self, rows: list[Any], e: int) -> dict[str, list[float]]:
        """The history columns of the epochs from ``e`` in ``rows`` (see ``_record``), epoch by epoch."""
        plan, names = self.plan, self.names
        if self.host_steps:
            epochs = rows
        else:
            values = host.concat(rows)  # read with the record: one transfer per read
            if plan.full_batch:  # a row per epoch
                epochs = [([(float(r[0]), plan.n)], r[1:].tolist()) for r in values]
            else:
                sizes = [plan.span(b)[1] - plan.span(b)[0] for b in range(values.shape[0])]
                epochs = [([(float(v), n) for v, n in zip(values[:, 0], sizes, strict=True)],
                           values[:, 1:].sum(axis=0).tolist())]
        columns: dict[str, list[float]] = {"loss": [], **{m: [] for m in names}}
        column, per_sample, whole = columns["loss"], self.per_sample, plan.n
        for k, (losses, counts) in enumerate(epochs):
            n = whole if plan.steps is None else plan.rows(e + k)
            total = 0.0
            for loss, rows_seen in losses:
                total += loss * rows_seen if per_sample else loss
            column.append(total / n if per_sample else total)
            if names:
                summed = self.parallel.sum_counts(dict(zip(names, counts, strict=True)))
                for m in names:
                    columns[m].append(summed[m] / n)
        return columns

    def _report(self, s: TrainingState, history: History, called: list[Callback],
                final: bool) -> tuple[TrainingState, bool]:
        """Run the callbacks due now (the model was verified); mark the point a replay would start from."""
        if called:
            record = {k: v[-1] for k, v in history.metrics.items()}
            after = self._call(methodcaller("on_epoch", EpochEvent(s.epoch, record, self.net, final)), s, called)
            changed, s = after is not s, after
        else:
            changed = False
        self._verify(s, mark=True, check=False)
        return s, changed

    def _verify(self, s: TrainingState, *, mark: bool = False, check: bool = True) -> TrainingState:
        """Check the model before anyone reads it (read-per-step path: Unverified if it is not finite); ``mark``:
        remember it as the point a replay starts from."""
        if check and self.host_steps and self._bad(s):
            raise Unverified
        if mark:
            self.verified = Verified(s, len(self.history), self.steps, self.prev)
        return s

    def _call(self, event: Callable[[Callback], None], s: TrainingState,
              callbacks: list[Callback] | None = None) -> TrainingState:
        """Run ``event`` on the callbacks with the model holding ``s``; if one changed the arrays, check them and
        train on from them (FloatingPointError, with the model as before the callback, if they are not finite)."""
        net = self.net
        before = s.with_arrays(tree.map(lambda a: a, s.arrays()))  # its own containers: a callback may edit s's
        net.training = s
        for callback in self.callbacks if callbacks is None else callbacks:
            event(callback)
        after = net.training
        if [id(a) for a in tree.leaves(after.arrays())] == [id(a) for a in tree.leaves(before.arrays())]:
            return s
        bad = self._bad(after)
        if bad:
            raise Failed(f"fit: a callback at epoch {s.epoch} set non-finite values in {', '.join(bad)}; the model is "
                         "restored to its weights before the callback", before)
        self.prev = None
        return after

    def _replay(self, history: History) -> TrainingState:
        """Rerun the steps since the last verified point with the exact device-side check (eagerly: the same
        arithmetic as the steps being replayed); raises the failure a per-step check would have raised, with the
        model and history it would leave."""
        start = self.verified
        assert start is not None
        replayer = Trainer(self.net, Kernels(self.step, Compiler(), [], self.parallel), parallel=self.parallel,
                           callbacks=[], rates=self.rates, validate=None, reads_per_step=False)
        replayer.plan, replayer.data = self.plan, self.data
        s = start.state
        carry = replayer.kernels.carry(self._model_dict(s))
        if start.prev is not None:
            carry["prev"] = dict(zip(("params", "state", "opt"), start.prev, strict=True))
        e = s.epoch - self.plan.first
        while e < self.plan.epochs:
            carry, s, _, count, failure = replayer._device_epochs(carry, s, e)
            if failure is not None:
                history.truncate(start.recorded + failure.state.epoch - start.state.epoch, failure.state.history)
                raise failure
            e += count
        history.truncate(start.recorded, start.state.history)
        raise Failed("fit: parameters became non-finite and a replay did not reproduce where; the model is rolled "
                     f"back to its weights at epoch {start.state.epoch}", start.state)

    @staticmethod
    def _message(kind: int, epoch: int, batch: int, loss: float, bad: list[str] | None = None) -> str:
        """The one message of each kind of failure."""
        where = f"epoch {epoch + 1}, batch {batch + 1}"
        if kind == LOSS:
            return (f"fit: loss is {loss} at {where}; the model is rolled back to the weights of the last step whose "
                    "loss was finite (lower the learning rate or check the data)")
        bad = bad or []
        return (f"fit: the update at {where} made {len(bad)} array(s) non-finite ({', '.join(bad[:4])}"
                f"{', ...' if len(bad) > 4 else ''}) although the loss was {loss:g}; the model is rolled back to the "
                "weights before that update (lower the learning rate or check the data)")
