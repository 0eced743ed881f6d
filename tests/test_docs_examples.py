"""Every code example the project shows runs, each on its own (a fragment cannot ship): each ```python block of
README.md and of the site's pages (docs/; their executed cells run when ci/docs builds the site) in a fresh
interpreter, and every docstring example (``>>>``) of portnn's modules with doctest. The API reference lists
exactly ``portnn.__all__``, and every public name has a one-line summary."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import portnn

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)  # a ```python block; not MyST code-cells


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line, code) of every ```python block of a Markdown text, in order."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in FENCE.finditer(text)]


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


BLOCKS = [(f"{path.relative_to(ROOT)}:{line}", code) for path in _markdown_files()
          for line, code in python_blocks(path.read_text())]


def test_the_readme_has_examples() -> None:
    """The collector finds README's blocks (a changed fence style would otherwise test nothing)."""
    assert [name for name, _ in BLOCKS if name.startswith("README.md:")], "no ```python block found in README.md"


def test_the_collector_takes_python_blocks_only() -> None:
    text = ("text\n```python\nx = 1\n```\n```{code-cell} python\ny = 2\n```\n```bash\nls\n```\n"
            "```python\nprint(x)\n```\n")
    assert python_blocks(text) == [(2, "x = 1\n"), (11, "print(x)\n")]


@pytest.mark.numpy
@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_example_runs_on_its_own(where: str, code: str, tmp_path: Path) -> None:
    """A fresh interpreter per block, warnings as errors, in an empty folder (files it writes stay there)."""
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"


# ---- docstring examples ------------------------------------------------------------------------------------------
def portnn_modules() -> list[types.ModuleType]:
    """Every module of the package (``portnn.__main__`` would run the command line, so it is left out)."""
    names = [m.name for m in pkgutil.walk_packages(portnn.__path__, "portnn.") if m.name != "portnn.__main__"]
    return [portnn, *(importlib.import_module(name) for name in names)]


def run_doctests(modules: list[types.ModuleType]) -> tuple[int, int, list[str]]:
    """(examples run, failures, report) of every docstring example of ``modules``, each docstring in a fresh
    namespace holding only its module's globals."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    out: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for module in modules:
        for test in finder.find(module, module.__name__):
            runner.run(test, out=out.append)
    results = runner.summarize(verbose=False)
    return results.attempted, results.failed, out


def test_docstring_examples_run() -> None:
    modules = portnn_modules()
    assert len(modules) > 50, f"only {len(modules)} modules found: the walk over portnn is broken"
    attempted, failed, report = run_doctests(modules)
    assert failed == 0, f"{failed} of {attempted} docstring examples failed:\n" + "".join(report)


def test_a_wrong_docstring_example_is_caught() -> None:
    module = types.ModuleType("portnn_doctest_probe", "A probe.\n\n>>> 1 + 1\n3\n")
    attempted, failed, report = run_doctests([module])
    assert (attempted, failed) == (1, 1)
    assert "Expected:\n    3\nGot:\n    2" in "".join(report)


# ---- the API reference -------------------------------------------------------------------------------------------
def test_the_api_page_lists_exactly_the_public_names() -> None:
    text = (ROOT / "docs" / "reference" / "api.rst").read_text()
    listed: list[str] = []
    for block in re.findall(r"^\.\. autosummary::\n((?:[ \t]+.*\n|\n)+)", text, re.M):
        listed += [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith(":")]
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == sorted(portnn.__all__)


def test_every_public_name_has_a_one_line_summary() -> None:
    missing = []
    for name in portnn.__all__:
        obj = getattr(portnn, name)
        if isinstance(obj, str):  # __version__: documented by its module, portnn._version
            continue
        doc = inspect.getdoc(obj) or ""
        if not doc.strip() or not doc.splitlines()[0].strip():
            missing.append(name)
    assert not missing, f"public names without a docstring summary: {missing}"
