"""Benchmark plumbing: where the workloads run (namespace, device, synchronisation, thread limits), the BLAS in
use, interleaved timing with medians and per-pair ratios, and the run's own float32 matmul peak."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..array import backends, host
from ..array import random as host_random

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Runtime:
    """The backend the workloads run on: portnn's namespace ``xp``, its ``device``, and a ``sync(x)`` that waits
    until the device has finished computing ``x`` (a no-op on the CPU), called around every timed region."""

    backend: str
    device_name: str
    xp: Any
    device: Any
    is_gpu: bool

    def sync(self, x: Any = None) -> None:
        """Wait for queued device work (CuPy/torch CUDA: device synchronise; JAX: block on ``x``)."""
        if self.backend == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()
        elif self.backend == "torch" and self.is_gpu:
            import torch

            torch.cuda.synchronize(self.device)
        elif self.backend == "jax" and x is not None and hasattr(x, "block_until_ready"):
            x.block_until_ready()

    def asarray(self, data: np.ndarray) -> Any:
        """Host data on this backend's device, keeping its dtype."""
        return host.from_numpy(data, self.xp, device=self.device, dtype=None)

    def torch_device(self) -> str | None:
        """The torch device matching this runtime ('cpu', 'cuda:0'), or None when torch is not installed."""
        if not has_torch():
            return None
        if not self.is_gpu:
            return "cpu"
        import torch

        return self.device_name if torch.cuda.is_available() else None


def load_runtime(backend: str = "numpy", device: str | None = None) -> Runtime:
    """Import ``backend`` through the registry and resolve ``device`` (clear errors when it cannot run here)."""
    xp, dev = backends.load(backend, device)
    name = device or (backends.get(backend).devices or backends.get(backend).gpu_devices)[0]
    return Runtime(backend, name, xp, dev, is_gpu=name.partition(":")[0] in ("cuda", "gpu"))


def has_torch() -> bool:
    """True when torch can be imported here."""
    return importlib.util.find_spec("torch") is not None


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP pools (threadpoolctl) and torch's intra-op pool to ``n`` threads (None: leave as is)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise RuntimeError('thread limits need threadpoolctl: pip install "portnn[bench]"') from err

    torch: Any = None
    if has_torch():
        torch = importlib.import_module("torch")
        before = torch.get_num_threads()
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def blas_info() -> list[dict[str, Any]]:
    """The thread pools loaded in this process (threadpoolctl): library, kernel ('architecture'), threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def blas_env() -> dict[str, str | None]:
    """The BLAS-related environment variables as this process sees them (None: unset)."""
    return {k: os.environ.get(k) for k in BLAS_ENV}


def jit_epochs(jit_step: Callable[[Any, Any], tuple[Any, Any]], carry: Any, samples: int,
               batch: int) -> Callable[[], float]:
    """epoch() of a hand-written jitted ``step(carry, row indices) -> (carry, summed loss)`` over the rows in the
    host order keyed by the epoch (portnn's), the carry kept between calls: the mean loss, read once per epoch."""
    state: dict[str, Any] = {"epoch": 0, "carry": carry}

    def epoch() -> float:
        order = host_random.permutation(0, state["epoch"], samples)
        state["epoch"] += 1
        carry, total = state["carry"], 0.0
        for start in range(0, samples, batch):
            carry, value = jit_step(carry, order[start:start + batch])
            total = total + value
        state["carry"] = carry
        return float(total) / samples

    return epoch


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def interleave(runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
               sync: Callable[[Any], None] = lambda _x: None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and calling-thread CPU seconds of each callable, run in turn A B C A B C ... ``repeats`` times
    after ``warmup`` untimed rounds, so slow drifts of the machine hit every implementation alike. ``sync(result)``
    closes each timed region. The CPU time is robust to other processes on a shared machine, but counts only this
    thread (meaningful for 1-thread CPU runs, not for multi-threaded BLAS or a GPU)."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(warmup + repeats):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.thread_time()
            sync(fn())
            elapsed, elapsed_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
            if r >= warmup:
                wall[name].append(elapsed)
                cpu[name].append(elapsed_cpu)
    return wall, cpu


def pair_ratios(a: list[float], b: list[float]) -> list[float]:
    """a[i] / b[i] for each round: the ratio of two implementations timed next to each other."""
    return [x / y for x, y in zip(a, b, strict=True)]


def matmul_gflops(rt: Runtime, m: int, k: int, n: int, min_seconds: float = 0.3, min_repeats: int = 3) -> float:
    """Best float32 GFLOP/s of (m, k) @ (k, n) on ``rt`` (2mkn flops per product), synchronised per product."""
    rng = np.random.default_rng(0)
    a = rt.asarray(rng.random((m, k), dtype=np.float32))
    b = rt.asarray(rng.random((k, n), dtype=np.float32))
    rt.sync(a @ b)
    best, spent, count = float("inf"), 0.0, 0
    while count < min_repeats or spent < min_seconds:
        start = time.perf_counter()
        rt.sync(a @ b)
        elapsed = time.perf_counter() - start
        best, spent, count = min(best, elapsed), spent + elapsed, count + 1
    return 2.0 * m * k * n / best / 1e9


def torch_sgd_epoch(model: Any, X_host: np.ndarray, y_host: np.ndarray, samples: int, batch: int, lr: float,
                    dev: Any) -> Callable[[], float]:
    """One torch eager epoch (shuffled like portnn, softmax cross-entropy, SGD) as a callable returning its loss."""
    import torch
    import torch.nn.functional as F

    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X, y = torch.from_numpy(X_host).to(dev), torch.from_numpy(y_host).to(dev)
    state = {"epoch": 0}

    def epoch() -> float:
        order = torch.from_numpy(host_random.permutation(0, state["epoch"], samples)).to(dev)
        state["epoch"] += 1
        total = 0.0
        for start in range(0, samples, batch):
            idx = order[start:start + batch]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        return total / samples

    return epoch
