"""Training compiled by the backend (``jax.jit``, ``torch.compile``; ``portnn/array/compile.py``): the pure step runs
inside compiled functions, losses and metric counts are summed on the device, and the host reads them when the loop
reports (once per epoch; every step only for a callback that asks for steps; once per fit for full-batch training
with nothing to report in between, whose epochs then run as one compiled loop). The same loop runs eagerly, step by
step, on devices whose backend file says to read once per epoch (``[compile] epoch_reads``: the GPUs).

The rollback keeps its meaning exactly, without a host read per step: each step computes ``ok`` (finite loss and
finite new parameters, state and optimizer state) on the device and commits with ``where(ok, new, old)``; a carried
``failed`` flag makes every later step a no-op and records the first failure (its kind, epoch, batch and loss);
the model before the last committed update is carried too. At the next read the loop raises the FloatingPointError
eager training raises, naming the same epoch and batch, with the model eager training leaves.

Every compiled call takes a small int64 control vector (epoch, batch, reset) and returns the carry and its float64
record (failed, kind, epoch, batch, bad loss, last loss, total, metric counts): one input and one output transfer
per call, accumulators reset inside the compiled code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..array import host
from ..array import random as host_random
from ..array.compile import Compiler
from ..array.types import Array
from ..nn import metrics
from .callbacks import Callback, EpochEvent, StepEvent, due, wants_steps
from .history import History
from .loop import named_arrays
from .rates import Rates
from .step import Step, leaves, where_tree

LOSS, UPDATE = 1, 2  # kinds of failure
RECORD = ("failed", "kind", "epoch", "batch", "bad", "last", "total")  # then one count per metric
FAILED, KIND, EPOCH, BATCH, BAD, LAST, TOTAL = range(len(RECORD))


class CompiledTrainer:
    """One compiled ``fit`` configuration: the model, its step, the compiler, the callbacks, the metrics counted;
    kept by the model so that a later fit of the same configuration reuses its compiled functions."""

    def __init__(self, net: Any, step: Step, compiler: Compiler, callbacks: list[Callback], names: list[str]) -> None:
        self.net, self.step, self.compiler, self.callbacks, self.names = net, step, compiler, callbacks, names
        self.per_step = wants_steps(callbacks)
        ctx = step.training
        self.xp, self.device, self.dtype = ctx.xp, ctx.device, ctx.dtype
        loss = step.loss
        assert loss is not None
        self.per_sample, self.threshold = loss.reduction != "sum", metrics.threshold(loss)
        self.steps = 0
        self.rates = Rates(None, 0.0)  # the fit's learning-rate schedule (set by the model for every fit)
        self._functions: dict[str, Callable[..., Any]] = {}

    # ---- the carry ------------------------------------------------------------------------------------------
    def _scalar(self, value: Any, dtype: Any) -> Array:
        return self.xp.asarray(value, dtype=dtype, device=self.device)

    def _carry(self) -> dict[str, Any]:
        """The model (copied where the carry is donated) with the model before the last update, and the record."""
        net, xp, compiler = self.net, self.xp, self.compiler
        model = {"params": net.params, "state": net.state, "opt": net.optimizer_state}
        if compiler.donate:
            model = compiler.copy_tree(model, xp, self.device)
        record = xp.zeros((len(RECORD) + len(self.names),), dtype=xp.float64, device=self.device)
        prev = compiler.copy_tree(model, xp, self.device) if compiler.donate else model
        return {**model, "prev": prev, "record": record}

    def _control(self, epoch: int, batch: int, reset: bool) -> Any:
        return self.compiler.inputs(host.values([epoch, batch, int(reset)], "int64"), self.xp, self.device)

    # ---- the compiled functions -------------------------------------------------------------------------------
    def _reset(self, carry: dict[str, Any], reset: Array) -> dict[str, Any]:
        """The carry with its per-epoch accumulators (total, counts) zeroed where ``reset`` holds."""
        xp = self.xp
        keep = xp.arange(carry["record"].shape[0], dtype=xp.int64, device=self.device) < TOTAL
        return {**carry, "record": xp.where(reset & ~keep, 0.0, carry["record"])}

    def _body(self, carry: dict[str, Any], xb: Array, yb: Array, epoch: Array, batch: Array,
              lr: Array | None) -> dict[str, Any]:
        """One training step on the device at rate ``lr`` (None: the optimizer's), committed only when finite (see
        the module docstring)."""
        xp, step, f64 = self.xp, self.step, self.xp.float64
        params, state, opt, record = carry["params"], carry["state"], carry["opt"], carry["record"]
        value, grads, new_state, out = step.gradients(params, state, xb, yb, (epoch, batch))
        new_params, new_opt = step.apply(params, grads, opt, lr)
        loss_ok = xp.isfinite(value)
        failed = record[FAILED] != 0.0
        ok = ~failed & loss_ok & step.finite(new_params, new_state, new_opt)
        first = ~failed & ~ok
        loss = xp.astype(value, f64)
        rows = float(xb.shape[0]) if self.per_sample else 1.0
        counts = [record[TOTAL + 1 + i] + xp.where(ok, xp.astype(metrics.METRICS[n](out, yb, xp, self.threshold), f64),
                                                   0.0) for i, n in enumerate(self.names)]
        # one stacked vector, so that the compiler fuses the bookkeeping into one kernel
        kind = xp.where(loss_ok, xp.asarray(float(UPDATE), dtype=f64, device=self.device), float(LOSS))
        record = xp.stack([
            xp.astype(failed | ~ok, f64), xp.where(first, kind, record[KIND]),
            xp.where(first, xp.astype(epoch, f64), record[EPOCH]),
            xp.where(first, xp.astype(batch, f64), record[BATCH]),
            xp.where(first, loss, record[BAD]), loss, record[TOTAL] + xp.where(ok, loss * rows, 0.0), *counts])
        return {
            "params": where_tree(xp, ok, new_params, params), "state": where_tree(xp, ok, new_state, state),
            "opt": where_tree(xp, ok, new_opt, opt),
            "prev": where_tree(xp, ok, {"params": params, "state": state, "opt": opt}, carry["prev"]),
            "record": record,
        }

    def _report(self, carry: dict[str, Any]) -> Array:
        """What the host reads: the record (failed, kind, epoch, batch, bad loss, last loss, total, counts)."""
        return carry["record"]

    def _function(self, name: str) -> Callable[..., Any]:
        """The compiled function ``name``, built once: 'full' one full-batch step, 'batch' one step on the rows
        ``idx``, 'epoch' a scan over the rows of ``idx`` (one epoch), 'epochs' a scan of full-batch epochs. Each
        returns (carry, report)."""
        if name in self._functions:
            return self._functions[name]
        xp, compiler = self.xp, self.compiler

        # ``lrs``: a schedule's rate of each step (float64), or None: the optimizer's own rate
        def full(carry: Any, X: Array, y: Array, ctrl: Array, lrs: Array | None) -> Any:
            lr = None if lrs is None else lrs[0]
            carry = self._body(self._reset(carry, ctrl[2] == 1), X, y, ctrl[0], ctrl[1], lr)
            return carry, self._report(carry)

        def one(carry: Any, X: Array, y: Array, ctrl: Array, idx: Array, lrs: Array | None) -> Any:
            carry = self._reset(carry, ctrl[2] == 1)
            carry = self._body(carry, xp.take(X, idx, axis=0), xp.take(y, idx, axis=0), ctrl[0], ctrl[1],
                               None if lrs is None else lrs[0])
            return carry, self._report(carry)

        def epoch_scan(carry: Any, X: Array, y: Array, ctrl: Array, idx: Array, lrs: Array | None) -> Any:
            def scanned(c: Any, batch: tuple[Array, ...]) -> tuple[Any, Any]:
                number, rows, *lr = batch
                return self._body(c, xp.take(X, rows, axis=0), xp.take(y, rows, axis=0), ctrl[0], number,
                                  lr[0] if lr else None), None

            numbers = xp.arange(idx.shape[0], dtype=xp.int64, device=self.device)
            xs = (numbers, idx) if lrs is None else (numbers, idx, lrs)
            carry = compiler.scan(scanned, self._reset(carry, ctrl[2] == 1), xs, idx.shape[0])[0]
            return carry, self._report(carry)

        def epochs_scan(carry: Any, X: Array, y: Array, _ctrl: Array, epochs: Array, lrs: Array | None) -> Any:
            def scanned(c: Any, e_lr: tuple[Array, ...]) -> tuple[Any, Any]:
                e, *lr = e_lr
                c = self._body(self._reset(c, e == e), X, y, e, e * 0, lr[0] if lr else None)
                return c, c["record"][TOTAL:]  # the epoch's total and counts

            xs = (epochs,) if lrs is None else (epochs, lrs)
            carry, sums = compiler.scan(scanned, carry, xs, epochs.shape[0])
            return carry, xp.concat([self._report(carry), xp.reshape(sums, (-1,))])  # one transfer

        table: dict[str, Callable[..., Any]] = {"full": full, "batch": one, "epoch": epoch_scan,
                                                "epochs": epochs_scan}
        self._functions[name] = compiler.jit(table[name], donate=(0,))
        return self._functions[name]

    # ---- host reads -------------------------------------------------------------------------------------------
    def _decode(self, values: Any) -> dict[str, Any]:
        return {"failed": bool(values[FAILED]), "kind": int(values[KIND]), "epoch": int(values[EPOCH]),
                "batch": int(values[BATCH]), "bad": float(values[BAD]), "last": float(values[LAST]),
                "total": float(values[TOTAL]),
                "counts": {n: float(values[TOTAL + 1 + i]) for i, n in enumerate(self.names)}}

    def _commit(self, carry: dict[str, Any], copy: bool) -> None:
        """Give the model the carry's arrays (copies when the carry goes on to a donating call), each layer's dict
        in its own key order again (a compiler may hand dicts back with sorted keys)."""
        model = {k: carry[k] for k in ("params", "state", "opt")}
        if copy:
            model = self.compiler.copy_tree(model, self.xp, self.device)
        net = self.net
        net.params = _ordered(model["params"], self.order)
        net.state = _ordered(model["state"], self.state_order)
        net.optimizer_state = {k: _ordered(v, self.order) if isinstance(v, list) else v
                               for k, v in model["opt"].items()}

    def _record(self, read: dict[str, Any], n: int) -> dict[str, float]:
        record = {"loss": read["total"] / n if self.per_sample else read["total"]}
        record.update({name: read["counts"][name] / n for name in self.names})
        return record

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, X: Array, y: Array, *, epochs: int, size: int, shuffle: bool,
            validate: Callable[[], dict[str, float]] | None, steps: int | None = None) -> History:
        """As the eager ``Trainer.run``: ``epochs`` passes (the last cut short after ``steps`` steps in all)."""
        net, xp = self.net, self.xp
        if not host.to_bool(self.step.finite(net.params, net.state, net.optimizer_state)):
            bad = [k for k, a in named_arrays(net).items() if xp.isdtype(a.dtype, "real floating")
                   and not host.to_bool(xp.all(xp.isfinite(a)))]
            raise ValueError(f"fit: the model holds non-finite values before training in {', '.join(bad)}; "
                             "load finite weights (load_state_dict) first")
        history, n = History(), X.shape[0]
        self.steps = 0
        self.order = [list(layer) for layer in net.params]
        self.state_order = [list(layer) for layer in net.state]
        if epochs == 0:
            return history
        carry = self._carry()
        if size >= n and self.compiler.scans and not self.per_step and validate is None:
            return self._full_batch(carry, X, y, epochs, history)
        seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
        first, stop = net.epoch, net.epoch + epochs
        per_epoch = -(-n // size)
        while net.epoch < stop:
            count = per_epoch if steps is None else min(per_epoch, steps - (net.epoch - first) * per_epoch)
            carry, report = self._epoch(carry, X, y, size, (seed, net.epoch) if shuffle else None, count)
            read = self._decode(host.to_numpy(report))
            if read["failed"]:
                self._fail(carry, read, X, y, size, seed if shuffle else None)
            net.epoch += 1
            net.schedule_t += self.rates.advance(count)
            last = net.epoch == stop
            self._commit(carry, copy=self.compiler.donate and not last)
            record = self._record(read, n if count == per_epoch else min(n, count * size))
            if validate is not None:
                record.update({f"val_{k}": v for k, v in validate().items()})
            history.record(record, net.history)
            carry = self._call(due(self.callbacks, net.epoch - first, epochs), record, carry, last)
            if net.stop_training:
                break
        return history

    def _call(self, called: list[Callback], record: dict[str, float], carry: dict[str, Any],
              final: bool) -> dict[str, Any]:
        """Run the callbacks due now (the model holds this epoch's weights); if one changed the weights, check them
        (restoring the model and raising as eager training does when they are not finite) and train on from them."""
        if not called:
            return carry
        net = self.net
        before = ([dict(d) for d in net.params], [dict(d) for d in net.state], net.optimizer_state)
        ids = [id(a) for a in leaves(*before)]
        for c in called:
            c.on_epoch(EpochEvent(net.epoch, record, net, final))
        if [id(a) for a in leaves(net.params, net.state, net.optimizer_state)] == ids:
            return carry
        if not host.to_bool(self.step.finite(net.params, net.state, net.optimizer_state)):
            bad = [k for k, a in named_arrays(net).items() if self.xp.isdtype(a.dtype, "real floating")
                   and not host.to_bool(self.xp.all(self.xp.isfinite(a)))]
            net.params, net.state, net.optimizer_state = before
            raise FloatingPointError(f"fit: a callback at epoch {net.epoch} set non-finite values in "
                                     f"{', '.join(bad)}; the model is restored to its weights before the callback")
        return self._carry()  # train on from the weights the callback set

    def _order(self, n: int, size: int, order_seed: tuple[int, int] | None) -> Any:
        """The host row order of one epoch: the permutation keyed by (shuffle seed, epoch), as eager training."""
        return host_random.permutation(*order_seed, n) if order_seed is not None else host.indices(0, n)

    def _rates(self, values: list[float] | None) -> Array | None:
        """A schedule's rates as a float64 input of a compiled call (None without a schedule)."""
        return None if values is None else self.compiler.inputs(host.values(values, "float64"), self.xp, self.device,
                                                                "float64")

    def _epoch(self, carry: dict[str, Any], X: Array, y: Array, size: int, order_seed: tuple[int, int] | None,
               count: int) -> tuple[dict[str, Any], Array]:
        """One epoch of ``count`` steps: a compiled scan over its full batches and one call for a short last batch,
        or one call per batch (and a host read after each) when a callback wants every step."""
        net, compiler, xp, device = self.net, self.compiler, self.xp, self.device
        n, epoch = X.shape[0], net.epoch
        rates = self.rates.epoch(net.schedule_t, count)
        if size >= n:
            self.steps += 1
            carry, report = self._function("full")(carry, X, y, self._control(epoch, 0, True), self._rates(rates))
            if self.per_step:
                carry, report = self._step_reported(carry, report, 0)
            return carry, report
        order = self._order(n, size, order_seed)
        whole, rest = divmod(n, size)
        batches = [order[b * size:(b + 1) * size] for b in range(whole)] + ([order[whole * size:]] if rest else [])
        batches = batches[:count]
        whole = min(whole, count)
        if whole > 1 and compiler.scans and not self.per_step:
            idx = host.full_batches(order[:whole * size], size)
            carry, report = self._function("epoch")(carry, X, y, self._control(epoch, 0, True),
                                                    compiler.inputs(idx, xp, device),
                                                    self._rates(None if rates is None else rates[:whole]))
            self.steps += whole
            done = whole
        else:
            done = 0
        for b in range(done, len(batches)):
            rows = compiler.inputs(batches[b], xp, device)
            carry, report = self._function("batch")(carry, X, y, self._control(epoch, b, b == 0), rows,
                                                    self._rates(None if rates is None else rates[b:b + 1]))
            self.steps += 1
            if self.per_step:
                carry, report = self._step_reported(carry, report, b)
                if self._decode(host.to_numpy(report))["failed"]:
                    break
        return carry, report

    def _step_reported(self, carry: dict[str, Any], report: Array, batch: int) -> tuple[dict[str, Any], Array]:
        """After one step with a callback that wants steps: read, give the model the new weights, call it."""
        read = self._decode(host.to_numpy(report))
        if not read["failed"]:
            self._commit(carry, copy=self.compiler.donate)
            for c in self.callbacks:
                c.on_step(StepEvent(self.net.epoch + 1, batch + 1, self.steps, read["last"], self.net))
        return carry, report

    def _full_batch(self, carry: dict[str, Any], X: Array, y: Array, epochs: int, history: History) -> History:
        """Full-batch epochs as compiled loops that each run up to the next callback report: all of them in one
        loop when no callback reports in between (lengths ``every`` and a shorter last: at most two traces)."""
        net = self.net
        first, done = net.epoch, 0
        ends = [e for e in range(1, epochs + 1) if due(self.callbacks, e, epochs)] if self.callbacks else [epochs]
        for end in ends:
            carry, record = self._epochs(carry, X, y, end - done, history, last=end == epochs)
            done = end
            carry = self._call(due(self.callbacks, done, epochs), record, carry, end == epochs)
            if net.stop_training:
                break
        assert net.epoch == first + done
        return history

    def _epochs(self, carry: dict[str, Any], X: Array, y: Array, count: int, history: History,
                last: bool) -> tuple[dict[str, Any], dict[str, float]]:
        """``count`` full-batch epochs in one compiled loop; their losses and counts come back in one transfer and
        go into the history. Returns the carry and the last epoch's record (raises as eager training on a failure)."""
        xp, net = self.xp, self.net
        first = net.epoch
        numbers = self.compiler.inputs(host.indices(first, first + count), xp, self.device)
        t = net.schedule_t  # one step per full-batch epoch: step and epoch schedules count alike
        rates = None if self.rates.schedule is None else [self.rates.schedule.lr(self.rates.base, t + k)
                                                          for k in range(count)]
        carry, report = self._function("epochs")(carry, X, y, self._control(first, 0, True), numbers,
                                                 self._rates(rates))
        values = host.to_numpy(report)  # the final record, then each epoch's total and counts
        width = len(RECORD) + len(self.names)
        read, sums, step = self._decode(values[:width]), values[width:], width - TOTAL  # sums: (count, step) flat
        self.steps += count
        n = X.shape[0]
        done = read["epoch"] - first if read["failed"] else count  # epochs completed before a failing one
        if done:
            total = sums[0:done * step:step]
            columns = {"loss": total / n if self.per_sample else total}
            columns.update({name: sums[1 + i:done * step:step] / n for i, name in enumerate(self.names)})
            history.record_many({k: v.tolist() for k, v in columns.items()}, net.history)
        net.epoch = first + done
        net.schedule_t += self.rates.advance(1) * done
        if read["failed"]:
            self._fail(carry, read, X, y, n, None)
        self._commit(carry, copy=self.compiler.donate and not last)
        return carry, {k: history.metrics[k][-1] for k in history.metrics}

    # ---- failures ---------------------------------------------------------------------------------------------
    def _fail(self, carry: dict[str, Any], read: dict[str, Any], X: Array, y: Array, size: int,
              seed: int | None) -> None:
        """Leave the model as eager training would and raise its FloatingPointError."""
        net = self.net
        epoch, batch = read["epoch"], read["batch"]
        net.epoch = epoch
        where = f"epoch {epoch + 1}, batch {batch + 1}"
        if read["kind"] == LOSS:
            self._commit(carry["prev"], copy=True)
            raise FloatingPointError(
                f"fit: loss is {read['bad']} at {where}; the model is rolled back to the weights of the last step "
                "whose loss was finite (lower the learning rate or check the data)")
        self._commit(carry, copy=True)  # the failing update was not committed
        bad, value = self._which(X, y, size, seed, epoch, batch)
        raise FloatingPointError(
            f"fit: the update at {where} made {len(bad)} array(s) non-finite ({', '.join(bad[:4])}"
            f"{', ...' if len(bad) > 4 else ''}) although the loss was {value:g}; the model is rolled back to the "
            "weights before that update (lower the learning rate or check the data)")

    def _which(self, X: Array, y: Array, size: int, seed: int | None, epoch: int,
               batch: int) -> tuple[list[str], float]:
        """Rerun the failing step eagerly (deterministic: same batch, same keys) to name what went non-finite."""
        net, xp, step = self.net, self.xp, self.step
        n = X.shape[0]
        if size >= n:
            xb, yb = X, y
        else:
            order = self._order(n, size, (seed, epoch) if seed is not None else None)
            rows = host.from_numpy(order[batch * size:(batch + 1) * size], xp, device=self.device, dtype=xp.int64)
            xb, yb = xp.take(X, rows, axis=0), xp.take(y, rows, axis=0)
        value, grads, state, _ = step.gradients(net.params, net.state, xb, yb, (epoch, batch))
        rates = self.rates.epoch(net.schedule_t, batch + 1)
        params, opt = step.apply(net.params, grads, net.optimizer_state, None if rates is None else rates[batch])
        named = named_arrays(net, params, state, opt)
        bad = [k for k, a in named.items() if xp.isdtype(a.dtype, "real floating")
               and not host.to_bool(xp.all(xp.isfinite(a)))]
        loss = host.to_float(value)
        return bad, loss if math.isfinite(loss) else float("nan")


def _ordered(tree: list[dict[str, Any]], order: list[list[str]]) -> list[dict[str, Any]]:
    """Each layer's dict with its keys in ``order``."""
    return [{n: layer[n] for n in names} for layer, names in zip(tree, order, strict=True)]
