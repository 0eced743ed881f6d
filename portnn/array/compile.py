"""How a backend compiles a pure function of arrays, as its ``[compile]`` table in ``backends/*.toml`` says: the one
place that knows ``jax.jit``, ``jax.lax.scan`` and ``torch.compile``. Training code asks for ``jit`` and ``scan``
and gets the eager function and a Python loop on backends that do not compile (NumPy, array-api-strict, CuPy).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import tree
from .backends import Backend

Fn = Callable[..., Any]


class Compiler:
    """Eager: ``jit`` returns the function itself, ``scan`` and ``loop`` are Python loops."""

    method = "none"
    donate = False
    loops = False  # has compiled loops (otherwise a loop inside a compiled function would be unrolled into it)

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

    @staticmethod
    def keep_compiled(name: str) -> None:
        """Keep the programs this compiler builds for backend ``name`` in its ``cache_folder``, so a later process
        of the same model does not compile them again (here: nothing is compiled)."""

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

    def inputs(self, values: Any, xp: Any, device: Any, dtype: Any) -> Any:
        """A small host array (step counters and batch rows, a schedule's rates) as an input of a compiled call, in
        ``dtype`` (an ``xp`` dtype)."""
        from . import host

        return host.from_numpy(values, xp, device=device, dtype=dtype)

    def copy_tree(self, arrays: Any, xp: Any, device: Any) -> Any:
        """A copy of every array of a tree (the model must not share buffers with a carry that will be donated)."""
        return tree.copy(arrays, xp, device)

    def scan(self, body: Fn, carry: Any, xs: Any, length: int) -> tuple[Any, Any]:
        """``carry, y = body(carry, x)`` over the ``length`` leading slices of ``xs`` (a tree of arrays, or None):
        (final carry, the ys stacked on a new leading axis, as jax.lax.scan). A Python loop here."""
        ys = []
        for i in range(length):
            carry, y = body(carry, None if xs is None else tree.map(lambda a, i=i: a[i, ...], xs))
            ys.append(y)
        if not ys or ys[0] is None:
            return carry, None
        return carry, tree.map(lambda *rows: _stack(rows), ys[0], *ys[1:]) if len(ys) > 1 else \
            tree.map(lambda row: _stack((row,)), ys[0])

    def loop(self, body: Fn, carry: Any, count: Any, capacity: int) -> tuple[Any, Any]:
        """``carry, y = body(i, carry)`` for i in range(count) (``count`` may be a 0-d array, so a compiled loop need
        not be traced again for another count): (final carry, the ys stacked, at least ``count`` rows of at most
        ``capacity``). A Python loop here."""
        from . import host

        ys = []
        for i in range(int(host.to_numpy(count)) if not isinstance(count, int) else count):
            carry, y = body(i, carry)
            ys.append(y)
        return carry, _stack(ys) if ys else None

    def host_call(self, fn: Fn, x: Any) -> Any:
        """``fn`` (a host function of one NumPy array, returning one of the same shape and dtype) applied to ``x``
        from inside a compiled function: how a collective (an MPI Allreduce) runs in the middle of a traced step."""
        import array_api_compat

        from . import host

        xp = array_api_compat.array_namespace(x)
        return host.from_numpy(fn(host.to_numpy(x)), xp, device=array_api_compat.device(x), dtype=x.dtype)


class JaxCompiler(Compiler):
    """``jax.jit`` (with donated buffers where the backend file allows), ``jax.lax.scan`` and ``fori_loop``."""

    method = "jax.jit"
    loops = True

    def __init__(self, backend: Backend | None = None) -> None:
        super().__init__(backend)
        self.donate = bool(backend.compile.get("donate", False)) if backend is not None else False

    @staticmethod
    def keep_compiled(name: str) -> None:
        import jax

        if jax.config.values.get("jax_compilation_cache_dir") is not None:  # the user's own (JAX_COMPILATION_...)
            return
        folder = cache_folder(name)
        if folder is None:
            return
        jax.config.update("jax_compilation_cache_dir", str(folder))
        # JAX keeps only programs that took over 1 s to compile by default: portnn's steps take less on small
        # models, and every program counts at start-up; a threshold the user set in the environment is kept
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size threshold either

    def jit(self, fn: Fn, donate: tuple[int, ...] = ()) -> Fn:
        import jax

        return self.timed(jax.jit(self.counted(fn), donate_argnums=donate if self.donate else ()))

    def scan(self, body: Fn, carry: Any, xs: Any, length: int) -> tuple[Any, Any]:
        import jax

        return jax.lax.scan(body, carry, xs, length=length)

    def loop(self, body: Fn, carry: Any, count: Any, capacity: int) -> tuple[Any, Any]:
        import jax
        import jax.numpy as jnp

        row = jax.eval_shape(lambda c: body(0, c)[1], carry)
        buffer = jnp.zeros((capacity, *row.shape), dtype=row.dtype)

        def step(i: Any, both: tuple[Any, Any]) -> tuple[Any, Any]:
            c, ys = both
            c, y = body(i, c)
            return c, ys.at[i].set(y)

        return jax.lax.fori_loop(0, count, step, (carry, buffer))

    def host_call(self, fn: Fn, x: Any) -> Any:
        import jax
        import numpy as np
        from jax.experimental import io_callback

        # ordered: every rank runs its collectives in program order, as the eager step does
        return io_callback(lambda h: np.asarray(fn(np.array(h)), dtype=h.dtype), jax.ShapeDtypeStruct(x.shape, x.dtype),
                           x, ordered=True)

    def copy_tree(self, arrays: Any, xp: Any, device: Any) -> Any:
        import jax

        if not hasattr(self, "_copier"):
            self._copier = jax.jit(lambda t: jax.tree.map(lambda a: a.copy(), t))  # one call for the whole tree
        return self._copier(arrays)

    def inputs(self, values: Any, xp: Any, device: Any, dtype: Any) -> Any:
        import numpy as np

        # a NumPy argument of a jitted call goes to the device of its other (committed) arguments inside the call,
        # which costs a tenth of placing it first (jnp.asarray(..., device=) dispatches a computation of its own)
        return np.asarray(values, dtype=dtype)

    def trace_errors(self) -> tuple[type[BaseException], ...]:
        import jax

        return (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError,
                jax.errors.UnexpectedTracerError)


class GraphBreak(RuntimeError):
    """torch.compile cannot trace the whole step as one graph (raised instead of Dynamo's pages of messages)."""


class TorchCompiler(Compiler):
    """``torch.compile`` of the whole step as one graph (inductor, static shapes); batches are looped in Python."""

    method = "torch.compile"

    def jit(self, fn: Fn, donate: tuple[int, ...] = ()) -> Fn:
        import torch
        from torch._dynamo import exc
        from torch._inductor.compile_fx import compile_fx  # the default backend, wrapped to count its graphs

        def counting(graph: Any, example_inputs: Any) -> Any:
            self.traces += 1  # outside the traced code: mutating Python state inside it would force recompiles
            return compile_fx(graph, example_inputs)

        # fullgraph: one graph or a GraphBreak. A break used to compile each piece apart, again for every shape it
        # met, until Dynamo's recompile limit left the rest eager (digits-cnn: 69 traces, 226 lines of warnings)
        compiled = torch.compile(fn, backend=counting, dynamic=False, fullgraph=True)

        def call(*args: Any) -> Any:
            with warnings.catch_warnings():
                # Dynamo traces through array-api-compat's lru_cache'd type checks (pure functions of a class) and
                # says so once per call site
                warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`",
                                        category=UserWarning)
                try:
                    return compiled(*args)
                except (exc.Unsupported, exc.UserError) as err:  # a graph break under fullgraph
                    raise GraphBreak(f"torch.compile cannot trace the step as one graph: {_traced_at(err)} does "
                                     f"what its tracer cannot follow ({str(err).splitlines()[0].strip()}); train "
                                     "with compile=False (TORCH_LOGS=graph_breaks shows the details)") from None

        return self.timed(call)

    def trace_errors(self) -> tuple[type[BaseException], ...]:
        from torch._dynamo import exc

        return (exc.BackendCompilerFailed, exc.Unsupported, exc.UserError, GraphBreak)


def _traced_at(err: BaseException) -> str:
    """Where a traced step failed, as 'ReLU.forward (portnn/nn/activations.py:37)' (the path relative to the current
    folder when it is inside it): the innermost layer or loss method (forward/backward) of the user code Dynamo
    followed, else its innermost frame."""
    stack = list(getattr(err, "real_stack", None) or [])
    if not stack:
        return "the step"
    frame = next((f for f in reversed(stack) if f.name in ("forward", "backward")), stack[-1])
    name = frame.name
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) != frame.filename:
            continue
        for owner in [v for v in vars(module).values() if isinstance(v, type)]:
            code = getattr(vars(owner).get(frame.name), "__code__", None)
            if code is None:
                continue
            lines = [line for _, _, line in code.co_lines() if line]
            if lines and min(lines) <= (frame.lineno or 0) <= max(lines):
                name = code.co_qualname
    path = Path(frame.filename)
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    return f"{name} ({shown}:{frame.lineno})"


COMPILERS: dict[str, type[Compiler]] = {"none": Compiler, "jax.jit": JaxCompiler, "torch.compile": TorchCompiler}

CACHE_ENV = "PORTNN_COMPILE_CACHE"  # 0 (or off/false/no): never keep compiled programs; a folder: keep them there
_kept: set[str] = set()  # the backends whose compiled programs are kept already in this process


def cache_folder(name: str) -> Path | None:
    """The folder that keeps backend ``name``'s compiled programs between runs: ``$PORTNN_COMPILE_CACHE/NAME``
    when that names a folder, else ``$XDG_CACHE_HOME/portnn/NAME`` (``~/.cache/portnn/NAME``); None when the
    variable is 0/off/false/no, or when the folder is not private to this user (another user who can write there
    could make this process run their code: a compiled program is code)."""
    given = os.environ.get(CACHE_ENV, "").strip()
    if given.lower() in ("0", "off", "false", "no"):
        return None
    if given and given.lower() not in ("1", "on", "true", "yes"):
        root = Path(given).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "portnn"
    folder = root / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = folder.stat()
    except OSError:  # a read-only home: compile every time, as without the cache
        return None
    if hasattr(os, "getuid") and (found.st_uid != os.getuid() or found.st_mode & 0o022):
        return None
    return folder


def keep_compiled(backend: Backend) -> None:
    """Once per process, keep ``backend``'s compiled programs on disk where its file says so (``[compile] cache``)
    and ``$PORTNN_COMPILE_CACHE`` allows: the second run of a model loads them instead of compiling."""
    if backend.name in _kept or not backend.compile.get("cache", False):
        return
    _kept.add(backend.name)
    COMPILERS[backend.compile.get("method", "none")].keep_compiled(backend.name)


def compiler(backend: Backend, requested: bool | str) -> Compiler:
    """The compiler ``fit(compile=requested)`` uses on ``backend``: True compiles (ValueError when the backend
    cannot), False never, 'auto' where the backend file says it pays."""
    if requested not in (True, False, "auto"):
        raise ValueError(f"fit: compile must be True, False or 'auto', got {requested!r}")
    method = backend.compile.get("method", "none")
    if requested is True and method == "none":
        raise ValueError(f"fit: compile=True, but backend {backend.name!r} does not compile (backends/{backend.name}"
                         ".toml [compile] method = 'none'); use compile='auto' or False")
    keep_compiled(backend)  # before the first program of this backend is compiled, eager ones included
    use = requested is True or (requested == "auto" and bool(backend.compile.get("auto", False)))
    return COMPILERS[method](backend) if use else Compiler(backend)


def _stack(rows: Any) -> Any:
    import array_api_compat

    xp = array_api_compat.array_namespace(rows[0])
    return xp.stack(list(rows), axis=0)
