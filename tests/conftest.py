"""The backend matrix: every (backend, device) declared in backends/ becomes a test case; absent ones are skipped.

Adding a backend is one TOML file: its cases, ids, marks and skips all come from the registry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from portnn import backends, host
from portnn.array import tree as portnn_tree
from portnn.array.placement import widest

# the matrix runs JAX with x64 (float64 rows) unless the run asks for JAX's defaults: JAX_ENABLE_X64=0 (ci/test runs
# the JAX rows both ways); set before any test module imports jax
os.environ.setdefault("JAX_ENABLE_X64", "1")
JAX_X64 = os.environ["JAX_ENABLE_X64"].lower() not in ("0", "false", "")

# compiled programs are not kept in the user's cache folder by tests (nor read from it: every test compiles afresh);
# tests/array/test_compile_cache.py runs its own processes with a folder of its own
os.environ.setdefault("PORTNN_COMPILE_CACHE", "0")


@dataclass
class Case:
    """One backend/device/dtype cell of the matrix, with helpers to move host data in and out."""

    backend: backends.Backend
    device_name: str
    dtype_name: str
    xp: Any
    device: Any

    @property
    def dtype(self) -> Any:
        return getattr(self.xp, self.dtype_name)

    @property
    def ints(self) -> Any:
        """The widest integer dtype here: int64, or int32 in JAX at its defaults (no x64)."""
        return widest(self.xp, "int64", self.xp.int32)

    def asarray(self, data: Any, dtype: Any = "model") -> Any:
        """Host data on this case's backend/device; ``dtype='model'`` uses the case dtype, None keeps the data's."""
        return host.from_numpy(np.asarray(data), self.xp, device=self.device,
                               dtype=self.dtype if dtype == "model" else dtype)

    def tree(self, tree: Any) -> Any:
        """A host tree (parameters: a list of {name: array}; optimizer slots) on this case, in the case dtype."""
        return portnn_tree.map(self.asarray, tree)

    def tol(self, recipe: str = "") -> float:
        return self.backend.tol(self.dtype_name, recipe)

    def __str__(self) -> str:
        return f"{self.backend.name}-{self.device_name}-{self.dtype_name}"


def _device_params() -> list[Any]:
    params = []
    for b in backends.registry().values():
        runnable = backends.runnable_devices(b) if b.installed() else []
        for dev in b.devices + b.gpu_devices:
            on_gpu = dev in b.gpu_devices
            marks = [getattr(pytest.mark, b.name)] + ([pytest.mark.gpu] if on_gpu else [])
            if not b.installed():
                marks.append(pytest.mark.skip(reason=f"{b.name} is not installed ({b.requirement})"))
            elif dev not in runnable:
                marks.append(pytest.mark.skip(reason=f"{b.name} on {dev} needs a CUDA GPU that {b.name} can use; "
                                                     "none is visible"))
            params.append(pytest.param((b.name, dev), id=f"{b.name}-{dev}", marks=marks))
    return params


DEVICE_PARAMS = _device_params()
DTYPES = ["float64", "float32"]


def pytest_configure(config: pytest.Config) -> None:
    for name in backends.registry():
        config.addinivalue_line("markers", f"{name}: runs on the {name} backend")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU")


def _case(name: str, dev: str, dtype: str) -> Case:
    if name == "jax" and dtype == "float64" and not JAX_X64:
        pytest.skip("JAX at its defaults (JAX_ENABLE_X64=0) holds no float64")
    xp, device = backends.load(name, dev)
    return Case(backends.get(name), dev, dtype, xp, device)


@pytest.fixture(params=DEVICE_PARAMS)
def backend_device(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture(params=DTYPES)
def case(backend_device: tuple[str, str], request: pytest.FixtureRequest) -> Case:
    """Every runnable (backend, device) x (float64, float32)."""
    return _case(*backend_device, request.param)


@pytest.fixture
def case64(backend_device: tuple[str, str]) -> Case:
    """Every runnable (backend, device) in float64 (gradient checks)."""
    return _case(*backend_device, "float64")


@pytest.fixture
def numpy64() -> Case:
    return _case("numpy", "cpu", "float64")
