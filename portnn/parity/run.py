"""Backend parity: train one model from ONE host initialisation on several backends/devices/dtypes and measure how
far each run ends from the NumPy reference, as |dW| / max(1, |W|) against the tolerances in ``backends/``.

The float64 reference is NumPy float64; float32 runs PASS or FAIL against NumPy float32 (the tolerances are
same-dtype parity) and also report their distance from the float64 reference next to NumPy float32's own.
The reference may be computed here or read from a golden file (``portnn.parity.golden``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..array import backends, host
from ..array.validation import COUNT, Optional
from ..data import recipes
from ..data.recipes import Recipe
from ..io import checkpoint
from ..train.callbacks import Callback, StepEvent
from ..train.model import Sequential

DTYPES = ("float64", "float32")
SUSPECT_RATIO = 10.0  # a float32 run this many times farther from float64 than NumPy float32 is flagged
REFERENCE = ("numpy", "cpu")

StepHook = Callable[[int, float, dict[str, np.ndarray] | None], None]


@dataclass(frozen=True)
class Target:
    """One cell of the parity matrix: a backend, one of its device strings, a float dtype, and whether the step is
    compiled (the backend's [compile] method: 'jax (jit)', 'torch (compile)')."""

    backend: str
    device: str
    dtype: str
    compiled: bool = False

    @property
    def label(self) -> str:
        """How the backend column shows it."""
        if not self.compiled:
            return self.backend
        method = backends.get(self.backend).compile.get("method", "none")
        return f"{self.backend} ({method.split('.')[-1]})"

    def __str__(self) -> str:
        return f"{self.backend}{'+compile' if self.compiled else ''}-{self.device}-{self.dtype}"


@dataclass(frozen=True)
class Problem:
    """Everything a run needs besides the target: the recipe (architecture, loss, optimizer), the host-side
    initial weights and data, and the hyper-parameters; built from a recipe here or read from a golden file."""

    recipe: Recipe
    seed: int
    init: dict[str, np.ndarray]
    X: np.ndarray
    y: np.ndarray
    lr: float
    epochs: int
    batch_size: int | None

    @classmethod
    def from_recipe(cls, name: str, seed: int = 1, epochs: int | None = None) -> Problem:
        """The recipe ``name`` with its host initialisation drawn from ``seed`` (optionally fewer/more epochs)."""
        epochs = Optional(COUNT)(epochs, "epochs", "parity")  # 0: every backend agrees on untrained weights
        recipe = recipes.get(name)
        X, y = recipe.data()
        init = recipe.model(seed).state_dict()
        return cls(recipe, int(seed), init, np.asarray(X), np.asarray(y), float(recipe.lr),
                   recipe.epochs if epochs is None else int(epochs), recipe.batch_size)

    def model(self) -> Sequential:
        """A fresh model of the recipe holding exactly the stored initial weights (host float64)."""
        net = self.recipe.model(self.seed)
        net.load_state_dict(self.init)
        return net

    def architecture(self) -> list[dict[str, Any]]:
        """The layer list (types and constructor arguments) of the recipe's model, as checkpoints store it."""
        return checkpoint.architecture(self.recipe.model(self.seed))["layers"]

    def hyper(self) -> dict[str, Any]:
        """JSON-able hyper-parameters: what, besides weights and data, decides the result."""
        return {"recipe": self.recipe.name, "seed": self.seed, "lr": self.lr, "epochs": self.epochs,
                "batch_size": self.batch_size, "loss": repr(self.recipe.loss()),
                "optimizer": repr(self.recipe.optimizer(self.lr)), "samples": int(self.X.shape[0]),
                **({"controls": repr(controls)} if (controls := self.recipe.controls(self.epochs)) else {})}


@dataclass
class Run:
    """The result of training one target: final host weights ('0.weight', ...), the loss of every step, seconds."""

    target: Target
    final: dict[str, np.ndarray]
    losses: list[float]
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.losses)


class _Steps(Callback):
    """Records the loss of every step and hands (step, loss, host weights or None) to ``on_step``."""

    def __init__(self, on_step: StepHook | None, snapshots: bool) -> None:
        self.losses: list[float] = []
        self.on_step_hook, self.snapshots = on_step, snapshots

    def on_step(self, event: StepEvent) -> None:
        self.losses.append(event.loss)
        if self.on_step_hook is not None:
            weights = event.model.state_dict() if self.snapshots else None
            self.on_step_hook(event.step, event.loss, weights)


def train(problem: Problem, target: Target, on_step: StepHook | None = None, snapshots: bool = False) -> Run:
    """Train ``problem`` on ``target`` with ``Sequential.fit`` exactly as a user would, observing every step with a
    per-step callback: ``on_step(step, loss, weights)`` gets host copies of the new weights when ``snapshots`` is
    True (for --trace), else None. The observation copies and never changes what is computed."""
    xp, device = backends.load(target.backend, target.device)
    net = problem.model().to(xp, device, target.dtype)
    X = host.from_numpy(problem.X, xp, device=device, dtype=None)
    y = host.from_numpy(problem.y, xp, device=device, dtype=None)
    steps = _Steps(on_step, snapshots)
    start = time.perf_counter()
    net.fit(X, y, loss=problem.recipe.loss(), optimizer=problem.recipe.optimizer(problem.lr), epochs=problem.epochs,
            **problem.recipe.controls(problem.epochs),
            batch_size=problem.batch_size, metrics=[], callbacks=[steps], compile=target.compiled)
    seconds = time.perf_counter() - start
    return Run(target, net.state_dict(), steps.losses, seconds)


# ---- measures ---------------------------------------------------------------------------------------------
def scaled_diff(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| / max(1, |ref|) in float64: the measure every tolerance in backends/ bounds."""
    a64, r64 = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a64.shape != r64.shape:
        raise ValueError(f"parity: shapes differ: {a64.shape} vs reference {r64.shape}")
    if a64.size == 0:
        return 0.0
    return float(np.max(np.abs(a64 - r64) / np.maximum(1.0, np.abs(r64))))


def abs_diff(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a - ref| in float64."""
    a64, r64 = np.asarray(a, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(a64 - r64))) if a64.size else 0.0


def layer_diffs(final: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per parameter ('0.weight', ...): {'abs': max |dW|, 'rel': max |dW| / max(1, |W|)}."""
    if set(final) != set(ref):
        raise ValueError(f"parity: parameters differ: run has {sorted(final)}, reference has {sorted(ref)}")
    return {k: {"abs": abs_diff(final[k], ref[k]), "rel": scaled_diff(final[k], ref[k])} for k in ref}


def worst(diffs: dict[str, dict[str, float]]) -> tuple[str, float]:
    """The parameter with the largest scaled difference, and that difference."""
    key = max(diffs, key=lambda k: diffs[k]["rel"])
    return key, diffs[key]["rel"]


def curve_diff(losses: list[float], ref: list[float] | np.ndarray) -> float:
    """max over steps of |dloss| / max(1, |loss|); inf when the step counts differ."""
    if len(losses) != len(ref):
        return float("inf")
    return scaled_diff(np.asarray(losses), np.asarray(ref)) if len(ref) else 0.0


# ---- targets ----------------------------------------------------------------------------------------------
def default_targets(dtypes: tuple[str, ...] = DTYPES) -> tuple[list[Target], list[str]]:
    """Every (backend, device) runnable here x ``dtypes``, NumPy first; plus a note for each backend skipped."""
    names = sorted(backends.registry(), key=lambda n: (n != "numpy", n))
    out: list[Target] = []
    skipped: list[str] = []
    for name in names:
        b = backends.get(name)
        devices = backends.runnable_devices(b)
        if not devices:
            why = "not installed" if not b.installed() else "needs a CUDA GPU, none is visible"
            skipped.append(f"{name} ({why})")
            continue
        out.extend(Target(name, dev, dt) for dev in devices for dt in dtypes)
        if b.compile.get("method", "none") != "none":  # and the same compiled: 'jax (jit)', 'torch (compile)'
            out.extend(Target(name, dev, dt, compiled=True) for dev in devices for dt in dtypes)
    return out, skipped


def parse_targets(spec: str, dtypes: tuple[str, ...] = DTYPES) -> list[Target]:
    """Targets from 'numpy,array_api_strict,torch:cuda,cupy:cuda:1,jax+compile' (a bare name: all its devices runnable
    here; '+compile': its compiled step). A backend that cannot run here raises the registry's clear error (not
    installed / no GPU)."""
    out: list[Target] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, device = item.partition(":")
        compiled = name.endswith("+compile")
        name = name.removesuffix("+compile")
        b = backends.get(name)
        if compiled and b.compile.get("method", "none") == "none":
            raise ValueError(f"--backends {item}: backend {name!r} does not compile (backends/{name}.toml [compile])")
        devices = [device] if device else backends.runnable_devices(b)
        if not devices:
            backends.load(name)  # raises: not installed, or needs a GPU
            raise RuntimeError(f"backend {name!r} has no device that can run here")
        for dev in devices:
            backends.load(name, dev)  # fail early, before any training, with the registry's message
            out.extend(Target(name, dev, dt, compiled) for dt in dtypes if Target(name, dev, dt, compiled) not in out)
    if not out:
        raise ValueError(f"--backends: no backend named in {spec!r}")
    return out


def parse_dtypes(spec: str) -> tuple[str, ...]:
    """('float64', 'float32') from 'float32,float64' or 'both' (validated, reference order)."""
    names = set(DTYPES) if spec.strip() == "both" else {s.strip() for s in spec.split(",") if s.strip()}
    bad = names - set(DTYPES)
    if bad or not names:
        raise ValueError(f"--dtype: expected float32, float64 or both, got {spec!r}")
    return tuple(d for d in DTYPES if d in names)


def tolerance(target: Target, recipe: str, override: float | None = None) -> float:
    """The backend's tolerance for this dtype and recipe, or ``override`` (e.g. 0 to see where exactness ends)."""
    return float(override) if override is not None else backends.get(target.backend).tol(target.dtype, recipe)
