"""A fit's plan costs nothing whatever its length (issue 23, item 7): fit(epochs=10**10) or steps=10**10 with a
per-step schedule, stopped by a callback, allocates per chunk of work (today: per epoch, or CAPACITY full-batch
epochs compiled), never the whole run's learning rates (that was a 74.5 GiB MemoryError) nor a walk over its
epochs."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

import portnn
from portnn import backends


class StopAfter(portnn.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch(self, event: portnn.EpochEvent) -> None:
        if event.epoch >= self.epochs:
            event.model.stop_training = True


def _fit(net: portnn.Sequential, X, y, **kw) -> tuple[portnn.History, int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    history = net.fit(X, y, loss=portnn.MSE(), optimizer=portnn.SGD(0.01), callbacks=[StopAfter(3)],
                      schedule=portnn.ExponentialLR(0.999, interval="step"), **kw)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return history, peak, seconds


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("length", [{"epochs": 10**10}, {"steps": 10**10}, {"epochs": 10**10, "batch_size": 8}],
                         ids=["epochs", "steps", "mini-batch-epochs"])
def test_a_run_of_ten_billion_epochs_plans_in_constant_memory(length: dict, compile: bool) -> None:
    if compile and not backends.get("jax").installed():
        pytest.skip("jax is not installed")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 3)), rng.standard_normal((32, 1))
    net = portnn.Sequential(portnn.Dense(3, 4), portnn.Tanh(), portnn.Dense(4, 1), seed=0)
    if compile:
        xp, device = backends.load("jax")
        net.to(xp, device)
        X, y = xp.asarray(X, device=device), xp.asarray(y, device=device)
    history, peak, _seconds = _fit(net, X, y, compile=compile, **length)
    assert len(history) == 3  # stopped by the callback after 3 epochs
    assert net.schedule_t == 3 * (4 if "batch_size" in length else 1)
    assert peak < 64 << 20, f"{peak / 2**20:.1f} MiB traced"  # measured: well under 10 MiB (compiling included)
