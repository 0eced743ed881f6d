"""Peak memory of one MLP epoch above the post-import baseline, each measurement in a fresh subprocess.

The figure is the resident-set high-water mark (VmHWM in /proc/self/status; ru_maxrss elsewhere), which sees every
allocator (tracemalloc sees only Python's). Where Linux allows, the mark is reset after the imports (writing 5 to
/proc/self/clear_refs), so the peak counts only what the epoch itself (with its data) needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from . import mlp as bench_mlp
from .mlp import MLPSpec

IMPLS = ("portnn", "numpy", "torch")


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def theory_bytes(spec: MLPSpec) -> dict[str, int]:
    """What an epoch must hold: the data (float32 X, int64 y), parameters, gradients and one step's activations."""
    params = sum(i * o + o for i, o in zip(spec.widths[:-1], spec.widths[1:], strict=True)) * 4
    data = spec.samples * spec.widths[0] * 4 + spec.samples * 8
    parts = {"data": data, "params": params, "grads": params, "activations": spec.activation_bytes()}
    parts["total"] = sum(parts.values())
    return parts


def child(impl: str, samples: int, batch: int) -> dict[str, Any]:
    """Run in the subprocess: import everything, reset the high-water mark, build the data, train one epoch."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from .runtime import load_runtime

    if impl == "torch":
        import torch

        torch.set_num_threads(1)
    rt = load_runtime("numpy")
    spec = MLPSpec(samples=samples, batch=batch)
    with threadpool_limits(limits=1):
        was_reset = _reset_peak()
        baseline = _peak_kib() if was_reset else _status_kib("VmRSS") or _peak_kib()
        X, y = spec.data()
        weights = bench_mlp.host_weights(spec.model())
        if impl == "portnn":
            epoch = bench_mlp.portnn_epoch(rt, spec, X, y)
        elif impl == "numpy":
            epoch = bench_mlp.hand_epoch(np, spec, X, y, weights)
        else:
            epoch = bench_mlp.torch_epoch("cpu", spec, X, y, weights)
        epoch()
        peak = _peak_kib()
    return {"impl": impl, "baseline_kib": baseline, "peak_kib": peak, "hwm_reset": was_reset}


def measure(impl: str, spec: MLPSpec, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Peak bytes of one epoch of ``impl`` above its post-import baseline, from a fresh Python process."""
    code = f"import json, portnn.bench.memory as m; print(json.dumps(m.child({impl!r}, {spec.samples}, {spec.batch})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=env or dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"bench memory child for {impl} failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_bytes"] = (result["peak_kib"] - result["baseline_kib"]) * 1024
    return result
