"""The backend registry: one declarative TOML file per backend, read by the library, the CLI, tests and ci.

Adding a backend is one file in ``backends/`` (shipped inside the wheel as ``portnn/_backends``). This module and
``portnn.host`` are the only places that know backends by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

_PACKAGED = Path(__file__).resolve().parent / "_backends"  # inside an installed wheel
_SOURCE = Path(__file__).resolve().parent.parent / "backends"  # in a source checkout / editable install


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
    env: dict[str, str] = field(default_factory=dict)
    tolerance: dict[str, float] = field(default_factory=dict)

    def installed(self) -> bool:
        """True when the backend's module can be imported here (without importing it)."""
        return importlib.util.find_spec(self.module) is not None

    def namespace(self) -> Any:
        """Import the backend and return its Array API namespace (through array-api-compat)."""
        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        module = importlib.import_module(self.module)
        # in case the module was imported before the environment was set:
        if self.name == "jax" and self.env.get("JAX_ENABLE_X64") == "1":
            module.config.update("jax_enable_x64", True)
        if self.name == "array_api_strict" and "ARRAY_API_STRICT_API_VERSION" in self.env:
            module.set_array_api_strict_flags(api_version=self.env["ARRAY_API_STRICT_API_VERSION"])
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
        except Exception:  # noqa: BLE001 - a missing driver raises many kinds of errors
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
    """Map a device string ('cpu', 'cuda', 'cuda:1', 'device1', ...) to the backend's device object."""
    xp_module = importlib.import_module(backend.module)
    allowed = backend.devices + backend.gpu_devices
    device = device or (backend.devices or backend.gpu_devices)[0]
    kind, _, index_text = device.partition(":")
    index = int(index_text) if index_text.isdigit() else 0
    if kind not in allowed and device not in allowed:
        raise ValueError(
            f"backend {backend.name!r} has no device {device!r}; declared devices: {', '.join(allowed)}"
        )
    if backend.name == "numpy":
        return "cpu"
    if backend.name == "array_api_strict":
        return xp_module.Device(device)
    if backend.name == "torch":
        if kind == "cuda" and not xp_module.cuda.is_available():
            raise RuntimeError(f"torch device {device!r} requested but torch sees no CUDA GPU")
        return xp_module.device(device)
    if backend.name == "jax":
        platform = "gpu" if kind in ("cuda", "gpu") else "cpu"
        try:
            found = xp_module.devices(platform)
        except RuntimeError as err:
            raise RuntimeError(f"jax device {device!r} requested but JAX has no {platform} backend") from err
        return found[index]
    if backend.name == "cupy":
        if gpu_count() == 0:
            raise RuntimeError("backend 'cupy' needs a CUDA GPU, and none is visible here")
        return xp_module.cuda.Device(index)
    raise NotImplementedError(f"no device mapping for backend {backend.name!r}")


def load(name: str, device: str | None = None) -> tuple[Any, Any]:
    """Import backend ``name`` and return ``(xp, device_object)``, with clear errors when it cannot run here."""
    backend = get(name)
    if not backend.installed():
        hint = backend.ci_requirement or backend.requirement
        raise RuntimeError(f"backend {name!r} is not installed here; install it with: pip install '{hint}'")
    if backend.needs_gpu and gpu_count() == 0:
        raise RuntimeError(f"backend {name!r} needs a CUDA GPU, and none is visible here")
    xp = backend.namespace()
    return xp, resolve_device(backend, device)


def runnable_devices(backend: Backend) -> list[str]:
    """The device strings of ``backend`` that can run on this machine (GPU ones only when a GPU is visible)."""
    if not backend.installed():
        return []
    gpus = gpu_count()
    return list(backend.devices) + (list(backend.gpu_devices) if gpus else [])
