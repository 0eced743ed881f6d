"""What a fit asks of its backend: which compiler runs the step, and whether the host reads the loss after every
step (free on the CPU) or once per epoch (a read per step would be a device synchronisation per step: the GPUs and
their stand-in, ``[compile] epoch_reads`` in ``backends/*.toml``). Training code asks here instead of looking
backends up by name."""

from __future__ import annotations

from dataclasses import dataclass

from . import backends
from .compile import Compiler, compiler
from .placement import Placement, backend_name


@dataclass(frozen=True)
class Policy:
    """The compiler of a fit and how often it reads the host."""

    compiler: Compiler
    reads_per_step: bool


def policy(p: Placement, requested: bool | str) -> Policy:
    """The policy of ``fit(compile=requested)`` for a model placed at ``p``: a namespace outside ``backends/`` (one
    the user passed as a module) trains eagerly and reads per step."""
    name = backend_name(p.xp)
    backend = backends.registry().get(name)
    if backend is None:
        if requested is True:
            raise ValueError(f"fit: compile=True, but {name} is not a backend of backends/*.toml")
        return Policy(Compiler(), True)
    return Policy(compiler(backend, requested), not backends.reads_per_epoch(backend, p.device))
