"""The benchmark suite behind ``portnn bench``: matmul peak first, then the MLP epoch, the seed net, the CNN epoch,
the GRU epoch, peak memory and compiled training (with the sort-gpt step), each implementation timed interleaved
with its references in one process; rows, bars, a table."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.duration import format_duration
from . import cnn as bench_cnn
from . import compiled as bench_compiled
from . import gpt as bench_gpt
from . import gru as bench_gru
from . import memory as bench_memory
from . import mlp as bench_mlp
from . import seed as bench_seed
from .runtime import Runtime, blas_env, blas_info, interleave, load_runtime, median, pair_ratios, threads

PEAK_SHAPES = ((2048, 2048, 2048), (256, 784, 256))
QUICK_PEAK_SHAPES = ((256, 256, 256), (64, 784, 64))


@dataclass
class Options:
    """What to run and how big. ``threads`` entries of None leave the pools as they are (GPU runs)."""

    backend: str = "numpy"
    device: str | None = None
    quick: bool = False
    threads: tuple[int | None, ...] = (1, 2)
    repeats: int = 5
    torch: bool = True
    sections: tuple[str, ...] = ("peak", "mlp", "seed", "cnn", "gru", "memory", "compiled")

    def mlp(self) -> bench_mlp.MLPSpec:
        return bench_mlp.MLPSpec(samples=1024) if self.quick else bench_mlp.MLPSpec()

    def cnn(self) -> bench_cnn.CNNSpec:
        return bench_cnn.CNNSpec(samples=128) if self.quick else bench_cnn.CNNSpec()

    def gru(self) -> bench_gru.GRUSpec:
        return bench_gru.GRUSpec(samples=320) if self.quick else bench_gru.GRUSpec()

    def gpt(self) -> bench_gpt.GPTSpec:
        return bench_gpt.GPTSpec(samples=640) if self.quick else bench_gpt.GPTSpec()

    def seed_iterations(self) -> int:
        return 50 if self.quick else 1500

    def seed_epochs_compiled(self) -> int:
        return 300 if self.quick else bench_compiled.SEED_EPOCHS


def _row(section: str, name: str, thr: int | None, seconds: float, unit: str, scale: float, **extra: Any) -> dict:
    return {"section": section, "name": name, "threads": thr, "median_s": seconds, "unit": unit,
            "value": seconds * scale, **extra}


def _ratios(times: dict[str, list[float]], name: str, refs: list[str]) -> dict[str, float]:
    """Median over rounds of time(name) / time(ref) for each reference that ran."""
    return {ref: median(pair_ratios(times[name], times[ref])) for ref in refs if ref in times and ref != name}


def _cpu_fields(cpu: dict[str, list[float]], name: str, refs: list[str], thr: int | None, rt: Runtime,
                scale: float = 1e3, per: int = 1) -> dict[str, Any]:
    """Thread CPU-time figures (1-thread CPU runs only): median seconds per unit (epoch, or ``per`` iterations),
    the same in the row's unit, and per-pair ratios; they show what the code costs when other processes share the
    cores (wall time then also counts waiting for a core)."""
    if thr != 1 or rt.is_gpu:
        return {}
    return {"cpu_s": median(cpu[name]) / per, "cpu_value": median(cpu[name]) / per * scale,
            "cpu_ratios": _ratios(cpu, name, refs)}


def _hand_module(rt: Runtime) -> Any:
    """The array module a hand-written loop uses on this runtime (numpy or cupy); None for other backends."""
    if rt.backend == "numpy":
        return np
    if rt.backend == "cupy":
        import cupy

        return cupy
    return None


def _use_torch(rt: Runtime, opts: Options) -> str | None:
    return rt.torch_device() if opts.torch else None


def peak_rows(rt: Runtime, opts: Options) -> list[dict]:
    """Float32 matmul GFLOP/s of the backend for each thread setting (the run's own peak)."""
    from .runtime import matmul_gflops

    rows = []
    for thr in opts.threads:
        with threads(thr):
            for m, k, n in QUICK_PEAK_SHAPES if opts.quick else PEAK_SHAPES:
                gf = matmul_gflops(rt, m, k, n, min_seconds=0.05 if opts.quick else 0.5)
                rows.append({"section": "peak", "name": f"matmul {m}x{k}x{n}", "threads": thr, "gflops": gf})
    return rows


def peak_of(rows: list[dict], thr: int | None) -> float | None:
    """The highest matmul GFLOP/s measured at ``thr`` threads."""
    found = [r["gflops"] for r in rows if r["section"] == "peak" and r["threads"] == thr]
    return max(found) if found else None


def mlp_rows(rt: Runtime, opts: Options, peaks: list[dict]) -> list[dict]:
    """One MLP epoch: portnn vs hand-written vs torch eager, interleaved, per thread setting."""
    spec = opts.mlp()
    X_host, y_host = spec.data()
    X, y = rt.asarray(X_host), rt.asarray(y_host)
    weights = bench_mlp.host_weights(spec.model())
    hand, tdev = _hand_module(rt), _use_torch(rt, opts)
    flops = spec.flops()
    rows = []
    for thr in opts.threads:
        with threads(thr):
            runs = {}
            if hand is not None:
                runs["numpy" if hand is np else "cupy"] = bench_mlp.hand_epoch(hand, spec, X, y, weights)
            runs["portnn"] = bench_mlp.portnn_epoch(rt, spec, X, y)
            if hand is not None:
                runs["matmul-only"] = bench_mlp.matmul_floor_epoch(hand, spec, weights)
            if tdev is not None:
                runs["torch"] = bench_mlp.torch_epoch(tdev, spec, X_host, y_host, weights)
            times, cpu = interleave(runs, opts.repeats, sync=rt.sync)
        peak = peak_of(peaks, thr)
        for name in runs:
            t = median(times[name])
            gf = flops / t / 1e9
            rows.append(_row("mlp", name, thr, t, "ms/epoch", 1e3, gflops=gf,
                             peak_frac=None if peak is None else gf / peak,
                             ratios=_ratios(times, name, list(runs)), times=times[name],
                             **_cpu_fields(cpu, name, list(runs), thr, rt)))
    return rows


def seed_rows(rt: Runtime, opts: Options) -> list[dict]:
    """The seed net per iteration: portnn vs the article's NumPy loop (with/without the loss read) vs torch, and
    portnn's own arithmetic as one flat loop (what the layers and training loop around it cost)."""
    iters = opts.seed_iterations()
    hand, tdev = _hand_module(rt), _use_torch(rt, opts)
    thr = opts.threads[0]
    with threads(thr):
        runs = {}
        if hand is not None:
            runs["numpy"] = bench_seed.hand_run(hand, iters, read_loss=False)
            runs["numpy+loss"] = bench_seed.hand_run(hand, iters, read_loss=True)
        runs["portnn"] = bench_seed.portnn_run(rt, iters)
        runs["portnn-flat"] = bench_seed.flat_run(rt, iters)
        if tdev is not None:
            runs["torch"] = bench_seed.torch_run(tdev, iters)
        times, cpu = interleave(runs, max(opts.repeats, 5), sync=rt.sync)
    return [_row("seed", name, thr, median(times[name]) / iters, "µs/iter", 1e6,
                 ratios=_ratios(times, name, list(runs)), iterations=iters,
                 **_cpu_fields(cpu, name, list(runs), thr, rt, scale=1e6, per=iters)) for name in runs]


def cnn_rows(rt: Runtime, opts: Options) -> list[dict]:
    """A CNN epoch on digits-sized data: portnn vs torch eager."""
    spec = opts.cnn()
    X_host, y_host = spec.data()
    X, y = rt.asarray(X_host), rt.asarray(y_host)
    tdev = _use_torch(rt, opts)
    thr = opts.threads[0]
    with threads(thr):
        epoch, weights = bench_cnn.portnn_epoch(rt, spec, X, y)
        runs = {"portnn": epoch}
        if tdev is not None:
            runs["torch"] = bench_cnn.torch_epoch(tdev, spec, X_host, y_host, weights)
        times, cpu = interleave(runs, max(2, opts.repeats // 2 + 1), sync=rt.sync)
    return [_row("cnn", name, thr, median(times[name]), "ms/epoch", 1e3, ratios=_ratios(times, name, list(runs)),
                 **_cpu_fields(cpu, name, list(runs), thr, rt)) for name in runs]


def gru_rows(rt: Runtime, opts: Options) -> list[dict]:
    """A GRU epoch (the adding-gru network), per step: portnn vs torch eager nn.GRU."""
    spec = opts.gru()
    X_host, y_host = spec.data()
    X, y = rt.asarray(X_host), rt.asarray(y_host)
    tdev = _use_torch(rt, opts)
    thr = opts.threads[0]
    with threads(thr):
        epoch, weights = bench_gru.portnn_epoch(rt, spec, X, y)
        runs = {"portnn": epoch}
        if tdev is not None:
            runs["torch"] = bench_gru.torch_epoch(tdev, spec, X_host, y_host, weights)
        times, cpu = interleave(runs, opts.repeats, sync=rt.sync)
    per = spec.step_count()
    return [_row("gru", name, thr, median(times[name]) / per, "ms/step", 1e3, ratios=_ratios(times, name, list(runs)),
                 iterations=per, **_cpu_fields(cpu, name, list(runs), thr, rt, per=per)) for name in runs]


def memory_rows(opts: Options) -> list[dict]:
    """Peak RSS of one MLP epoch above the post-import baseline (fresh subprocess each) vs the theory."""
    spec = opts.mlp()
    theory = bench_memory.theory_bytes(spec)
    impls = ["portnn", "numpy"] + (["torch"] if opts.torch and load_runtime("numpy").torch_device() else [])
    rows = []
    for impl in impls:
        got = bench_memory.measure(impl, spec)
        rows.append({"section": "memory", "name": impl, "threads": 1, "unit": "MB", "value": got["peak_bytes"] / 1e6,
                     "theory_mb": theory["total"] / 1e6, "theory_parts_mb": {k: v / 1e6 for k, v in theory.items()},
                     "ratios": {"theory": got["peak_bytes"] / theory["total"]}, "hwm_reset": got["hwm_reset"]})
    return rows


def compiled_rows(opts: Options) -> list[dict]:
    """Compiled training on JAX against a hand-written ``jax.jit`` step, portnn eager on NumPy and torch eager,
    interleaved per workload in one fresh process on one CPU (JAX sizes its pool when it starts)."""
    why = bench_compiled.available()
    if why is not None:
        return [{"section": "compiled", "name": "portnn jax (jit)", "threads": None, "skipped": why}]
    return bench_compiled.measure(opts.mlp(), opts.cnn(), opts.seed_epochs_compiled(), opts.repeats, opts.torch,
                                  opts.gpt())


def meta(rt: Runtime, opts: Options) -> dict[str, Any]:
    """Where and how the run was made: versions, BLAS kernel and threads, BLAS environment variables."""
    info = {"backend": rt.backend, "device": rt.device_name, "quick": opts.quick, "python": platform.python_version(),
            "numpy": np.__version__, "machine": platform.machine(), "processor": _cpu_name(),
            "blas": blas_info(), "env": blas_env()}
    if rt.torch_device() is not None:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads_default"] = torch.get_num_threads()
        info["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_suite(opts: Options, log: Any = None) -> dict[str, Any]:
    """Run the chosen sections in order (peak first) and return {'meta', 'rows', 'bars'}."""
    say = log or (lambda _msg: None)
    rt = load_runtime(opts.backend, opts.device)
    if rt.is_gpu:
        opts.threads = (None,)
    result: dict[str, Any] = {"meta": meta(rt, opts), "rows": []}
    rows = result["rows"]
    if "peak" in opts.sections:
        say("matmul peak ...")
        rows += peak_rows(rt, opts)
    if "mlp" in opts.sections:
        say("MLP epoch ...")
        rows += mlp_rows(rt, opts, rows)
    if "seed" in opts.sections:
        say("seed net ...")
        rows += seed_rows(rt, opts)
    if "cnn" in opts.sections:
        say("CNN epoch ...")
        rows += cnn_rows(rt, opts)
    if "gru" in opts.sections:
        say("GRU epoch ...")
        rows += gru_rows(rt, opts)
    if "memory" in opts.sections and rt.backend == "numpy":
        say("peak memory (subprocesses) ...")
        rows += memory_rows(opts)
    if "compiled" in opts.sections and rt.backend == "numpy":
        say("compiled training (JAX) ...")
        rows += compiled_rows(opts)
    result["meta"]["blas_after"] = blas_info()
    result["bars"] = bars(rows, rt.backend, judged=not opts.quick)
    return result


def _find(rows: list[dict], section: str, name: str, thr: Any = "any") -> dict | None:
    for r in rows:
        if r["section"] == section and r["name"] == name and (thr == "any" or r["threads"] == thr):
            return r
    return None


QUICK_NOTE = "not judged at --quick sizes"  # every bar is set for the full workloads


def bars(rows: list[dict], backend: str, judged: bool = True) -> list[dict]:
    """The issue's bars, each with the measured value, the limit and pass/fail (only those whose rows ran). With
    ``judged`` False (--quick sizes, where per-call overheads and allocator slack dominate) 'pass' is None."""
    out = []

    def bar(name: str, value: float | None, limit: float, higher_is_better: bool = False) -> None:
        if value is not None:
            ok = value >= limit if higher_is_better else value <= limit
            out.append({"bar": name, "value": value, "limit": limit, "judged": judged,
                        "pass": bool(ok) if judged else None})

    _eager_bars(rows, backend, bar)
    _compiled_bars(rows, bar)
    r = _find(rows, "gru", "portnn")
    if r is not None and "torch" in r["ratios"]:
        bar(f"GRU step portnn {backend} / torch eager nn.GRU", r["ratios"]["torch"], 2.0)
        bar(f"GRU step portnn {backend} / torch eager nn.GRU, cpu", r.get("cpu_ratios", {}).get("torch"), 2.0)
    return out


Bar = Callable[..., None]  # bar(name, value, limit, higher_is_better=False)


def _eager_bars(rows: list[dict], backend: str, bar: Bar) -> None:
    """The MLP epoch, the seed net and memory against their hand-written counterparts."""
    hand = "numpy" if backend == "numpy" else "cupy"
    for thr, limit in ((1, 1.10), (2, 1.15), (None, 1.10)):
        r = _find(rows, "mlp", "portnn", thr)
        if r is None:
            continue
        label = f"{thr} thread{'s' if thr != 1 else ''}" if thr else "device"
        bar(f"MLP epoch portnn/{hand}, {label}", r["ratios"].get(hand), limit)
        bar(f"MLP epoch portnn/{hand}, {label}, cpu", r.get("cpu_ratios", {}).get(hand), limit)
        if "torch" in r["ratios"]:
            bar(f"MLP epoch portnn/torch, {label} (< 1: faster)", r["ratios"]["torch"], 1.0)
        if thr in (1, None) and r.get("peak_frac") is not None:
            bar(f"MLP epoch portnn fraction of matmul peak, {label}", r["peak_frac"], 0.75, higher_is_better=True)
    r = _find(rows, "seed", "portnn")
    if r is not None and backend == "numpy":
        bar("seed net portnn µs/iteration", r["value"], 15.0)
        bar("seed net portnn / hand-written NumPy", r["ratios"].get("numpy"), 1.5)
        bar("seed net portnn µs/iteration, cpu", r.get("cpu_value"), 15.0)
        bar("seed net portnn / hand-written NumPy, cpu", r.get("cpu_ratios", {}).get("numpy"), 1.5)
    r = _find(rows, "memory", "portnn")
    if r is not None:
        bar("MLP epoch peak memory / theory", r["ratios"]["theory"], 1.1)


def _compiled_bars(rows: list[dict], bar: Bar) -> None:
    """portnn under jax.jit against hand-written JAX and torch eager."""
    jit = "portnn jax (jit)"
    r = _find(rows, "compiled mlp", jit)
    if r is not None:
        bar("MLP epoch portnn jax (jit) / hand-written jax.jit step", r["ratios"].get("hand jax.jit step"), 1.15)
        bar("MLP epoch portnn jax (jit) / portnn numpy (< 1: faster)", r["ratios"].get("portnn numpy"), 1.0)
        bar("MLP epoch portnn jax (jit) / torch eager (< 1: faster)", r["ratios"].get("torch eager"), 1.0)
    r = _find(rows, "compiled cnn", jit)
    if r is not None:
        bar("CNN epoch portnn jax (jit) / hand-written jax.jit step", r["ratios"].get("hand jax.jit step"), 1.25)
    r = _find(rows, "compiled seed", jit)
    if r is not None:
        bar("seed net, full-batch epochs, portnn jax (jit) / hand-written lax.fori_loop",
            r["ratios"].get("hand jax lax.fori_loop"), 3.0)
    r = _find(rows, "compiled sort-gpt", jit)
    if r is not None:
        bar("sort-gpt step portnn jax (jit) / hand-written jax.jit step", r["ratios"].get("hand jax.jit step"), 1.3)
        bar("sort-gpt step portnn jax (jit) / torch eager (< 1: faster)", r["ratios"].get("torch eager"), 1.0)


def failed_bars(result: dict[str, Any]) -> list[dict]:
    """The judged bars that failed (--fail-on-bars turns any into exit status 1)."""
    return [b for b in result.get("bars", []) if b.get("judged", True) and b["pass"] is False]


def _fmt(v: Any, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def blas_lines(pools: list[dict[str, Any]]) -> list[str]:
    """The thread pools threadpoolctl found, each with only what it knows (no 'None' fields)."""
    if any("error" in p for p in pools):
        return [f"  BLAS: unknown ({pools[0]['error']})"]
    lines = [] if any(p.get("user_api") == "blas" for p in pools) else ["  BLAS: unknown (threadpoolctl found no BLAS)"]
    for p in pools:
        known = [p.get("internal_api") != p.get("user_api") and p.get("internal_api"),
                 p.get("version") and f"version {p['version']}",
                 p.get("architecture") and f"kernel {p['architecture']}",
                 p.get("threading_layer") and f"{p['threading_layer']} threading",
                 p.get("num_threads") is not None and f"{p['num_threads']} threads by default"]
        label = "BLAS" if p.get("user_api") == "blas" else "OpenMP" if p.get("user_api") == "openmp" else "pool"
        prefix = f" ({p['prefix']})" if p.get("prefix") else ""
        lines.append(f"  {label}: " + ", ".join(k for k in known if k) + prefix)
    return lines


def _median_cell(r: dict[str, Any]) -> tuple[str, str]:
    """(median, unit) cells: times in a readable unit per epoch or iteration, other values as measured."""
    unit = r.get("unit", "")
    if "median_s" in r and "/" in unit:
        per = unit.split("/")[1]
        return format_duration(r["median_s"]), "per " + ("iteration" if per == "iter" else per)
    value = r.get("value")
    return ("" if value is None else _fmt(value, ".4g")), unit


def table(result: dict[str, Any]) -> str:
    """The terminal table: one line per row, then the bars."""
    m = result["meta"]
    lines = [f"portnn bench: backend {m['backend']} on {m['device']}{' (quick sizes)' if m['quick'] else ''}; "
             f"numpy {m['numpy']}" + (f", torch {m['torch']}" if "torch" in m else "") + f"; {m['processor']}"]
    lines += blas_lines(m["blas_after"])
    lines.append("  env " + ", ".join(f"{k}={'(unset)' if v is None else v}" for k, v in m["env"].items()))
    head = ("section", "impl", "thr", "median", "unit", "vs numpy", "vs torch", "other", "GFLOP/s", "% peak",
            "cpu", "cpu vs numpy", "cpu vs torch")
    body = []
    for r in result["rows"]:
        thr = "-" if r.get("threads") is None else str(r["threads"])
        if "skipped" in r:
            body.append((r["section"], r["name"], thr, "skipped: " + r["skipped"], *[""] * (len(head) - 4)))
            continue
        ratios = dict(r.get("ratios", {}))
        other = ", ".join(f"/{k} {v:.2f}" for k, v in ratios.items() if k not in ("numpy", "torch"))
        if r.get("compile_s"):
            other = ", ".join(x for x in (other, f"compile {format_duration(r['compile_s'])}") if x)
        body.append((r["section"], r["name"], thr, *_median_cell(r),
                     _fmt(ratios.get("numpy"), ".3f") if "numpy" in ratios else "",
                     _fmt(ratios.get("torch"), ".3f") if "torch" in ratios else "", other,
                     _fmt(r.get("gflops"), ".1f") if "gflops" in r else "",
                     _fmt(100 * r["peak_frac"], ".1f") if r.get("peak_frac") is not None else "",
                     format_duration(r["cpu_s"]) if "cpu_s" in r else _fmt(r.get("cpu_value"), ".4g")
                     if "cpu_value" in r else "",
                     *(f"{r['cpu_ratios'][k]:.3f}" if k in r.get("cpu_ratios", {}) else ""
                       for k in ("numpy", "torch"))))
        if r["section"] == "memory":
            body[-1] = (*body[-1][:7], f"theory {r['theory_mb']:.1f} MB, x{ratios['theory']:.3f}", *[""] * 5)
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    lines.append("")
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]]
    if result.get("bars"):
        lines += ["", "bars (ratios are medians of per-round ratios of interleaved runs; 'cpu' = thread CPU time, "
                  "shown beside wall time because a shared machine inflates wall time):"]
        if not all(b.get("judged", True) for b in result["bars"]):
            lines.append(f"  {QUICK_NOTE}: they are set for the full workloads, and --quick checks only that the "
                         "suite runs; the values are shown for reference")
        lines += [f"  {_verdict(b)}  {b['bar']}: {bar_value(b['value'], b['limit'])} (limit "
                  f"{'>=' if 'fraction' in b['bar'] else '<='} {b['limit']:g})" for b in result["bars"]]
    return "\n".join(lines)


def bar_value(value: float, limit: float) -> str:
    """``value`` with 3 decimals, or as many more as it takes not to read as the limit: a FAIL of 1.1004 against
    1.1 is printed '1.1004', never '1.100'."""
    for decimals in range(3, 18):
        text = f"{value:.{decimals}f}"
        if value == limit or float(text) != limit:
            return text
    return repr(value)


def _verdict(b: dict[str, Any]) -> str:
    if not b.get("judged", True):
        return "----"
    return "PASS" if b["pass"] else "FAIL"
