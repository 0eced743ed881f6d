"""Golden parity files and run dumps: .npz files (no pickle, no object arrays, written atomically) that carry a
reference run, or one backend's run, from one machine or environment to another.

A golden file holds the initial weights, the data, the hyper-parameters, NumPy's final weights and per-step losses
for each dtype, and the library versions; ``--against`` re-runs that problem elsewhere and compares."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..data import recipes
from ..io import checkpoint
from .check import Reference, versions
from .run import Problem, Run, Target

GOLDEN_FORMAT = "portnn-parity-golden-1"
DUMP_FORMAT = "portnn-parity-run-1"


def _meta_array(meta: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)


def _read(path: str | os.PathLike, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of an .npz written here; ValueError naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable {what} (corrupt or truncated?): {err}") from err
    if "meta" not in arrays:
        raise ValueError(f"{path} has no 'meta' entry: it is not a {what}")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: the 'meta' entry of this {what} is not valid JSON: {err}") from err
    return meta, arrays


def _group(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def save_golden(path: str | os.PathLike, problem: Problem, ref: Reference, command: str = "") -> None:
    """Write the reference run ``ref`` of ``problem`` to ``path`` (.npz), replacing any old file atomically."""
    meta = {"format": GOLDEN_FORMAT, "hyper": problem.hyper(), "architecture": problem.architecture(),
            "description": problem.recipe.description, "dtypes": list(ref.dtypes),
            "steps": {dt: len(ref.losses[dt]) for dt in ref.dtypes}, "versions": versions(),
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command}
    arrays = {"meta": _meta_array(meta), "data/X": np.asarray(problem.X), "data/y": np.asarray(problem.y)}
    arrays.update({f"init/{k}": np.asarray(v, dtype=np.float64) for k, v in problem.init.items()})
    for dt in ref.dtypes:
        arrays.update({f"final/{dt}/{k}": np.asarray(v) for k, v in ref.final[dt].items()})
        arrays[f"loss/{dt}"] = np.asarray(ref.losses[dt], dtype=np.float64)
    if any(a.dtype == object for a in arrays.values()):
        raise TypeError("save_golden: refusing to write an object array (it would need pickle)")
    checkpoint.atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **kwds


def load_golden(path: str | os.PathLike) -> tuple[Problem, Reference, dict[str, Any]]:
    """(problem, reference, meta) from a golden file; ValueError when it is damaged or no longer matches its
    recipe (then regenerate it: see tests/golden/REGENERATE.md)."""
    meta, arrays = _read(path, "portnn parity golden file")
    if meta.get("format") != GOLDEN_FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {GOLDEN_FORMAT!r}")
    hyper = meta["hyper"]
    init = _group(arrays, "init/")
    missing = [k for k in ("data/X", "data/y") if k not in arrays] + ([] if init else ["init/*"])
    if missing:
        raise ValueError(f"{path}: golden file lacks {', '.join(missing)}")
    recipe = recipes.get(hyper["recipe"])
    if int(hyper["epochs"]) < 1:
        raise ValueError(f"{path}: golden file trained {hyper['epochs']} epochs; it needs at least 1 to compare")
    problem = Problem(recipe, int(hyper["seed"]), init, arrays["data/X"], arrays["data/y"], float(hyper["lr"]),
                      int(hyper["epochs"]), hyper["batch_size"])
    if problem.architecture() != meta["architecture"]:
        raise ValueError(f"{path}: recipe {recipe.name!r} now builds a different model than the golden file stores "
                         f"({meta['architecture']}); regenerate it (tests/golden/REGENERATE.md)")
    for key in ("loss", "optimizer", "controls"):  # controls (schedule, clipping): only recipes that have them
        if problem.hyper().get(key) != hyper.get(key):
            raise ValueError(f"{path}: recipe {recipe.name!r} now uses {key} {problem.hyper().get(key)}, the golden "
                             f"file {hyper.get(key)}; regenerate it (tests/golden/REGENERATE.md)")
    final, losses = {}, {}
    for dt in meta["dtypes"]:
        final[dt] = _group(arrays, f"final/{dt}/")
        if set(final[dt]) != set(init):
            raise ValueError(f"{path}: final/{dt} holds {sorted(final[dt])}, the initial weights {sorted(init)}")
        if f"loss/{dt}" not in arrays:
            raise ValueError(f"{path}: golden file lacks loss/{dt}")
        losses[dt] = [float(v) for v in arrays[f"loss/{dt}"]]
    made = meta.get("versions", {})
    source = (f"golden file {path} (made {meta.get('created', '?')} with numpy "
              f"{made.get('packages', {}).get('numpy', '?')} on {made.get('machine', '?')})")
    return problem, Reference(source, final, losses), meta


def dump_run(folder: str | os.PathLike, run: Run, problem: Problem) -> Path:
    """Write one backend's run (final weights, per-step losses, hyper-parameters, versions) into ``folder``."""
    meta = {"format": DUMP_FORMAT, "hyper": problem.hyper(), "target": vars(run.target), "seconds": run.seconds,
            "versions": versions()}
    arrays = {"meta": _meta_array(meta), "loss": np.asarray(run.losses, dtype=np.float64)}
    arrays.update({f"final/{k}": np.asarray(v) for k, v in run.final.items()})
    path = Path(folder) / f"{problem.recipe.name}-{run.target}.npz"
    checkpoint.atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]  # numpy's stub: **kwds
    return path


def load_dump(path: str | os.PathLike) -> tuple[Run, dict[str, Any]]:
    """(run, meta) from a file written by ``dump_run``."""
    meta, arrays = _read(path, "portnn parity run dump")
    if meta.get("format") != DUMP_FORMAT:
        raise ValueError(f"{path} has format {meta.get('format')!r}, expected {DUMP_FORMAT!r}")
    run = Run(Target(**meta["target"]), _group(arrays, "final/"), [float(v) for v in arrays["loss"]],
              float(meta.get("seconds", 0.0)), meta.get("versions", {}))
    return run, meta
