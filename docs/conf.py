"""Sphinx configuration for the VestesPy reference site."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))

import vestespy  # noqa: E402

project = "VestesPy"
author = "VestesPy contributors"
release = vestespy.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_inventories", "conformance.md"]
nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Each project's inventory is fetched from its site when there is network access; otherwise
# Sphinx falls back (logging at info level only) to the genuine copy committed in _inventories/,
# so the nitpicky build also passes offline. See _inventories/README.md for their provenance.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", (None, "_inventories/python.inv")),
    "h11": ("https://h11.readthedocs.io/en/latest/", (None, "_inventories/h11.inv")),
}
# Do not hang on a network that drops packets instead of refusing them.
intersphinx_timeout = 10
html_theme = "furo"
html_title = f"VestesPy {release}"

# Internal type aliases and protocols that appear in public signatures but are not
# public names themselves; they are described in prose on the API page.
nitpick_ignore = [
    ("py:class", "RequestListener"),
    ("py:class", "EventName"),
    ("py:class", "Listener"),
    ("py:class", "RequestEvent"),
    ("py:class", "SocketAddress"),
    ("py:class", "ContinueSender"),
    ("py:class", "ResponseChannel"),
]
