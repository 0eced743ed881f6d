"""The GPU path without a GPU: device strings (cuda, cuda:N) map to each backend's device object, to_numpy uses
CuPy's explicit .get(), and asking for CuPy or a CUDA device that is not there is a clear error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from portnn import backends, host
from portnn.parity.run import parse_targets


def test_cupy_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.Backend, "installed", lambda self: self.name != "cupy")
    with pytest.raises(RuntimeError, match=r"backend 'cupy' is not installed here; install it with: pip install "
                                           r"'cupy-cuda12x>=13' \(that is CUDA 12; for CUDA 11 install cupy-cuda11x, "
                                           r"for CUDA 13 cupy-cuda13x"):
        backends.load("cupy", "cuda")
    with pytest.raises(RuntimeError, match="backend 'cupy' is not installed"):
        parse_targets("numpy,cupy")
    assert backends.runnable_devices(backends.get("cupy")) == []


def test_cupy_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends.Backend, "installed", lambda _self: True)
    monkeypatch.setattr(backends, "gpu_count", lambda: 0)
    with pytest.raises(RuntimeError, match="backend 'cupy' needs a CUDA GPU, and none is visible here"):
        backends.load("cupy")


def test_cuda_device_strings_for_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    b = backends.get("torch")
    monkeypatch.setattr(backends, "_backend_gpus", lambda backend: 2 if backend.name == "torch" else 0)
    assert backends.resolve_device(b, "cuda") == torch.device("cuda", 0)
    assert backends.resolve_device(b, "cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"torch device 'cuda:2' requested but torch sees only 2 CUDA GPU\(s\)"):
        backends.resolve_device(b, "cuda:2")
    for bad in ("cuda:x", "cuda:", "cpu:0", "gpu"):
        with pytest.raises(ValueError, match=f"backend 'torch' has no device '{bad}'"):
            backends.resolve_device(b, bad)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_cuda_without_a_gpu_names_the_backend(name: str) -> None:
    if not backends.get(name).installed():
        pytest.skip(f"{name} is not installed")
    if backends._backend_gpus(backends.get(name)):
        pytest.skip("checks the message on a machine where this backend sees no GPU")
    with pytest.raises(RuntimeError, match=f"{name} device 'cuda:0' requested but {name} sees no CUDA GPU"):
        backends.load(name, "cuda:0")
    assert "cuda" not in backends.runnable_devices(backends.get(name))


def test_to_numpy_uses_cupy_get_never_implicit_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for cupy.ndarray that, like CuPy, refuses implicit conversion to NumPy."""
    fake: Any = types.ModuleType("cupy")  # given an attribute ModuleType does not declare

    class ndarray:  # the class name array-api-compat looks for
        def __init__(self, data: np.ndarray) -> None:
            self.data = data

        def get(self) -> np.ndarray:
            return self.data.copy()

        def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
            raise TypeError("Implicit conversion to a NumPy array is not allowed")

    fake.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    x = ndarray(np.arange(6.0).reshape(2, 3))
    out = host.to_numpy(x)
    np.testing.assert_array_equal(out, np.arange(6.0).reshape(2, 3))
    assert out is not x.data
    assert host.to_float(ndarray(np.asarray(2.5))) == 2.5


def test_gpu_check_script_stops_with_a_clear_message_without_a_gpu(tmp_path) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: ci/gpu-check would run for real")
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(root / "ci" / "gpu-check"), str(tmp_path / "report")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no GPU: nvidia-smi is not on PATH" in proc.stdout
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert "portnn runs from" in summary  # it got as far as running portnn from the checkout
    assert "numpy" in (tmp_path / "report" / "backends.txt").read_text()
