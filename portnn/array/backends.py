"""The backend registry: one declarative TOML file per backend, read by the library, the CLI, tests and ci.

What a backend is (package, namespace, devices, marks, requirement, tolerances) is its file in ``backends/``
(shipped inside the wheel as ``portnn/_backends``); how a device name becomes the library's device object is code
here (``resolve_device``, ``device_kind``). This module and ``portnn.array.host`` are the only places that know
backends by name.
"""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .threads import THREAD_DEFAULTS, THREAD_METHODS
from .threads import apply as apply_threads

COMPILE_METHODS = ("none", "jax.jit", "torch.compile")

_PACKAGE = Path(__file__).resolve().parent.parent  # portnn/
_PACKAGED = _PACKAGE / "_backends"  # inside an installed wheel
_SOURCE = _PACKAGE.parent / "backends"  # in a source checkout / editable install


@dataclass(frozen=True)
class Backend:
    """One backend as declared in ``backends/NAME.toml``."""

    name: str
    module: str
    namespace_module: str
    requirement: str
    devices: tuple[str, ...]
    gpu_devices: tuple[str, ...] = ()
    needs_gpu: bool = False
    ci_requirement: str | None = None
    install_note: str | None = None  # shown after the pip command when the backend is missing
    env: dict[str, str] = field(default_factory=dict)
    tolerance: dict[str, float] = field(default_factory=dict)
    threads: dict[str, Any] = field(default_factory=dict)  # how its intra-op CPU threads are set (see threads.py)
    compile: dict[str, Any] = field(default_factory=dict)  # how fit(compile=...) compiles its step (compile.py)
    exact_to: str | None = None  # a backend it must equal bit for bit on the same machine (parity/check.py)

    def installed(self) -> bool:
        """True when the backend's module can be imported here (without importing it)."""
        return importlib.util.find_spec(self.module) is not None

    def namespace(self) -> Any:
        """Import the backend and return its Array API namespace (through array-api-compat). The ``[env]`` settings
        apply where the user has not set them and the module is not imported yet: a program that imported JAX at its
        defaults (no x64) keeps them, and portnn trains float32 there (float64 models are refused, saying why)."""
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        module = importlib.import_module(self.module)
        if self.name == "array_api_strict" and "ARRAY_API_STRICT_API_VERSION" in self.env:
            module.set_array_api_strict_flags(api_version=self.env["ARRAY_API_STRICT_API_VERSION"])
        from .compile import keep_compiled  # (compile.py imports this module)

        keep_compiled(self)  # compiled programs kept on disk before the first is compiled ([compile] cache)
        return importlib.import_module(self.namespace_module)

    def tol(self, dtype: str, recipe: str = "") -> float:
        """Parity tolerance on |dW| / max(1, |W|) for this dtype ('float32'/'float64') and recipe."""
        key = f"{dtype}_{recipe}"
        return float(self.tolerance.get(key, self.tolerance[dtype]))


def backends_dir() -> Path:
    """The folder holding the backend TOML files (packaged copy first, then the source tree)."""
    for folder in (_PACKAGED, _SOURCE):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    raise FileNotFoundError(f"no backend files found in {_PACKAGED} or {_SOURCE}")


@cache
def registry() -> dict[str, Backend]:
    """All declared backends by name, in file-name order."""
    out: dict[str, Backend] = {}
    for path in sorted(backends_dir().glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        raw["devices"] = tuple(raw.get("devices", ()))
        raw["gpu_devices"] = tuple(raw.get("gpu_devices", ()))
        threads = raw.setdefault("threads", {"method": "none", "default": "own"})
        if threads.get("method") not in THREAD_METHODS or threads.get("default") not in THREAD_DEFAULTS:
            raise ValueError(f"{path}: [threads] needs method in {THREAD_METHODS} and default in "
                             f"{THREAD_DEFAULTS}, got {threads}")
        compiled = raw.setdefault("compile", {"method": "none", "auto": False})
        if compiled.get("method") not in COMPILE_METHODS or not isinstance(compiled.get("auto"), bool):
            raise ValueError(f"{path}: [compile] needs method in {COMPILE_METHODS} and auto true/false, got {compiled}")
        declared = [*raw.get("devices", []), *raw.get("gpu_devices", [])]
        reads = compiled.get("epoch_reads", [])
        if not isinstance(reads, list) or any(d not in declared for d in reads):
            raise ValueError(f"{path}: [compile] epoch_reads must list declared devices ({declared}), got {reads!r}")
        dtypes = compiled.get("ci_dtypes", ["float32", "float64"])
        if not isinstance(dtypes, list) or not dtypes or any(d not in ("float32", "float64") for d in dtypes):
            raise ValueError(f"{path}: [compile] ci_dtypes (ci/matrix's compiled rows) must list float32 and/or "
                             f"float64, got {dtypes!r}")
        out[raw["name"]] = Backend(**raw)
    return out


def get(name: str) -> Backend:
    """The backend called ``name``; a clear error listing the known ones otherwise."""
    known = registry()
    if name not in known:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(known)}")
    return known[name]


def gpu_count() -> int:
    """Number of CUDA GPUs visible to CuPy or torch (0 when neither can see one)."""
    for probe in (_cupy_gpus, _torch_gpus):
        try:
            n = probe()
        except Exception:  # a missing driver raises many kinds of errors
            n = 0
        if n:
            return n
    return 0


def _cupy_gpus() -> int:
    if importlib.util.find_spec("cupy") is None:
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def _torch_gpus() -> int:
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def resolve_device(backend: Backend, device: str | None) -> Any:
    """Map a device string ('cpu', 'cuda', 'cuda:1', 'device1', ...) to the backend's device object.

    'cuda' means 'cuda:0'. For cupy it is ``cupy.cuda.Device(N)``, for torch ``torch.device('cuda:N')``, for JAX
    the N-th GPU of ``jax.devices('gpu')``; a GPU index that does not exist is a clear error, not a late crash."""
    xp_module = importlib.import_module(backend.module)
    allowed = backend.devices + backend.gpu_devices
    device = device or (backend.devices or backend.gpu_devices)[0]
    kind, colon, index_text = device.partition(":")
    if device not in allowed and not (kind in backend.gpu_devices and (not colon or index_text.isdigit())):
        raise ValueError(f"backend {backend.name!r} has no device {device!r}; declared devices: {', '.join(allowed)}"
                         + (" (GPU ones as cuda or cuda:N)" if backend.gpu_devices else ""))
    index = int(index_text) if index_text.isdigit() else 0
    if kind in backend.gpu_devices:
        _check_gpu_index(backend, device, index)
    if backend.name == "numpy":
        return "cpu"
    if backend.name == "array_api_strict":
        return xp_module.Device(device)
    if backend.name == "torch":
        return xp_module.device("cuda", index) if kind == "cuda" else xp_module.device(device)
    if backend.name == "jax":
        platform = "gpu" if kind in ("cuda", "gpu") else "cpu"
        return xp_module.devices(platform)[index]
    if backend.name == "cupy":
        return xp_module.cuda.Device(index)
    raise NotImplementedError(f"no device mapping for backend {backend.name!r}")


def device_kind(backend: Backend, device: Any) -> str:
    """The declared device name ('cpu', 'cuda', 'device1', ...) of a backend's device object."""
    if backend.name == "array_api_strict":
        return str(getattr(device, "_device", device))
    if backend.name == "torch":
        return str(device.type)
    if backend.name == "jax":
        return "cuda" if getattr(device, "platform", "cpu") == "gpu" else "cpu"
    if backend.name == "cupy":
        return "cuda"
    return "cpu"


def reads_per_epoch(backend: Backend, device: Any) -> bool:
    """True where the backend file says eager training keeps its losses on ``device`` and reads them once per epoch
    (``[compile] epoch_reads``: the GPUs, where a read per step is a device synchronisation per step)."""
    return device_kind(backend, device) in backend.compile.get("epoch_reads", ())


def _backend_gpus(backend: Backend) -> int:
    """How many CUDA GPUs ``backend`` itself can use here (a CPU-only torch or jaxlib sees none)."""
    try:
        if backend.name == "cupy":
            return _cupy_gpus()
        if backend.name == "torch":
            return _torch_gpus()
        if backend.name == "jax":
            import jax

            return len(jax.devices("gpu"))
    except Exception:  # no driver / no CUDA plugin raise many kinds of errors
        return 0
    return 0


def _check_gpu_index(backend: Backend, device: str, index: int) -> None:
    found = _backend_gpus(backend)
    if found == 0:
        raise RuntimeError(f"{backend.name} device {device!r} requested but {backend.name} sees no CUDA GPU here"
                           + ("" if backend.name == "cupy" else " (is its CUDA build installed?)"))
    if index >= found:
        raise RuntimeError(f"{backend.name} device {device!r} requested but {backend.name} sees only {found} CUDA "
                           f"GPU(s): cuda:0 to cuda:{found - 1}")


def cuda_evidence() -> list[str]:
    """What this machine shows of an NVIDIA GPU and driver: /dev/nvidia* device files, the driver library
    (libcuda) and nvidia-smi on PATH; empty when none is there."""
    found = sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*"))[:1]
    lib = ctypes.util.find_library("cuda")
    return found + ([lib] if lib else []) + ([smi] if (smi := shutil.which("nvidia-smi")) else [])


def _cuda_note(backend: Backend) -> str:
    """For a GPU-only backend: one sentence on whether a CUDA GPU/driver is visible here."""
    found = cuda_evidence()
    if not found:
        return (f". Note: no CUDA GPU or driver is visible on this machine (no /dev/nvidia0, no libcuda, no "
                f"nvidia-smi), and {backend.name} runs only on a CUDA GPU")
    return f". A CUDA driver is visible here ({', '.join(found)}); nvidia-smi shows its CUDA version"


def load(name: str, device: str | None = None) -> tuple[Any, Any]:
    """Import backend ``name`` and return ``(xp, device_object)``, with clear errors when it cannot run here; its
    CPU threads are set as ``use_threads`` asked (or by default, see ``backends/*.toml``, [threads])."""
    backend = get(name)
    if not backend.installed():
        hint = backend.ci_requirement or backend.requirement
        raise RuntimeError(f"backend {name!r} is not installed here; install it with: pip install '{hint}'"
                           + (f" ({backend.install_note})" if backend.install_note else "")
                           + (_cuda_note(backend) if backend.needs_gpu else ""))
    if backend.needs_gpu and gpu_count() == 0:
        found = cuda_evidence()
        raise RuntimeError(f"backend {name!r} needs a CUDA GPU, and none is visible here" + (
            f": a driver is ({', '.join(found)}) but {name} sees no GPU (check CUDA_VISIBLE_DEVICES, and that the "
            f"installed {backend.requirement.split('>')[0]} matches the driver's CUDA version in nvidia-smi)"
            if found else " (no /dev/nvidia0, no libcuda, no nvidia-smi)"))
    xp = backend.namespace()
    apply_threads(backend)  # after the import (torch), before the first computation (JAX's CPU client)
    return xp, resolve_device(backend, device)


def runnable_devices(backend: Backend) -> list[str]:
    """The device strings of ``backend`` that can run on this machine (GPU ones only when a GPU is visible)."""
    if not backend.installed():
        return []
    gpus = gpu_count() and _backend_gpus(backend)
    return list(backend.devices) + (list(backend.gpu_devices) if gpus else [])
