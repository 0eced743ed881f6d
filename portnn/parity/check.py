"""Parity checks: the reference runs, one report row per target (PASS/FAIL against its tolerance), and --trace,
which compares loss and weights after every step and names the first step and layer that leave the tolerance."""

from __future__ import annotations

import importlib.metadata
import platform
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..array import backends
from .run import (
    REFERENCE,
    SUSPECT_RATIO,
    Problem,
    Run,
    Target,
    curve_diff,
    layer_diffs,
    scaled_diff,
    tolerance,
    train,
    worst,
)

TRAINING_ERRORS = (FloatingPointError, RuntimeError, ValueError, TypeError, KeyError)


@dataclass
class Reference:
    """NumPy's results per dtype: final host weights and per-step losses; per-step weights when computed here
    with --trace. ``source`` says where they come from (this machine, or a golden file)."""

    source: str
    final: dict[str, dict[str, np.ndarray]]
    losses: dict[str, list[float]]
    snapshots: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    local: bool = False  # computed by NumPy in this process: same BLAS kernels, so exactness is checkable

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.final)


def _collector(steps: list[dict[str, np.ndarray]]) -> Callable[[int, float, dict[str, np.ndarray] | None], None]:
    """An on_step hook appending each step's host weights to ``steps`` (it runs with snapshots on)."""
    def hook(_step: int, _loss: float, weights: dict[str, np.ndarray] | None) -> None:
        assert weights is not None
        steps.append(weights)

    return hook


def compute_reference(problem: Problem, dtypes: tuple[str, ...], trace: bool = False) -> Reference:
    """Train the reference (NumPy on the CPU) in float64 and in each other requested dtype, here."""
    final, losses, snapshots = {}, {}, {}
    for dtype in dict.fromkeys(("float64", *dtypes)):
        steps: list[dict[str, np.ndarray]] = []
        run = train(problem, Target(*REFERENCE, dtype), on_step=_collector(steps) if trace else None, snapshots=trace)
        final[dtype], losses[dtype] = run.final, run.losses
        if trace:
            snapshots[dtype] = steps
    return Reference("numpy on this machine", final, losses, snapshots, local=True)


@dataclass
class Row:
    """One target's result against the reference of its dtype (see ``Report``)."""

    target: Target
    tol: float
    steps: int = 0
    final_loss: float = float("nan")
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    worst_layer: str = ""
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    loss_diff: float = float("nan")
    seconds: float = 0.0
    f64_dist: float | None = None  # float32 runs: scaled distance from the float64 reference
    numpy_f64_dist: float | None = None  # ... and NumPy float32's own distance from it
    ratio: float | None = None
    suspect: bool = False
    first_bad: dict[str, Any] | None = None  # first step/layer out of tolerance
    error: str | None = None
    passed: bool = False
    run: Run | None = field(default=None, repr=False)  # the run itself (final weights, losses); not in as_dict

    def as_dict(self) -> dict[str, Any]:
        run, self.run = self.run, None
        try:
            out = asdict(self)
        finally:
            self.run = run
        out.pop("run")
        out["target"] = asdict(self.target)
        return _finite(out)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (nan, inf: unknown or no match) as None, for strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Tracer:
    """Called after every step of a run: compares its loss (and weights, when the reference has per-step
    weights) with the reference's same step and keeps the first step and layer out of tolerance."""

    def __init__(self, ref: Reference, dtype: str, tol: float) -> None:
        self.losses = ref.losses[dtype]
        self.snapshots = ref.snapshots.get(dtype)
        self.tol = tol
        self.first: dict[str, Any] | None = None

    def __call__(self, step: int, loss: float, weights: dict[str, np.ndarray] | None) -> None:
        if self.first is not None:
            return
        if step > len(self.losses):
            self.first = {"step": step, "layer": "steps", "diff": float("inf"),
                          "detail": f"the reference stopped after {len(self.losses)} steps"}
            return
        ref_loss = self.losses[step - 1]
        diff = scaled_diff(np.asarray(loss), np.asarray(ref_loss))
        if not diff <= self.tol:
            self.first = {"step": step, "layer": "loss", "diff": diff, "detail": f"loss {loss!r} vs {ref_loss!r}"}
            return
        if weights is not None and self.snapshots is not None:
            key, diff = worst(layer_diffs(weights, self.snapshots[step - 1]))
            if not diff <= self.tol:
                self.first = {"step": step, "layer": key, "diff": diff, "detail": "weights after the step"}


def first_loss_step(losses: list[float], ref: list[float], tol: float) -> dict[str, Any] | None:
    """The first step whose loss leaves the tolerance (known without --trace: every run records its losses)."""
    for step, (a, b) in enumerate(zip(losses, ref, strict=False), start=1):
        diff = scaled_diff(np.asarray(a), np.asarray(b))
        if not diff <= tol:
            return {"step": step, "layer": "loss", "diff": diff, "detail": f"loss {a!r} vs {b!r}"}
    return None


def compare(run: Run, ref: Reference, tol: float, traced: dict[str, Any] | None = None,
            traced_on: bool = False) -> Row:
    """The row of ``run`` against the reference of its dtype (float32 also against the float64 reference)."""
    dtype = run.target.dtype
    if dtype not in ref.final:
        return Row(run.target, tol, error=f"the reference ({ref.source}) has no {dtype} result")
    diffs = layer_diffs(run.final, ref.final[dtype])
    key, rel = worst(diffs)
    row = Row(run.target, tol, steps=run.steps, final_loss=run.losses[-1] if run.losses else float("nan"),
              max_abs=max((d["abs"] for d in diffs.values()), default=0.0), max_rel=rel, worst_layer=key,
              layers=diffs, loss_diff=curve_diff(run.losses, ref.losses[dtype]), seconds=run.seconds, run=run)
    if dtype != "float64" and "float64" in ref.final:
        row.f64_dist = _dist(run.final, ref.final["float64"])
        row.numpy_f64_dist = _dist(ref.final[dtype], ref.final["float64"])
        row.ratio = row.f64_dist / row.numpy_f64_dist if row.numpy_f64_dist > 0 else (
            1.0 if row.f64_dist == 0 else float("inf"))
        row.suspect = row.ratio > SUSPECT_RATIO
    if run.steps != len(ref.losses[dtype]):
        row.first_bad = {"step": min(run.steps, len(ref.losses[dtype])) + 1, "layer": "steps", "diff": float("inf"),
                         "detail": f"{run.steps} steps, the reference has {len(ref.losses[dtype])}"}
    else:
        row.first_bad = traced if traced_on else first_loss_step(run.losses, ref.losses[dtype], tol)
        if row.first_bad is None and not rel <= tol:
            row.first_bad = {"step": run.steps, "layer": key, "diff": rel,
                             "detail": "final weights" + ("" if traced_on else " (--trace finds the first step)")}
    row.passed = row.first_bad is None and rel <= tol and row.loss_diff <= tol
    return row


def _dist(final: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    return max((scaled_diff(final[k], ref[k]) for k in ref), default=0.0)


def check(problem: Problem, target: Target, ref: Reference, *, trace: bool = False,
          tol_override: float | None = None) -> Row:
    """Train ``target`` and compare it with ``ref``; a run that raises becomes a FAIL row carrying the error.

    A backend declared bit-identical to NumPy (``exact_to = "numpy"``: array-api-strict) is exact only against NumPy
    on the same machine: the BLAS kernel a machine picks (OPENBLAS_CORETYPE, the CPU) changes NumPy's last bits. So
    against a reference made elsewhere (a golden file) its run must equal NumPy's run here bit for bit, and is then
    compared with the file at NumPy's tolerance."""
    exact_to = backends.get(target.backend).exact_to
    if exact_to and not ref.local and tol_override is None and target.dtype in ref.final:
        here = check(problem, target, compute_reference(problem, (target.dtype,), trace), trace=trace)
        if not here.passed:
            here.error = here.error or (f"not bit-identical to {exact_to} on this machine (max scaled weight diff "
                                        f"{here.max_rel:.3e}, first out {here.first_bad})")
            return here
        assert here.run is not None
        return compare(here.run, ref, tolerance(Target(exact_to, "cpu", target.dtype), problem.recipe.name))
    tol = tolerance(target, problem.recipe.name, tol_override)
    if target.dtype not in ref.final:
        return Row(target, tol, error=f"the reference ({ref.source}) has no {target.dtype} result")
    tracer = Tracer(ref, target.dtype, tol) if trace else None
    try:
        run = train(problem, target, on_step=tracer, snapshots=bool(trace and ref.snapshots))
    except TRAINING_ERRORS as err:
        return Row(target, tol, error=f"{type(err).__name__}: {err}")
    return compare(run, ref, tol, tracer.first if tracer else None, traced_on=trace)


@dataclass
class Report:
    """Everything ``portnn parity`` prints and writes with --json."""

    hyper: dict[str, Any]
    reference: str
    rows: list[Row]
    skipped: list[str] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)
    tol_override: float | None = None
    trace: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "hyper": self.hyper, "reference": self.reference, "trace": self.trace,
                "tol_override": self.tol_override, "suspect_ratio": SUSPECT_RATIO, "skipped": self.skipped,
                "versions": self.versions, "rows": [r.as_dict() for r in self.rows]}


def run_parity(problem: Problem, targets: list[Target], *, reference: Reference | None = None, trace: bool = False,
               tol_override: float | None = None, progress: Callable[[Row], None] | None = None) -> Report:
    """Check every target against ``reference`` (default: NumPy computed here for the dtypes the targets use)."""
    if reference is None:
        reference = compute_reference(problem, tuple(dict.fromkeys(t.dtype for t in targets)), trace)
    rows = []
    for target in targets:
        rows.append(check(problem, target, reference, trace=trace, tol_override=tol_override))
        if progress is not None:
            progress(rows[-1])
    return Report(problem.hyper(), reference.source, rows, versions=versions(), tol_override=tol_override,
                  trace=trace)


def versions() -> dict[str, Any]:
    """Python, platform, portnn and the installed version of every backend's package (none is imported)."""
    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "machine": platform.machine(), "portnn": __version__}
    found: dict[str, str] = {}
    by_module = importlib.metadata.packages_distributions()
    for b in backends.registry().values():
        dist = re.split(r"[<>=!~;\[ ]", b.requirement, maxsplit=1)[0]
        for name in (dist, *by_module.get(b.module, ())):  # e.g. cupy-cuda11x where cupy-cuda12x is declared
            try:
                found[b.name] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    for extra in ("array-api-compat", "array-api-extra"):
        try:
            found[extra] = importlib.metadata.version(extra)
        except importlib.metadata.PackageNotFoundError:
            continue
    out["packages"] = found
    return out
