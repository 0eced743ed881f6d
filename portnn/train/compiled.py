"""Training compiled by the backend (``jax.jit``, ``torch.compile``; ``portnn/array/compile.py``): the pure step runs
inside compiled functions, losses and metric counts are summed on the device, and the host reads them when the loop
reports (once per epoch; every step only for a callback that asks for steps; once per fit for full-batch training
with nothing to report in between, whose epochs then run as one compiled loop).

The rollback keeps its meaning exactly, without a host read per step: each step computes ``ok`` (finite loss and
finite new parameters, state and optimizer state) on the device and commits with ``where(ok, new, old)``; a carried
``failed`` flag makes every later step a no-op and records the first failure (its kind, epoch, batch and loss);
the model before the last committed update is carried too. At the next read the loop raises the FloatingPointError
eager training raises, naming the same epoch and batch, with the model eager training leaves.
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
from .callbacks import Callback, EpochEvent, StepEvent, wants_steps
from .history import History
from .loop import named_arrays
from .step import Step, leaves, where_tree

LOSS, UPDATE = 1, 2  # kinds of failure


class CompiledTrainer:
    """One compiled ``fit``: the model, its step, the compiler, the callbacks and the metrics to count."""

    def __init__(self, net: Any, step: Step, compiler: Compiler, callbacks: list[Callback], names: list[str]) -> None:
        self.net, self.step, self.compiler, self.callbacks, self.names = net, step, compiler, callbacks, names
        self.per_step = wants_steps(callbacks)
        ctx = step.training
        self.xp, self.device, self.dtype = ctx.xp, ctx.device, ctx.dtype
        loss = step.loss
        assert loss is not None
        self.per_sample, self.threshold = loss.reduction != "sum", metrics.threshold(loss)
        self.steps = 0
        self._functions: dict[str, Callable[..., Any]] = {}

    # ---- the carry ------------------------------------------------------------------------------------------
    def _copy(self, tree: Any) -> Any:
        """A copy of every array of a tree (a donated carry must not share buffers with the model)."""
        xp, device = self.xp, self.device
        if isinstance(tree, dict):
            return {k: self._copy(v) for k, v in tree.items()}
        if isinstance(tree, list | tuple):
            return type(tree)(self._copy(v) for v in tree)
        return xp.asarray(tree, dtype=tree.dtype, device=device, copy=True)

    def _scalar(self, value: Any, dtype: Any) -> Array:
        return self.xp.asarray(value, dtype=dtype, device=self.device)

    def _fresh(self) -> dict[str, Any]:
        """The per-epoch accumulators and failure record."""
        xp = self.xp
        return {"failed": self._scalar(False, xp.bool), "kind": self._scalar(0, xp.int64),
                "epoch": self._scalar(0, xp.int64), "batch": self._scalar(0, xp.int64),
                "bad": self._scalar(0.0, self.dtype), "last": self._scalar(0.0, self.dtype),
                "total": self._scalar(0.0, xp.float64),
                "counts": {n: self._scalar(0.0, self.dtype) for n in self.names}}

    def _carry(self) -> dict[str, Any]:
        net = self.net
        model = self._copy({"params": net.params, "state": net.state, "opt": net.optimizer_state})
        return {**model, "prev": self._copy(model), **self._fresh()}

    def _restart(self, carry: dict[str, Any]) -> dict[str, Any]:
        """The carry for the next epoch: the model as it is, accumulators reset."""
        return {"params": carry["params"], "state": carry["state"], "opt": carry["opt"], "prev": carry["prev"],
                **self._fresh()}

    # ---- the compiled functions -------------------------------------------------------------------------------
    def _body(self, carry: dict[str, Any], xb: Array, yb: Array, epoch: Array, batch: Array) -> dict[str, Any]:
        """One training step on the device, committed only when finite (see the module docstring)."""
        xp, step = self.xp, self.step
        params, state, opt = carry["params"], carry["state"], carry["opt"]
        value, grads, new_state, out = step.gradients(params, state, xb, yb, (epoch, batch))
        new_params, new_opt = step.apply(params, grads, opt)
        loss_ok = xp.isfinite(value)
        failed = carry["failed"]
        ok = ~failed & loss_ok & step.finite(new_params, new_state, new_opt)
        first = ~failed & ~ok
        rows = float(xb.shape[0]) if self.per_sample else 1.0
        counts = {n: c + xp.where(ok, metrics.METRICS[n](out, yb, xp, self.threshold), 0.0)
                  for n, c in carry["counts"].items()}
        return {
            "params": where_tree(xp, ok, new_params, params), "state": where_tree(xp, ok, new_state, state),
            "opt": where_tree(xp, ok, new_opt, opt),
            "prev": where_tree(xp, ok, {"params": params, "state": state, "opt": opt}, carry["prev"]),
            "failed": failed | ~ok, "kind": xp.where(first, xp.where(loss_ok, UPDATE, LOSS), carry["kind"]),
            "epoch": xp.where(first, epoch, carry["epoch"]), "batch": xp.where(first, batch, carry["batch"]),
            "bad": xp.where(first, value, carry["bad"]), "last": value,
            "total": carry["total"] + xp.where(ok, xp.astype(value, xp.float64) * rows, 0.0), "counts": counts,
        }

    def _function(self, name: str) -> Callable[..., Any]:
        """The compiled function ``name`` (built once per fit): 'full' one full-batch step, 'batch' one step on the
        rows ``idx``, 'epoch' a scan over the rows of ``idx`` (one epoch), 'epochs' a scan of full-batch epochs."""
        if name in self._functions:
            return self._functions[name]
        xp, compiler = self.xp, self.compiler

        def full(carry: Any, X: Array, y: Array, epoch: Array, batch: Array) -> Any:
            return self._body(carry, X, y, epoch, batch)

        def one(carry: Any, X: Array, y: Array, idx: Array, epoch: Array, batch: Array) -> Any:
            return self._body(carry, xp.take(X, idx, axis=0), xp.take(y, idx, axis=0), epoch, batch)

        def epoch_scan(carry: Any, X: Array, y: Array, idx: Array, numbers: Array, epoch: Array) -> Any:
            def scanned(c: Any, xs: Any) -> tuple[Any, None]:
                rows, b = xs
                return self._body(c, xp.take(X, rows, axis=0), xp.take(y, rows, axis=0), epoch, b), None

            return compiler.scan(scanned, carry, (idx, numbers), idx.shape[0])[0]

        def epochs_scan(carry: Any, X: Array, y: Array, epochs: Array) -> Any:
            def scanned(c: Any, xs: Any) -> tuple[Any, Any]:
                (e,) = xs
                c = {**c, "total": c["total"] * 0.0, "counts": {n: v * 0.0 for n, v in c["counts"].items()}}
                c = self._body(c, X, y, e, e * 0)
                return c, self._report(c)

            return compiler.scan(scanned, carry, (epochs,), epochs.shape[0])

        table: dict[str, Callable[..., Any]] = {"full": full, "batch": one, "epoch": epoch_scan,
                                                "epochs": epochs_scan}
        self._functions[name] = compiler.jit(table[name], donate=(0,))
        return self._functions[name]

    # ---- host reads -------------------------------------------------------------------------------------------
    def _report(self, carry: dict[str, Any]) -> Array:
        """What the host reads, as one float64 vector: failed, kind, epoch, batch, bad loss, total, counts."""
        xp = self.xp
        parts = [carry["failed"], carry["kind"], carry["epoch"], carry["batch"], carry["bad"], carry["last"],
                 carry["total"], *[carry["counts"][n] for n in self.names]]
        return xp.stack([xp.astype(p, xp.float64) for p in parts])

    def _read(self, carry: dict[str, Any]) -> dict[str, Any]:
        return self._decode(host.to_numpy(self._report(carry)))

    def _decode(self, values: Any) -> dict[str, Any]:
        return {"failed": bool(values[0]), "kind": int(values[1]), "epoch": int(values[2]), "batch": int(values[3]),
                "bad": float(values[4]), "last": float(values[5]), "total": float(values[6]),
                "counts": {n: float(values[7 + i]) for i, n in enumerate(self.names)}}

    def _commit(self, carry: dict[str, Any], copy: bool) -> None:
        """Give the model the carry's arrays (copies when the carry goes on to a donating call), each layer's dict
        in its own key order again (a compiler may hand dicts back with sorted keys)."""
        model = self._copy({k: carry[k] for k in ("params", "state", "opt")}) if copy else carry
        net = self.net
        net.params = _ordered(model["params"], self.order)
        net.state = _ordered(model["state"], self.state_order)
        net.optimizer_state = {k: _ordered(v, self.order) if isinstance(v, list) else v
                               for k, v in model["opt"].items()}

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, X: Array, y: Array, *, epochs: int, size: int, shuffle: bool,
            validate: Callable[[], dict[str, float]] | None) -> History:
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
        donating = self.compiler.donate
        if size >= n and self.compiler.scans and not self.per_step and validate is None and not self.callbacks:
            return self._all_epochs(carry, X, y, epochs, history)
        seed = net.seed if net.shuffle_seed is None else net.shuffle_seed
        stop = net.epoch + epochs
        while net.epoch < stop:
            carry = self._epoch(carry, X, y, size, (seed, net.epoch) if shuffle else None, history)
            read = self._read(carry)
            if read["failed"]:
                self._fail(carry, read, X, y, size, seed if shuffle else None)
            net.epoch += 1
            last = net.epoch == stop
            self._commit(carry, copy=donating and not last)
            record = {"loss": read["total"] / n if self.per_sample else read["total"]}
            record.update({name: read["counts"][name] / n for name in self.names})
            if validate is not None:
                record.update({f"val_{k}": v for k, v in validate().items()})
            history.record(record, net.history)
            if self.callbacks:
                before = [id(a) for a in leaves(net.params, net.state, net.optimizer_state)]
                for c in self.callbacks:
                    c.on_epoch(EpochEvent(net.epoch, record, net))
                if [id(a) for a in leaves(net.params, net.state, net.optimizer_state)] != before:
                    if not host.to_bool(self.step.finite(net.params, net.state, net.optimizer_state)):
                        raise FloatingPointError(f"fit: a callback at epoch {net.epoch} set non-finite values; "
                                                 "train from finite weights")
                    carry = {**self._carry()}
            if not last:
                carry = self._restart(carry)
        return history

    def _order(self, n: int, size: int, order_seed: tuple[int, int] | None) -> list[Array]:
        """The rows of each batch of one epoch (the host permutation keyed by (shuffle seed, epoch), as eager)."""
        xp, device = self.xp, self.device
        perm = host_random.permutation(*order_seed, n) if order_seed is not None else None
        rows = host.from_numpy(perm, xp, device=device, dtype=xp.int64) if perm is not None \
            else xp.arange(n, dtype=xp.int64, device=device)
        return [rows[start:min(start + size, n)] for start in range(0, n, size)]

    def _epoch(self, carry: dict[str, Any], X: Array, y: Array, size: int, order_seed: tuple[int, int] | None,
               history: History) -> dict[str, Any]:
        """One epoch: a compiled scan over its full batches and one call for a short last batch, or one call per
        batch (and a host read after each) when a callback wants every step."""
        xp, net = self.xp, self.net
        n = X.shape[0]
        epoch = self._scalar(net.epoch, xp.int64)
        if size >= n:
            batches: list[Array | None] = [None]
        else:
            batches = list(self._order(n, size, order_seed))
        if self.per_step:
            for b, rows in enumerate(batches):
                number = self._scalar(b, xp.int64)
                carry = (self._function("full")(carry, X, y, epoch, number) if rows is None
                         else self._function("batch")(carry, X, y, rows, epoch, number))
                self.steps += 1
                read = self._read(carry)
                if read["failed"]:
                    return carry
                self._commit(carry, copy=self.compiler.donate)
                for c in self.callbacks:
                    c.on_step(StepEvent(net.epoch + 1, b + 1, self.steps, read["last"], net))
            return carry
        if batches == [None]:
            self.steps += 1
            return self._function("full")(carry, X, y, epoch, self._scalar(0, xp.int64))
        full = [r for r in batches if r is not None and r.shape[0] == size]
        if len(full) > 1 and self.compiler.scans:
            idx = xp.stack(full, axis=0)
            numbers = xp.arange(len(full), dtype=xp.int64, device=self.device)
            carry = self._function("epoch")(carry, X, y, idx, numbers, epoch)
        else:
            for b, rows in enumerate(full):
                carry = self._function("batch")(carry, X, y, rows, epoch, self._scalar(b, xp.int64))
        if len(full) < len(batches):  # the short last batch
            carry = self._function("batch")(carry, X, y, batches[-1], epoch, self._scalar(len(full), xp.int64))
        self.steps += len(batches)
        return carry

    def _all_epochs(self, carry: dict[str, Any], X: Array, y: Array, epochs: int, history: History) -> History:
        """Full-batch training with nothing to report between epochs: every epoch in one compiled loop, and the
        per-epoch losses and counts back in one transfer."""
        xp, net = self.xp, self.net
        first = net.epoch
        numbers = xp.arange(first, first + epochs, dtype=xp.int64, device=self.device)
        carry, reports = self._function("epochs")(carry, X, y, numbers)
        per_epoch = host.to_numpy(reports)  # (epochs, 6 + metrics)
        self.steps += epochs
        n = X.shape[0]
        done = epochs
        failed = bool(per_epoch[-1, 0])
        if failed:
            done = int(per_epoch[-1, 2]) - first  # epochs completed before the failing one
        for row in per_epoch[:done]:
            read = self._decode(row)
            record = {"loss": read["total"] / n if self.per_sample else read["total"]}
            record.update({name: read["counts"][name] / n for name in self.names})
            history.record(record, net.history)
        net.epoch = first + done
        if failed:
            self._fail(carry, self._decode(per_epoch[-1]), X, y, n, None)
        self._commit(carry, copy=False)
        return history

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
            rows = self._order(n, size, (seed, epoch) if seed is not None else None)[batch]
            xb, yb = xp.take(X, rows, axis=0), xp.take(y, rows, axis=0)
        value, grads, state, _ = step.gradients(net.params, net.state, xb, yb, (epoch, batch))
        params, opt = step.apply(net.params, grads, net.optimizer_state)
        named = named_arrays(net, params, state, opt)
        bad = [k for k, a in named.items() if xp.isdtype(a.dtype, "real floating")
               and not host.to_bool(xp.all(xp.isfinite(a)))]
        loss = host.to_float(value)
        return bad, loss if math.isfinite(loss) else float("nan")


def _ordered(tree: list[dict[str, Any]], order: list[list[str]]) -> list[dict[str, Any]]:
    """Each layer's dict with its keys in ``order``."""
    return [{n: layer[n] for n in names} for layer, names in zip(tree, order, strict=True)]
