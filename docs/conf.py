"""Sphinx configuration of the portnn site: MyST pages executed by myst-nb, the API from the docstrings
(autosummary), the command line, backends/*.toml and the benchmark tables rendered from the repository at build
time (docs/_ext/portnn_docs.py). Built by ci/docs, offline, with warnings as errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's portnn, also in the kernels that execute the pages (PYTHONPATH)
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

import portnn  # noqa: E402

project = "portnn"
author = "the portnn developers"
copyright = "the portnn developers, MIT licence"
release = version = portnn.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "portnn_docs",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_data", "_ext", "_templates", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
smartquotes = False  # option names (--resume) and code-like text stay as written

# internal links are checked (-n); names outside portnn (numpy, typing, array types in signatures) have no
# inventory offline, so only those are exempt
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!portnn\b).*")]

# API pages from the docstrings
autosummary_generate = True
autosummary_imported_members = False  # a module page lists what it defines (or its __all__)
autosummary_ignore_module_all = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False

# MyST pages, executed at every build in a fresh kernel each, in a temporary folder
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("PORTNN_DOCS_EXECUTE", "force")  # "off" to only check the text
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True
nb_merge_streams = True
nb_output_stderr = "warn"  # a warning printed by a cell fails the build (-W)

html_theme = "pydata_sphinx_theme"
html_title = f"portnn {version}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": {"**": ["page-toc"], "benchmarks": []},  # the benchmark tables need the width
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
# top-level pages without a section to navigate
html_sidebars = {"index": [], "getting-started": [], "benchmarks": [], "reliability": []}
