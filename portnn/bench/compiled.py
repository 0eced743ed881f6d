"""Compiled training against the field, interleaved in one process: portnn compiled on JAX, the same math written
by hand as a ``jax.jit(value_and_grad)`` step (and, for the seed net, as one ``lax.fori_loop``), portnn eager on
NumPy and torch eager, for the MLP and CNN epochs, the seed net and the sort-gpt training step (``gpt``). The timed
runs exclude compilation; each compiled row reports its compile time apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..array import random as host_random
from ..data import datasets
from ..nn import SSE, SoftmaxCrossEntropy
from ..optim import SGD
from . import gpt as bench_gpt
from .cnn import CNNSpec
from .cnn import torch_epoch as torch_cnn_epoch
from .mlp import LR, MLPSpec, host_weights
from .mlp import torch_epoch as torch_mlp_epoch
from .runtime import interleave, jit_epochs, load_runtime, median, pair_ratios
from .seed import seed_weights

SEED_EPOCHS = 15_000


def _jax() -> tuple[Any, Any]:
    """jax and its namespace, loaded as portnn loads them (float64 enabled, this process's threads applied)."""
    rt = load_runtime("jax")
    import jax

    return jax, rt.xp


class Timed:
    """A callable whose first call (the one that compiles) is timed apart in ``first_s`` (compiling plus one run)."""

    def __init__(self, fn: Callable[[], Any], compiles: bool = True) -> None:
        self.fn, self.calls, self.first_s, self.compiles = fn, 0, 0.0, compiles

    def __call__(self) -> Any:
        start = time.perf_counter()
        out = self.fn()
        if self.calls == 0:
            self.first_s = time.perf_counter() - start
        self.calls += 1
        return out


# ---- the MLP epoch ------------------------------------------------------------------------------------------
def portnn_epoch(backend: str, spec: MLPSpec | CNNSpec, X: np.ndarray, y: np.ndarray, compile: bool) -> Timed:
    """One epoch of ``Sequential.fit`` of the MLP or CNN on ``backend`` (compiled or eager), float32, plain SGD as
    the other rows."""
    rt = load_runtime(backend)
    net = spec.model().to(rt.xp, rt.device, "float32")
    Xd, yd = rt.asarray(X), rt.asarray(y)
    loss, opt = SoftmaxCrossEntropy(), SGD(LR)

    def epoch() -> float:
        return net.fit(Xd, yd, loss=loss, optimizer=opt, epochs=1, batch_size=spec.batch, metrics=[],
                       compile=compile)[-1]

    return Timed(epoch, compiles=compile)


def hand_jax_mlp(spec: MLPSpec, X: np.ndarray, y: np.ndarray, weights: list[np.ndarray], scan: bool) -> Timed:
    """The epoch a JAX user writes: ``jax.jit`` of a ``value_and_grad`` SGD step on a batch gathered inside it, the
    losses summed on the device and read once per epoch; ``scan``: the whole epoch as one ``lax.scan``."""
    jax, jnp = _jax()
    Xd, yd = jnp.asarray(X), jnp.asarray(y)
    params = [jnp.asarray(w) for w in weights]

    def loss_fn(ps: list[Any], xb: Any, yb: Any) -> Any:
        a = xb
        for i in range(0, len(ps) - 2, 2):
            a = jnp.maximum(a @ ps[i] + ps[i + 1], 0.0)
        logits = a @ ps[-2] + ps[-1]
        logp = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def step(ps: list[Any], idx: Any) -> tuple[list[Any], Any]:
        value, grads = jax.value_and_grad(loss_fn)(ps, jnp.take(Xd, idx, axis=0), jnp.take(yd, idx, axis=0))
        return [p - LR * g for p, g in zip(ps, grads, strict=True)], value * idx.shape[0]

    jit_step = jax.jit(step, donate_argnums=0)

    def run_scan(ps: list[Any], idx: Any) -> tuple[list[Any], Any]:
        ps, values = jax.lax.scan(step, ps, idx)
        return ps, jnp.sum(values)

    jit_scan = jax.jit(run_scan, donate_argnums=0)
    state: dict[str, Any] = {"epoch": 0, "params": params}
    whole = spec.samples // spec.batch

    def epoch() -> float:
        order = host_random.permutation(0, state["epoch"], spec.samples)
        state["epoch"] += 1
        ps = state["params"]
        if scan:
            ps, total = jit_scan(ps, order[:whole * spec.batch].reshape(whole, spec.batch))
        else:
            total = 0.0
            for b in range(whole):
                ps, value = jit_step(ps, order[b * spec.batch:(b + 1) * spec.batch])
                total = total + value
        rest = order[whole * spec.batch:]
        if rest.size:
            ps, value = jit_step(ps, rest)
            total = total + value
        state["params"] = ps
        return float(total) / spec.samples

    return Timed(epoch)


# ---- the CNN epoch ------------------------------------------------------------------------------------------
def hand_jax_cnn(spec: CNNSpec, X: np.ndarray, y: np.ndarray, weights: dict[Any, np.ndarray]) -> Timed:
    """The digits CNN as a JAX user writes it: ``lax.conv_general_dilated``, ``lax.reduce_window`` max-pooling, a
    ``value_and_grad`` SGD step under ``jax.jit``, the losses read once per epoch."""
    jax, jnp = _jax()
    lax = jax.lax
    Xd, yd = jnp.asarray(X), jnp.asarray(y)
    ps = {f"{i}.{n}": jnp.asarray(w) for (i, n), w in weights.items()}

    def conv(x: Any, w: Any, b: Any) -> Any:
        out = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return out + b[None, :, None, None]

    def pool(x: Any) -> Any:
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss_fn(p: dict[str, Any], xb: Any, yb: Any) -> Any:
        a = pool(jnp.maximum(conv(xb, p["0.weight"], p["0.bias"]), 0.0))
        a = pool(jnp.maximum(conv(a, p["3.weight"], p["3.bias"]), 0.0))
        logits = jnp.reshape(a, (a.shape[0], -1)) @ p["7.weight"] + p["7.bias"]
        logp = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def step(p: dict[str, Any], idx: Any) -> tuple[dict[str, Any], Any]:
        value, grads = jax.value_and_grad(loss_fn)(p, jnp.take(Xd, idx, axis=0), jnp.take(yd, idx, axis=0))
        return {k: v - LR * grads[k] for k, v in p.items()}, value * idx.shape[0]

    return Timed(jit_epochs(jax.jit(step, donate_argnums=0), ps, spec.samples, spec.batch))


# ---- the seed net, 15,000 full-batch epochs ----------------------------------------------------------------
def _seed_data() -> tuple[np.ndarray, np.ndarray]:
    X, y = datasets.xor()
    return X.astype(np.float64), y.astype(np.float64)


def portnn_seed(backend: str, epochs: int, compile: bool) -> Timed:
    """``fit`` of the seed recipe for ``epochs`` full-batch epochs from the recipe's initial weights each run (one
    model, so a compiled run reuses its compiled loop; compiled, the epochs run as one compiled loop)."""
    from ..data import recipes

    rt = load_runtime(backend)
    X, y = (rt.asarray(a) for a in _seed_data())
    net = recipes.get("seed").model(1).to(rt.xp, rt.device, "float64")
    start = net.state_dict()

    def run() -> float:
        net.load_state_dict(start)
        net.epoch, net.history = 0, {}
        return net.fit(X, y, loss=SSE(), optimizer=SGD(1.0), epochs=epochs, compile=compile)[-1]

    return Timed(run, compiles=compile)


def hand_jax_seed(epochs: int) -> Timed:
    """The seed net's steps as one ``jax.lax.fori_loop`` of ``value_and_grad`` steps (float64), as a JAX user
    compiles a whole training run."""
    jax, jnp = _jax()
    X, y = (jnp.asarray(a) for a in _seed_data())
    w0, w1 = (jnp.asarray(w) for w in seed_weights())

    def loss_fn(ws: tuple[Any, Any]) -> Any:
        h = jax.nn.sigmoid(X @ ws[0])
        out = jax.nn.sigmoid(h @ ws[1])
        return jnp.sum((out - y) ** 2)

    def body(_i: Any, ws: tuple[Any, Any]) -> tuple[Any, Any]:
        grads = jax.grad(loss_fn)(ws)
        return ws[0] - grads[0], ws[1] - grads[1]

    run = jax.jit(lambda ws: loss_fn(jax.lax.fori_loop(0, epochs, body, ws)))

    def timed() -> float:
        return float(run((w0, w1)))

    return Timed(timed)


def available() -> str | None:
    """Why the compiled section cannot run here (None when JAX is installed)."""
    from ..array import backends

    return None if backends.get("jax").installed() else "jax is not installed (pip install 'portnn[jax]')"


def runs(spec_mlp: MLPSpec, spec_cnn: CNNSpec, seed_epochs: int, torch: bool,
         spec_gpt: bench_gpt.GPTSpec | None = None) -> dict[str, dict[str, Callable[[], Any]]]:
    """The callables of each workload, by row name, to be interleaved (the sort-gpt step when ``spec_gpt`` is
    given)."""
    X, y = spec_mlp.data()
    weights = host_weights(spec_mlp.model())
    mlp: dict[str, Callable[[], Any]] = {
        "portnn numpy": portnn_epoch("numpy", spec_mlp, X, y, False),
        "portnn jax (jit)": portnn_epoch("jax", spec_mlp, X, y, True),
        "hand jax.jit step": hand_jax_mlp(spec_mlp, X, y, weights, scan=False),
        "hand jax lax.scan": hand_jax_mlp(spec_mlp, X, y, weights, scan=True),
    }
    if torch:
        mlp["torch eager"] = torch_mlp_epoch("cpu", spec_mlp, X, y, weights)
    Xc, yc = spec_cnn.data()
    net = spec_cnn.model()
    cweights = {k: np.asarray(v, dtype=np.float32).copy() for k, v in net.parameters().items()}
    cnn: dict[str, Callable[[], Any]] = {
        "portnn numpy": portnn_epoch("numpy", spec_cnn, Xc, yc, False),
        "portnn jax (jit)": portnn_epoch("jax", spec_cnn, Xc, yc, True),
        "hand jax.jit step": hand_jax_cnn(spec_cnn, Xc, yc, cweights),
    }
    if torch:
        cnn["torch eager"] = torch_cnn_epoch("cpu", spec_cnn, Xc, yc, cweights)
    seed: dict[str, Callable[[], Any]] = {
        "portnn numpy": portnn_seed("numpy", seed_epochs, False),
        "portnn jax (jit)": portnn_seed("jax", seed_epochs, True),
        "hand jax lax.fori_loop": hand_jax_seed(seed_epochs),
    }
    out = {"mlp": mlp, "cnn": cnn, "seed": seed}
    if spec_gpt is not None:
        gweights = spec_gpt.weights()
        out["sort-gpt"] = {
            "portnn numpy": bench_gpt.portnn_epoch("numpy", spec_gpt, False),
            "portnn jax (jit)": Timed(bench_gpt.portnn_epoch("jax", spec_gpt, True)),
            "hand jax.jit step": Timed(bench_gpt.hand_jax_epoch(spec_gpt, gweights)),
        }
        if torch:
            out["sort-gpt"]["torch eager"] = bench_gpt.torch_epoch("cpu", spec_gpt, gweights)
    return out


def rows(spec_mlp: MLPSpec, spec_cnn: CNNSpec, seed_epochs: int, repeats: int, torch: bool,
         spec_gpt: bench_gpt.GPTSpec | None = None) -> list[dict[str, Any]]:
    """Run in the child: every workload's callables interleaved, one row each (per epoch; the seed net and sort-gpt
    per step), with its ratios to the others and its compile time (the untimed first call less a timed one)."""
    out = []
    per_step = {"seed": (seed_epochs, "µs/iter", 1e6),
                "sort-gpt": (spec_gpt.steps if spec_gpt else 1, "ms/step", 1e3)}
    for section, fns in runs(spec_mlp, spec_cnn, seed_epochs, torch, spec_gpt).items():
        times, _cpu = interleave(fns, max(2, repeats // 2 + 1) if section in ("cnn", "sort-gpt") else repeats)
        per, unit, scale = per_step.get(section, (1, "ms/epoch", 1e3))
        for name, fn in fns.items():
            t = median(times[name])
            first = getattr(fn, "first_s", None) if getattr(fn, "compiles", False) else None
            out.append({"section": f"compiled {section}", "name": name, "threads": 1, "median_s": t / per,
                        "unit": unit, "value": t / per * scale, "iterations": per,
                        "ratios": {ref: median(pair_ratios(times[name], times[ref])) for ref in fns if ref != name},
                        "compile_s": None if first is None else max(0.0, first - t)})
    return out


def child(samples_mlp: int, samples_cnn: int, seed_epochs: int, repeats: int, torch: bool,
          samples_gpt: int = 0) -> list[dict[str, Any]]:
    """The child process: one CPU for every backend (pinned before JAX starts), then :func:`rows`."""
    from ..array import threads

    threads.use_threads(1)
    load_runtime("jax")
    from .runtime import threads as bench_threads

    with bench_threads(1):
        return rows(MLPSpec(samples=samples_mlp), CNNSpec(samples=samples_cnn), seed_epochs, repeats, torch,
                    bench_gpt.GPTSpec(samples=samples_gpt) if samples_gpt else None)


def measure(spec_mlp: MLPSpec, spec_cnn: CNNSpec, seed_epochs: int, repeats: int, torch: bool,
            spec_gpt: bench_gpt.GPTSpec | None = None) -> list[dict]:
    """The compiled section's rows, from a fresh Python process (this one's JAX may already run on every CPU)."""
    args = (f"{spec_mlp.samples}, {spec_cnn.samples}, {seed_epochs}, {repeats}, {torch}, "
            f"{spec_gpt.samples if spec_gpt else 0}")
    code = f"import json, portnn.bench.compiled as c; print(json.dumps(c.child({args})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"bench compiled child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
