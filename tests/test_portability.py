"""Structural checks on the library source: the rules that keep the network code portable (tinygrad-style)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "portnn"
ARRAY_LIBS = {"numpy", "cupy", "torch", "jax", "jaxlib", "array_api_strict"}
# Host-boundary modules may use NumPy; their names say so.
HOST_BOUNDARY = re.compile(r"^(host|init|datasets?|checkpoint|testing|cli|bench|parity|backends|distributed|plot)"
                           r"[a-z_]*\.py$")
CREATION = {"asarray", "zeros", "ones", "full", "empty", "arange", "eye", "linspace", "zeros_like", "ones_like",
            "full_like", "empty_like"}


def network_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.glob("*.py")) if not HOST_BOUNDARY.match(p.name) and p.name != "__init__.py"]


def test_there_are_network_modules_to_check() -> None:
    names = {p.name for p in network_modules()}
    assert {"dense.py", "activations.py", "losses.py", "optimizers.py", "sequential.py"} <= names


@pytest.mark.parametrize("path", network_modules(), ids=lambda p: p.name)
def test_network_module_is_portable(path: Path) -> None:
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
            if owner == "xp" and attr in CREATION:
                given = {k.arg for k in node.keywords}
                if not {"dtype", "device"} <= given:
                    problems.append(f"line {node.lineno}: xp.{attr}() without explicit dtype= and device=")
            if owner.endswith(".random") or owner == "random":
                problems.append(f"line {node.lineno}: backend RNG {owner}.{attr}()")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_checker_catches_violations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "badlayer.py"
    bad.write_text("import numpy as np\n\ndef f(x, xp):\n    x[0] -= 1\n    y = x.reshape(3)\n"
                   "    return xp.zeros(3)\n")
    with pytest.raises(AssertionError) as info:
        test_network_module_is_portable(bad)
    message = str(info.value)
    for fragment in ("imports numpy", "in-place update of x[0]", "x.reshape()", "xp.zeros() without"):
        assert fragment in message
