"""Sphinx configuration for the VestesPy reference site."""

from __future__ import annotations

import pathlib
import sys

_DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(_DOCS.parent / "src"))
# Local extensions: the options table generated from ServerOptions (so it cannot drift).
sys.path.insert(0, str(_DOCS / "_ext"))

import vestespy  # noqa: E402

project = "VestesPy"
author = "VestesPy contributors"
copyright = "2026, VestesPy contributors"
release = vestespy.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "myst_parser",
    "vestespy_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# websocket_nginx.rst is included by websocket.rst, not a page of its own.
exclude_patterns = [
    "_build",
    "_inventories",
    "_ext",
    "diagrams/README.md",
    "conformance.md",
    "websocket_nginx.rst",
]
nitpicky = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Types of documented parameters; a return type only when the function returns something.
autodoc_typehints_description_target = "documented_params"
# Show defaults as written (``handler=Request``), not as the repr of their value.
autodoc_preserve_defaults = True
# "Request" rather than "vestespy.request.Request" in signatures and types (still linked).
python_use_unqualified_type_names = True
# The class docstring, then the __init__ docstring (the constructor's parameters).
autoclass_content = "both"
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
html_static_path = ["_static"]
html_css_files = ["vestespy.css"]
html_js_files = ["vestespy.js"]

# Internal type aliases and protocols that appear in public signatures but are not public
# names themselves. (The public aliases, such as vestespy.request.SocketAddress, resolve to
# their entries on the API and WSGI pages.)
nitpick_ignore = [
    ("py:class", "EventName"),
    ("py:class", "Listener"),
    ("py:class", "ContinueSender"),
    ("py:class", "ResponseChannel"),
    # The adapter's own request-body streams (private), in WSGIAdapter.environ's signature.
    ("py:class", "InputStream"),
    ("py:class", "EmptyInput"),
    # The class documented as vestespy.wsgi.StartResponse, by its defining module's name.
    ("py:class", "vestespy.wsgi._types.StartResponse"),
]
