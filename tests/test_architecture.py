"""Structural checks on the library source (tinygrad-style): the packages that compute on the device are portable
Array API code, and imports run one way between the packages (import-linter, configured in pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portnn"
ARRAY_LIBS = {"numpy", "cupy", "torch", "jax", "jaxlib", "array_api_strict"}
# Device code: every module of these packages, and the parts of distributed that run on the device. The others
# (array: the host boundary; io, data, testing, parity, bench, cli: host tooling) may use NumPy.
PORTABLE_PACKAGES = ("nn", "optim", "train")
PORTABLE_MODULES = ("distributed/data_parallel.py", "distributed/buffers.py")
CREATION = {"asarray", "zeros", "ones", "full", "empty", "arange", "eye", "linspace", "zeros_like", "ones_like",
            "full_like", "empty_like"}


def portable_modules() -> list[Path]:
    found = [p for package in PORTABLE_PACKAGES for p in sorted((PACKAGE / package).glob("*.py"))]
    return found + [PACKAGE / m for m in PORTABLE_MODULES]


def test_the_portable_set_is_the_device_code() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in portable_modules()}
    assert {"nn/dense.py", "nn/activations.py", "nn/losses.py", "nn/layer.py", "optim/adam.py", "train/step.py",
            "train/trainer.py", "train/kernels.py", "train/model.py", "distributed/data_parallel.py"} <= names
    assert all(p.exists() for p in portable_modules())


def problems_in(path: Path) -> list[str]:
    """Portability rules broken by one module: array-library imports, in-place updates, array methods outside the
    standard, array creation without dtype= and device=, a backend's own random numbers."""
    tree = ast.parse(path.read_text())
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            problems += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in ARRAY_LIBS]
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
            problems.append(f"line {node.lineno}: in-place update of {ast.unparse(node.target)}")
        if isinstance(node, ast.AugAssign) and ast.unparse(node.target).split(".")[-1] in {"params", "grads", "weight",
                                                                                             "bias", "state"}:
            problems.append(f"line {node.lineno}: in-place update of {ast.unparse(node.target)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, attr = ast.unparse(node.func.value), node.func.attr
            if attr in {"astype", "reshape", "copy", "fill", "put", "itemset"} and not owner.endswith("xp"):
                problems.append(f"line {node.lineno}: array method {owner}.{attr}() is outside the standard")
            if owner.endswith("xp") and attr in CREATION:
                given = {k.arg for k in node.keywords}
                if not {"dtype", "device"} <= given:
                    problems.append(f"line {node.lineno}: {owner}.{attr}() without explicit dtype= and device=")
            if owner.endswith(".random") or owner == "random":
                problems.append(f"line {node.lineno}: backend RNG {owner}.{attr}()")
    return problems


@pytest.mark.parametrize("path", portable_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_device_code_is_portable(path: Path) -> None:
    problems = problems_in(path)
    assert not problems, f"{path.relative_to(PACKAGE)}:\n" + "\n".join(problems)


def test_checker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "badlayer.py"
    bad.write_text("import numpy as np\n\ndef f(x, xp):\n    x[0] -= 1\n    y = x.reshape(3)\n"
                   "    return xp.zeros(3)\n")
    message = "\n".join(problems_in(bad))
    for fragment in ("imports numpy", "in-place update of x[0]", "x.reshape()", "xp.zeros() without"):
        assert fragment in message


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([str(exe), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120)


def test_imports_run_one_way() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_a_reversed_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract is not vacuous: the same package with layers importing train fails it, naming the import."""
    shutil.copytree(PACKAGE, tmp_path / "portnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    dense = tmp_path / "portnn" / "nn" / "dense.py"
    dense.write_text(dense.read_text() + "\nfrom ..train import model as _reversed  # noqa: E402\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "portnn.nn is not allowed to import portnn.train" in done.stdout
    assert "portnn.nn.dense -> portnn.train.model" in done.stdout
