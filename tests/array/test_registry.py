"""The backend registry: backends/*.toml is the one list that tests, ci, the CLI and packaging read."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from portnn import backends
from portnn.array import threads

ROOT = Path(__file__).resolve().parents[2]


def test_every_backend_file_is_complete() -> None:
    files = sorted((ROOT / "backends").glob("*.toml"))
    assert {f.stem for f in files} >= {"numpy", "cupy", "torch", "jax", "array_api_strict"}
    for f in files:
        b = backends.get(f.stem)  # file name = backend name: one file per backend
        assert b.devices or b.gpu_devices, f.name
        assert set(b.tolerance) >= {"float32", "float64"}, f.name
        assert b.needs_gpu == (not b.devices), f"{f.name}: needs_gpu must mean 'no CPU device'"
        assert b.threads["method"] in threads.THREAD_METHODS, f.name  # how --threads N reaches it
        assert b.threads["default"] in threads.THREAD_DEFAULTS, f.name
        assert (b.threads["method"] == "none") == b.needs_gpu, f"{f.name}: only GPU-only backends ignore --threads"


def test_pyproject_extras_repeat_the_registry_requirements() -> None:
    """`pip install portnn[torch]` etc. must ask for what backends/ declares."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, extra in (("torch", "torch"), ("jax", "jax"), ("cupy", "cupy"), ("array_api_strict", "strict")):
        assert backends.get(name).requirement in extras[extra], name


def test_strict_runs_at_the_declared_api_version() -> None:
    strict = pytest.importorskip("array_api_strict")
    backends.load("array_api_strict")
    assert strict.get_array_api_strict_flags()["api_version"] == "2024.12"


def test_jax_runs_with_float64() -> None:
    pytest.importorskip("jax")
    xp, device = backends.load("jax")
    assert xp.asarray([1.0], dtype=xp.float64, device=device).dtype == xp.float64


def test_unknown_backend_and_device_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'; known backends: .*numpy"):
        backends.get("tensorflow")
    with pytest.raises(ValueError, match=r"backend 'numpy' has no device 'cuda'; declared devices: cpu"):
        backends.load("numpy", "cuda")


@pytest.mark.skipif(backends.get("cupy").installed(), reason="checks the error shown when CuPy is absent")
def test_cupy_absent_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    visible = bool(backends.cuda_evidence())
    with pytest.raises(RuntimeError, match=r"backend 'cupy' is not installed here; install it with: pip install") as e:
        backends.load("cupy")
    assert ("A CUDA driver is visible here" if visible else "no CUDA GPU or driver is visible on this machine") \
        in str(e.value)
    monkeypatch.setattr(backends, "cuda_evidence", lambda: ["/dev/nvidia0", "libcuda.so.1"])  # the other case
    with pytest.raises(RuntimeError, match=r"A CUDA driver is visible here \(/dev/nvidia0, libcuda.so.1\)"):
        backends.load("cupy")
    monkeypatch.setattr(backends, "cuda_evidence", lambda: [])
    with pytest.raises(RuntimeError, match=r"no CUDA GPU or driver is visible on this machine \(no /dev/nvidia0"):
        backends.load("cupy")


@pytest.mark.skipif(backends.gpu_count() > 0, reason="checks the error shown when there is no GPU")
def test_cuda_device_without_gpu_gives_a_clear_error() -> None:
    pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=r"torch device 'cuda' requested but torch sees no CUDA GPU"):
        backends.load("torch", "cuda")


def test_wheel_ships_the_backend_files(tmp_path: Path) -> None:
    """An installed (non-editable) portnn finds backends/ as package data."""
    hatchling = pytest.importorskip("hatchling.builders.wheel")
    builder = hatchling.WheelBuilder(str(ROOT))
    wheel = next(iter(builder.build(directory=str(tmp_path), versions=["standard"])))
    names = zipfile.ZipFile(wheel).namelist()
    for f in (ROOT / "backends").glob("*.toml"):
        assert f"portnn/_backends/{f.name}" in names


@pytest.mark.parametrize(("file", "line", "edited", "message"), [
    ("cupy", 'epoch_reads = ["cuda"]', 'epoch_reads = ["tpu"]', r"epoch_reads must list declared devices"),
    ("torch", 'ci_dtypes = ["float64"]', 'ci_dtypes = ["float16"]', r"ci_dtypes .* must list float32 and/or float64"),
    ("torch", 'ci_dtypes = ["float64"]', "ci_dtypes = []", r"ci_dtypes .* must list float32 and/or float64"),
])
def test_a_backend_file_with_a_bad_compile_table_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str,
                                                            line: str, edited: str, message: str) -> None:
    text = (ROOT / "backends" / f"{file}.toml").read_text().replace(line, edited)
    assert edited in text
    (tmp_path / f"{file}.toml").write_text(text)
    monkeypatch.setattr(backends, "backends_dir", lambda: tmp_path)
    backends.registry.cache_clear()
    try:
        with pytest.raises(ValueError, match=message):
            backends.registry()
    finally:
        monkeypatch.undo()
        backends.registry.cache_clear()


def test_epoch_reads_are_the_gpus_and_their_stand_in() -> None:
    """Eager training reads its losses once per epoch on the GPUs (and device1, which stands in for them), step by
    step on the CPUs."""
    for name, b in backends.registry().items():
        assert set(b.compile.get("epoch_reads", ())) == set(b.gpu_devices) | ({"device1"} & set(b.devices)), name
