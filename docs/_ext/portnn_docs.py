"""Sphinx directives that render the site's reference parts from the repository at build time, so none can drift:

- ``portnn-cli``: every ``portnn`` sub-command, from the same ``add_parser`` functions ``portnn.cli.main`` calls;
- ``portnn-backends``: the backend files ``backends/*.toml``, as a summary table and each file verbatim;
- ``portnn-bench``: the tables of a committed ``portnn bench --json`` result and the record of its run.

Each directive writes reStructuredText and parses it in place (use them in .rst pages or MyST ``{eval-rst}``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parents[2]


def _literal(text: object) -> str:
    """Inline literal in reST (backquotes inside are not expected in option names or values)."""
    return f"``{text}``" if str(text) else ""


_LITERAL = re.compile(r"``.+?``|`[^`\n]+`", re.S)
_SPECIAL = re.compile(r"([\\*|_`])")


def rst_text(text: str) -> str:
    """portnn's docstrings and help strings are plain text with ``literals`` (and `backquoted` names in help):
    keep those as inline literals and escape every other character reST would read as markup (``*`` emphasis,
    ``|`` substitutions, ``name_`` references)."""
    out, pos = [], 0
    for m in _LITERAL.finditer(text):
        out.append(_SPECIAL.sub(r"\\\1", text[pos:m.start()]))
        out.append(m.group(0) if m.group(0).startswith("``") else f"`{m.group(0)}`")
        pos = m.end()
    out.append(_SPECIAL.sub(r"\\\1", text[pos:]))
    return "".join(out)


def plain_docstring(lines: list[str]) -> list[str]:
    """A docstring as reST: paragraphs escaped by ``rst_text``, and lines indented deeper than their paragraph (a
    formula, a table) kept as they are in a literal block."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if not block:
            return
        i = 0
        while i < len(block):
            j = i
            indented = block[i][:1].isspace()
            while j < len(block) and block[j][:1].isspace() == indented:
                j += 1
            part = block[i:j]
            if indented:
                out.extend(["::", "", *part, ""])
            else:
                out.extend([*rst_text("\n".join(part)).split("\n"), ""])
            i = j
        block.clear()

    for line in lines:
        if line.strip():
            block.append(line.rstrip())
        else:
            flush()
    flush()
    while out and not out[-1]:
        out.pop()
    return out


def _cell(text: object) -> str:
    """A list-table cell: one line, no stray markup."""
    return " ".join(str(text).split()) or " "


def _title(text: str, options: dict[str, Any]) -> list[str]:
    """A section title underlined with ``:underline:`` (default '-'), or a rubric with ``:rubrics:`` (for MyST pages,
    whose headings reST adornments cannot nest under)."""
    if "rubrics" in options:
        return [f".. rubric:: {text}", ""]
    return [text, options.get("underline", "-") * len(text), ""]


def _list_table(head: list[str], rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [head, *rows]:
        for i, cell in enumerate(row):
            lines.append(f"   {'* -' if i == 0 else '  -'} {_cell(cell)}")
    lines.append("")
    return lines


class _Generated(SphinxDirective):
    """A directive whose output is reST text, parsed with titles allowed (sections nest under the page's)."""

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        node = nodes.section()  # a holder: the generated sections become the page's own
        node.document = self.state.document
        source = self.get_source_info()[0] or "portnn_docs"
        content = StringList()
        for i, line in enumerate(self.lines()):
            content.append(line, source, i)
        nested_parse_with_titles(self.state, content, node)
        return list(node.children)


# ---- the command line ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse wraps usage lines at the terminal width (COLUMNS): fix it so the build does not depend on it."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def cli_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``portnn`` parser and its sub-parsers, built by the same ``add_parser`` calls as ``portnn.cli.main``."""
    cli = importlib.import_module("portnn.cli")
    parser = argparse.ArgumentParser(prog="portnn", description="A portable neural network on any Array API backend.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in cli.COMMANDS:
        importlib.import_module(f"portnn.cli.{name}").add_parser(sub)
    return parser, dict(sub.choices)


def _expand_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help:
        return ""
    try:  # argparse's own expansion of %(default)s, %(choices)s ... (private, but stable since Python 3.2)
        return parser._get_formatter()._expand_help(action)
    except (AttributeError, KeyError, TypeError, ValueError):
        return action.help


class CliDirective(_Generated):
    """Every ``portnn`` sub-command: its help, usage and a table of its options."""

    option_spec: ClassVar[dict[str, Any]] = {"underline": directives.unchanged, "rubrics": directives.flag}

    def lines(self) -> list[str]:
        self.env.note_dependency(str(ROOT / "portnn" / "cli" / "__init__.py"))
        parser, commands = cli_parsers()
        helps = {a.dest: a.help for a in parser._subparsers._group_actions[0]._choices_actions}
        out: list[str] = []
        for name, sub in commands.items():
            self.env.note_dependency(str(ROOT / "portnn" / "cli" / f"{name}.py"))
            out += [*_title(f"portnn {name}", self.options), rst_text(f"{helps.get(name, '')}.".replace("..", ".")), ""]
            if sub.description:
                out += [rst_text(sub.description), ""]
            with _columns(100):
                usage = sub.format_usage().strip()
            out += [".. code-block:: text", "", *("   " + line for line in usage.splitlines()), ""]
            rows = []
            for action in sub._actions:
                if isinstance(action, argparse._HelpAction):
                    continue
                names = ", ".join(action.option_strings) or action.dest
                metavar = action.metavar or (action.dest.upper() if action.option_strings and action.nargs != 0
                                             else "")
                if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
                    metavar = ""
                what = rst_text(_expand_help(sub, action))
                if action.choices is not None:
                    what += f" One of: {', '.join(_literal(c) for c in action.choices)}."
                if action.required:
                    what += " Required."
                default = "" if action.default in (None, False, argparse.SUPPRESS) or action.required else (
                    _literal(",".join(map(str, action.default)) if isinstance(action.default, tuple)
                             else action.default))
                rows.append([_literal(f"{names} {metavar}".strip()), default, what])
            if rows:
                out += _list_table(["option", "default", "what it does"], rows, [28, 12, 60])
        return out


# ---- backends/*.toml -------------------------------------------------------------------------------------------
class BackendsDirective(_Generated):
    """A summary table of ``backends/*.toml`` and every file verbatim."""

    option_spec: ClassVar[dict[str, Any]] = {"underline": directives.unchanged, "rubrics": directives.flag}

    def lines(self) -> list[str]:
        files = sorted((ROOT / "backends").glob("*.toml"), key=lambda f: (f.stem != "numpy", f.stem))
        rows, sections = [], []
        for f in files:
            self.env.note_dependency(str(f))
            text = f.read_text()
            b = tomllib.loads(text)
            tol = b.get("tolerance", {})
            comp = b.get("compile", {})
            rows.append([_literal(b["name"]), _literal(b.get("module", "")),
                         _literal(b.get("ci_requirement") or b.get("requirement", "")),
                         ", ".join(map(_literal, b.get("devices", []))),
                         ", ".join(map(_literal, b.get("gpu_devices", []))) or "-",
                         "yes" if b.get("needs_gpu") else "no",
                         f"{tol.get('float64', '-')} / {tol.get('float32', '-')}",
                         _literal(b.get("threads", {}).get("method", "-")),
                         f"{_literal(comp.get('method', 'none'))}" + (" (auto)" if comp.get("auto") else "")])
            sections += [*_title(f"backends/{f.name}", self.options), ".. code-block:: toml", "",
                         *("   " + line if line else "" for line in text.splitlines()), ""]
        head = ["name", "module", "requirement (CI)", "devices", "GPU devices", "needs a GPU",
                "tolerance f64 / f32", "threads", "compile"]
        return [*_list_table(head, rows), *sections]


# ---- the benchmark data file -----------------------------------------------------------------------------------
def _num(value: Any, spec: str = ".3g") -> str:
    return "" if value is None else format(value, spec)


class BenchDirective(_Generated):
    """Tables of a ``portnn bench --json`` file (argument: its path relative to the docs), section by section, and
    the record of its run (``NAME.run.json`` beside it)."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"underline": directives.unchanged, "rubrics": directives.flag}

    def lines(self) -> list[str]:
        path = (Path(self.env.srcdir) / self.arguments[0]).resolve()
        record_path = path.with_name(path.stem + ".run.json")
        self.env.note_dependency(str(path))
        self.env.note_dependency(str(record_path))
        result = json.loads(path.read_text())
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        meta = result["meta"]
        out = _title("The run", self.options)
        for key in ("command", "commit", "started_utc", "finished_utc", "wall_s", "machine", "load", "quick"):
            if key in record:
                value = _literal(record[key]) if key in ("command", "commit") else record[key]
                out.append(f":{key.replace('_', ' ')}: {value}")
        blas = ", ".join(f"{b['internal_api']} {b.get('version') or ''} ({b.get('architecture') or '?'})"
                         for b in meta.get("blas_after", []) if b.get("user_api") == "blas")
        out += [f":backend: {meta['backend']} on {meta['device']}", f":versions: Python {meta.get('python')}, "
                f"numpy {meta.get('numpy')}, torch {meta.get('torch', '-')}; BLAS {blas or 'unknown'}",
                ":environment: " + ", ".join(_literal(f"{k}={v}") for k, v in meta.get("env", {}).items()), ""]
        sections: dict[str, list[dict[str, Any]]] = {}
        for row in result["rows"]:
            sections.setdefault(row["section"], []).append(row)
        for section, rows in sections.items():
            out += [*_title(section, self.options), *self._section(rows)]
        if result.get("bars"):
            out += _title("Bars", self.options)
            if not all(b.get("judged", True) for b in result["bars"]):
                out += ["Not judged at ``--quick`` sizes: the bars are set for the full workloads; the values are "
                        "shown for reference.", ""]
            bars = [[b["bar"], _num(b["value"], ".3f"), ("≥ " if "fraction" in b["bar"] else "≤ ") + str(b["limit"]),
                     "not judged" if not b.get("judged", True) else ("PASS" if b["pass"] else "FAIL")]
                    for b in result["bars"]]
            out += _list_table(["bar", "value", "limit", "verdict"], bars, [55, 15, 15, 15])
        return out

    @staticmethod
    def _section(rows: list[dict[str, Any]]) -> list[str]:
        refs: list[str] = []
        for r in rows:
            refs += [k for k in r.get("ratios", {}) if k not in refs]
        has = {k: any(k in r and r[k] is not None for r in rows)
               for k in ("value", "gflops", "peak_frac", "cpu_value", "compile_s", "theory_mb")}
        units = sorted({r["unit"] for r in rows if r.get("unit")})
        head = ["implementation", "threads"]
        unit = f" ({', '.join(units)})" if units else ""
        head += [("median" if any("median_s" in r for r in rows) else "value") + unit] if has["value"] else []
        head += ["GFLOP/s"] if has["gflops"] else []
        head += ["% of peak"] if has["peak_frac"] else []
        head += [f"/ {ref}" for ref in refs]
        head += [f"thread CPU time{unit}"] if has["cpu_value"] else []
        head += ["compile (s)"] if has["compile_s"] else []
        head += ["theory (MB)"] if has["theory_mb"] else []
        body = []
        for r in rows:
            if "skipped" in r:
                body.append([r["name"], str(r.get("threads", "-")), "skipped: " + r["skipped"],
                             *[""] * (len(head) - 3)])
                continue
            cells = [r["name"], "-" if r.get("threads") is None else str(r["threads"])]
            cells += [_num(r.get("value"), ".4g") + ("" if len(units) < 2 else f" {r.get('unit', '')}")] \
                if has["value"] else []
            cells += [_num(r.get("gflops"), ".1f")] if has["gflops"] else []
            cells += [_num(None if r.get("peak_frac") is None else 100 * r["peak_frac"], ".1f")] \
                if has["peak_frac"] else []
            cells += [_num(r.get("ratios", {}).get(ref), ".3f") for ref in refs]
            cells += [_num(r.get("cpu_value"), ".4g")] if has["cpu_value"] else []
            cells += [_num(r.get("compile_s"), ".2f")] if has["compile_s"] else []
            cells += [_num(r.get("theory_mb"), ".2f")] if has["theory_mb"] else []
            body.append(cells)
        notes = ["Ratios (``/ name``): this row's figure divided by that one's (times: the median of per-round "
                 "ratios of interleaved runs).", ""] if refs else []
        return [*_list_table(head, body), *notes]


# ---- the public names ------------------------------------------------------------------------------------------
def _public_name(target: str) -> str | None:
    """'portnn.nn.layer.Layer' -> 'portnn.Layer' when that object is in ``portnn.__all__`` (the API documents public
    names; signatures and base classes name the defining module)."""
    if not target.startswith("portnn."):
        return None
    portnn = importlib.import_module("portnn")
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    for public in portnn.__all__:
        if getattr(portnn, public, None) is obj:
            return f"portnn.{public}"
    return None


def _exists(target: str) -> bool:
    if not target.startswith("portnn."):
        return False
    module, _, name = target.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


def _missing_reference(app: Sphinx, env: Any, node: Any, contnode: nodes.Node) -> nodes.Node | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    public = _public_name(target)
    if public is None or public == target:
        # a private base class or helper type of portnn (``_Pool2D``, ``Sync``) that exists but has no page: its
        # name as plain text; a name that does not exist still warns
        return contnode if public is None and _exists(target) else None
    builder = app.builder
    return env.domains["py"].resolve_xref(env, node["refdoc"], builder, node["reftype"], public, node, contnode)


def _portnn_docstring(_app: Sphinx, _what: str, name: str, _obj: Any, _options: Any, lines: list[str]) -> None:
    """portnn's docstrings are plain text (``literals`` aside): render them as written (``plain_docstring``)."""
    if name.startswith("portnn"):
        lines[:] = plain_docstring(lines)


def _data_docstring(_app: Sphinx, what: str, name: str, obj: Any, _options: Any, lines: list[str]) -> None:
    """A module-level constant (``portnn.__version__``) has no docstring of its own: Python hands out its type's
    (``str``). Drop that; the version gets its defining module's docstring (``portnn._version``)."""
    if what != "data":
        return
    if " ".join(" ".join(lines).split()) == " ".join((type(obj).__doc__ or "").split()):
        lines.clear()
    if not lines and name.endswith(".__version__"):
        lines += [importlib.import_module("portnn._version").__doc__ or "", ""]


def _alias_public_modules() -> None:
    """``portnn.backends`` is ``portnn.array.backends`` (and so on): make each public module importable under its
    public name in this process, so its API page is titled and resolved by the name users write."""
    portnn = importlib.import_module("portnn")
    for public in portnn.__all__:
        obj = getattr(portnn, public, None)
        if isinstance(obj, types.ModuleType) and obj.__name__ != f"portnn.{public}":
            sys.modules.setdefault(f"portnn.{public}", obj)


def setup(app: Sphinx) -> dict[str, Any]:
    _alias_public_modules()
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-process-docstring", _data_docstring)
    app.connect("autodoc-process-docstring", _portnn_docstring)
    app.add_directive("portnn-cli", CliDirective)
    app.add_directive("portnn-backends", BackendsDirective)
    app.add_directive("portnn-bench", BenchDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
