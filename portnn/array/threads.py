"""Intra-op CPU threads of each backend, set as its ``[threads]`` table in ``backends/*.toml`` says: a count the user
asks for (``--threads N``), or by default at most the CPUs this process may use (``os.sched_getaffinity``) unless
the user set the backend's own variables."""

from __future__ import annotations

import os
from typing import Any

# [threads] method: how a count is applied; default: what happens without one (see apply)
THREAD_METHODS = ("torch.set_num_threads", "threadpoolctl", "affinity", "none")
THREAD_DEFAULTS = ("cap", "own")


def use_threads(n: int | None) -> None:
    """Give every backend this process loads (already or later) ``n`` intra-op CPU threads; None restores the
    default: at most the CPUs this process may use, unless the user set the backend's variables."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive int or None, got {n!r}")
    _THREADS["requested"] = n
    for backend in list(_THREADS["backends"].values()):
        apply(backend)


def threads_note(name: str) -> str:
    """How the CPU threads of backend ``name`` were set in this process, e.g. '1 (requested)'."""
    return _THREADS["applied"].get(name, (None, "not loaded yet"))[1]


def allowed_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask, e.g. under ``taskset``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# requested: the count use_threads asked for; applied: backend -> (count it was applied for, note);
# original: (backend, what) -> the setting before portnn first changed it, restored by use_threads(None)
_THREADS: dict[str, Any] = {"requested": None, "applied": {}, "original": {}, "limiter": None, "backends": {}}


def apply(backend: Any) -> None:
    """Set ``backend``'s intra-op CPU threads as its [threads] table says, once per requested count."""
    n, applied = _THREADS["requested"], _THREADS["applied"]
    if backend.name in applied and applied[backend.name][0] == n:
        return
    method, spec = backend.threads["method"], backend.threads
    if method == "none":
        note = "not set (it computes on the GPU)"
    elif n is not None:
        _set_threads(backend, method, n)
        note = f"{n} (requested)"
    else:
        _restore_threads(backend, method)
        note = _default_threads(backend, method, spec)
    applied[backend.name] = (n, note)
    _THREADS["backends"][backend.name] = backend


def _default_threads(backend: Any, method: str, spec: dict[str, Any]) -> str:
    cpus = allowed_cpus()
    user = [f"{k}={os.environ[k]}" for k in spec.get("user_env", ()) if os.environ.get(k)]
    if user:
        return f"set by {user[0]}"
    current = _current_threads(method)
    if spec["default"] == "own" or current is None:
        return f"{backend.name} default ({cpus} CPUs allowed)"
    if current > cpus:
        _set_threads(backend, method, cpus)
        return f"{cpus} (capped to the {cpus} CPUs allowed; {backend.name} had {current})"
    return f"{current} ({backend.name} default; {cpus} CPUs allowed)"


def _current_threads(method: str) -> int | None:
    """The intra-op thread count the backend uses now (None: not known without changing it)."""
    if method == "torch.set_num_threads":
        import torch

        return int(torch.get_num_threads())
    if method == "threadpoolctl":
        try:
            from threadpoolctl import threadpool_info
        except ImportError:
            return None
        return max((int(p["num_threads"]) for p in threadpool_info()), default=None)
    return None


def _set_threads(backend: Any, method: str, n: int) -> None:
    original = _THREADS["original"]
    if method == "torch.set_num_threads":
        import torch

        original.setdefault((backend.name, method), torch.get_num_threads())
        torch.set_num_threads(n)
    elif method == "threadpoolctl":
        try:
            from threadpoolctl import threadpool_limits
        except ImportError as err:
            raise RuntimeError(f"setting {backend.name}'s threads needs threadpoolctl: pip install "
                               "'portnn[bench]' (or leave out --threads)") from err
        if _THREADS["limiter"] is not None:
            _THREADS["limiter"].restore_original_limits()
        _THREADS["limiter"] = threadpool_limits(limits=n)
    elif method == "affinity":
        _pin_before_start(backend, n)


def _pin_before_start(backend: Any, n: int) -> None:
    """Restrict this thread (and the threads it starts) to ``n`` of its CPUs, before JAX's CPU client starts:
    that client sizes its pool from the affinity mask and offers no other setting."""
    if not hasattr(os, "sched_setaffinity"):
        raise RuntimeError(f"setting {backend.name}'s CPU threads needs an affinity mask (Linux); start it under "
                           "a tool that limits the CPUs instead")
    cpus = sorted(os.sched_getaffinity(0))
    if n == len(cpus):
        return
    if n > len(cpus):
        raise ValueError(f"{backend.name} runs at most one thread per CPU this process may use: {n} threads "
                         f"requested, {len(cpus)} CPU(s) allowed ({', '.join(map(str, cpus))})")
    if _jax_started():
        raise RuntimeError(f"{backend.name}'s CPU threads can only be set before it first computes in this "
                           f"process; it already runs on {len(cpus)} CPU(s) (start a new process, or use taskset)")
    _THREADS["original"].setdefault((backend.name, "affinity"), set(cpus))
    os.sched_setaffinity(0, cpus[:n])


def _jax_started() -> bool:
    try:
        from jax._src import xla_bridge  # private, hence the guard: no public way to ask

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


def _restore_threads(backend: Any, method: str) -> None:
    """Undo what an earlier requested count changed, so the default applies to the backend's own setting."""
    original = _THREADS["original"].pop((backend.name, method), None)
    if method == "threadpoolctl" and _THREADS["limiter"] is not None:
        _THREADS["limiter"].restore_original_limits()
        _THREADS["limiter"] = None
    elif original is not None and method == "torch.set_num_threads":
        import torch

        torch.set_num_threads(original)
    elif original is not None and method == "affinity" and not _jax_started():
        os.sched_setaffinity(0, original)
