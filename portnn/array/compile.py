"""How a backend compiles a pure function of arrays, as its ``[compile]`` table in ``backends/*.toml`` says: the one
place that knows ``jax.jit``, ``jax.lax.scan`` and ``torch.compile``. Training code asks for ``jit`` and ``scan``
and gets the eager function and a Python loop on backends that do not compile (NumPy, array-api-strict, CuPy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .backends import Backend

Fn = Callable[..., Any]


class Compiler:
    """Eager: ``jit`` returns the function itself and ``scan`` is a Python loop."""

    method = "none"
    donate = False
    scans = False  # has a compiled loop (otherwise scan() would unroll its body into the compiled graph)

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend
        self.traces = 0  # how many times a compiled function was traced (the body ran in Python to build a graph)
        self.compile_seconds = 0.0  # time of the calls that traced

    @property
    def compiles(self) -> bool:
        return self.method != "none"

    def trace_errors(self) -> tuple[type[BaseException], ...]:
        """What the compiler raises when a function cannot be traced (a host read or a Python branch on a value)."""
        return ()

    def counted(self, fn: Fn) -> Fn:
        """``fn`` that counts its runs in Python: under a compiler those are its traces."""
        def traced(*args: Any) -> Any:
            self.traces += 1
            return fn(*args)

        return traced

    def jit(self, fn: Fn, donate: tuple[int, ...] = ()) -> Fn:
        """``fn`` compiled (here: as it is); ``donate``: positions of arguments whose buffers it may reuse."""
        return fn

    def timed(self, jitted: Fn) -> Fn:
        """``jitted`` with the wall time of each call that traced added to ``compile_seconds``."""
        def call(*args: Any) -> Any:
            before, start = self.traces, time.perf_counter()
            out = jitted(*args)
            if self.traces != before:
                self.compile_seconds += time.perf_counter() - start
            return out

        return call

    def inputs(self, values: Any, xp: Any, device: Any, dtype: str = "int64") -> Any:
        """A small host array (step counters and batch rows as int64, a schedule's rates as float64) as an input of
        a compiled call."""
        from . import host

        return host.from_numpy(values, xp, device=device, dtype=getattr(xp, dtype))

    def copy_tree(self, tree: Any, xp: Any, device: Any) -> Any:
        """A copy of every array of a tree (the model must not share buffers with a carry that will be donated)."""
        if isinstance(tree, dict):
            return {k: self.copy_tree(v, xp, device) for k, v in tree.items()}
        if isinstance(tree, list | tuple):
            return type(tree)(self.copy_tree(v, xp, device) for v in tree)
        return xp.asarray(tree, dtype=tree.dtype, device=device, copy=True)

    def scan(self, body: Fn, carry: Any, xs: Any, length: int) -> tuple[Any, list[Any]]:
        """``carry, y = body(carry, x)`` over the ``length`` leading slices of ``xs`` (a tuple of arrays, or None):
        (final carry, the ys). A Python loop here; a compiled loop where the backend has one."""
        ys = []
        for i in range(length):
            carry, y = body(carry, None if xs is None else tuple(a[i, ...] for a in xs))
            ys.append(y)
        return carry, ys


class JaxCompiler(Compiler):
    """``jax.jit`` (with donated buffers where the backend file allows) and ``jax.lax.scan``."""

    method = "jax.jit"
    scans = True

    def __init__(self, backend: Backend | None = None) -> None:
        super().__init__(backend)
        self.donate = bool(backend.compile.get("donate", False)) if backend is not None else False

    def jit(self, fn: Fn, donate: tuple[int, ...] = ()) -> Fn:
        import jax

        return self.timed(jax.jit(self.counted(fn), donate_argnums=donate if self.donate else ()))

    def scan(self, body: Fn, carry: Any, xs: Any, length: int) -> tuple[Any, Any]:
        import jax

        return jax.lax.scan(body, carry, xs, length=length)

    def inputs(self, values: Any, xp: Any, device: Any, dtype: str = "int64") -> Any:
        import numpy as np

        # a NumPy argument of a jitted call goes to the device of its other (committed) arguments inside the call,
        # which costs a tenth of placing it first (jnp.asarray(..., device=) dispatches a computation of its own)
        return np.asarray(values, dtype=dtype)

    def copy_tree(self, tree: Any, xp: Any, device: Any) -> Any:
        import jax

        if not hasattr(self, "_copier"):
            self._copier = jax.jit(lambda t: jax.tree.map(lambda a: a.copy(), t))  # one call for the whole tree
        return self._copier(tree)

    def trace_errors(self) -> tuple[type[BaseException], ...]:
        import jax

        return (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError,
                jax.errors.UnexpectedTracerError)


class TorchCompiler(Compiler):
    """``torch.compile`` of the whole step (inductor, static shapes); batches are looped in Python."""

    method = "torch.compile"

    def jit(self, fn: Fn, donate: tuple[int, ...] = ()) -> Fn:
        import torch
        from torch._inductor.compile_fx import compile_fx  # the default backend, wrapped to count its graphs

        def counting(graph: Any, example_inputs: Any) -> Any:
            self.traces += 1  # outside the traced code: mutating Python state inside it would force recompiles
            return compile_fx(graph, example_inputs)

        return self.timed(torch.compile(fn, backend=counting, dynamic=False))

    def trace_errors(self) -> tuple[type[BaseException], ...]:
        from torch._dynamo import exc

        return (exc.BackendCompilerFailed, exc.Unsupported)


COMPILERS: dict[str, type[Compiler]] = {"none": Compiler, "jax.jit": JaxCompiler, "torch.compile": TorchCompiler}


def compiler(backend: Backend, requested: bool | str) -> Compiler:
    """The compiler ``fit(compile=requested)`` uses on ``backend``: True compiles (ValueError when the backend
    cannot), False never, 'auto' where the backend file says it pays."""
    if requested not in (True, False, "auto"):
        raise ValueError(f"fit: compile must be True, False or 'auto', got {requested!r}")
    method = backend.compile.get("method", "none")
    if requested is True and method == "none":
        raise ValueError(f"fit: compile=True, but backend {backend.name!r} does not compile (backends/{backend.name}"
                         ".toml [compile] method = 'none'); use compile='auto' or False")
    use = requested is True or (requested == "auto" and bool(backend.compile.get("auto", False)))
    return COMPILERS[method](backend) if use else Compiler(backend)
