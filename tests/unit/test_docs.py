"""The reference site documents exactly the public names: no more, no fewer.

Reads the Sphinx sources (no build needed) for the objects their directives document
(``.. autoclass:: vestespy.Server``, ``.. py:data:: __version__``, an ``automodule`` with
``:members:``...), qualifying each name as Sphinx does: a ``py:`` directive's name is
prefixed with the current module (set by ``automodule``, ``py:module`` and
``py:currentmodule``), autodoc's names are absolute. The result is compared with the pinned
public names of every public module (``PUBLIC`` in ``tests/support/surface.py``, which
``test_exports.py`` checks against the modules themselves): every public name is documented,
under its own name or as the same object re-exported, and every documented name is public.
"""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path
from types import ModuleType

import pytest

from support.surface import PUBLIC, public_modules

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Modules whose main names are re-exported by ``vestespy`` and documented there: they need
# not be documented as modules, but the rest of their ``__all__`` (type aliases used in
# signatures) must be. Any other public module must be documented as a module too.
IMPLEMENTATION_MODULES = {
    "vestespy.__main__",  # exports nothing; docs/cli.rst says what `python -m vestespy` does
    "vestespy.demo",
    "vestespy.errors",
    "vestespy.headers",
    "vestespy.options",
    "vestespy.request",
    "vestespy.response",
    "vestespy.server",
    "vestespy.tools.dispatcher",
}

_DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<domain>auto|py:)"
    r"(?P<kind>module|currentmodule|class|exception|function|data|attribute|method|decorator)::"
    r"[ \t]+(?P<name>[\w.]+)[ \t]*\n(?P<options>(?:(?P=indent)[ \t]+:[\w-]+:.*\n)*)",
    re.MULTILINE,
)


class Documented(typing.NamedTuple):
    """What docs/ documents: modules, and objects by their qualified names."""

    modules: set[str]
    objects: set[str]


def _directives(text: str) -> Documented:
    """The modules and module-level objects one page documents, named as Sphinx names them."""
    modules: set[str] = set()
    objects: set[str] = set()
    current: str | None = None  # Sphinx starts every page with no current module
    for match in _DIRECTIVE.finditer(text):
        name, kind, options = match["name"], match["kind"], match["options"]
        if match["indent"]:
            continue  # a class's member: not a module-level name
        if kind in ("module", "currentmodule"):
            current = None if name == "None" else name
            if kind == "module":
                modules.add(name)
                if match["domain"] == "auto" and re.search(r":members:[ \t]*\n", options):
                    excluded = re.search(r":exclude-members:(.*)", options)
                    skip = {n.strip() for n in excluded[1].split(",")} if excluded else set()
                    module = importlib.import_module(name)
                    objects.update(f"{name}.{n}" for n in module.__all__ if n not in skip)
            continue
        option = re.search(r":module:[ \t]*(\S+)", options)
        prefix = option[1] if option else current
        if match["domain"] == "auto" and "." in name:
            objects.add(name)  # autodoc imports a dotted name as it is written
        else:
            objects.add(f"{prefix}.{name}" if prefix else name)
    return Documented(modules, objects)


def documented() -> Documented:
    """Everything docs/ documents, over all its pages."""
    modules: set[str] = set()
    objects: set[str] = set()
    for source in sorted([*DOCS.glob("*.rst"), *DOCS.glob("*.md")]):
        page = _directives(source.read_text(encoding="utf-8"))
        modules |= page.modules
        objects |= page.objects
    return Documented(modules, objects)


def _resolve(name: str) -> object | None:
    module_name, _, attribute = name.rpartition(".")
    try:
        obj: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None
    return obj


def _documented_ids(names: set[str]) -> set[int]:
    """The ids of the objects documented: a re-exported object is documented once."""
    ids = set()
    for name in names:
        obj = _resolve(name)
        # Strings and numbers are compared by name only: equal values are not the same name.
        if obj is not None and not isinstance(obj, str | int | float | bool):
            ids.add(id(obj))
    return ids


def test_tools_is_a_public_module() -> None:
    names = {module.__name__ for module in public_modules()}
    assert {"vestespy", "vestespy.tools"} <= names


def test_sphinx_names_are_qualified_by_the_current_module() -> None:
    """``py:data:: vestespy.x`` after ``automodule:: vestespy`` is ``vestespy.vestespy.x``."""
    page = (
        ".. automodule:: vestespy.cli\n   :no-members:\n\n"
        ".. py:data:: vestespy.request.RequestEvent\n\n"
        ".. py:currentmodule:: vestespy.request\n\n"
        ".. py:data:: SocketAddress\n\n"
        ".. autoclass:: vestespy.Server\n   :members:\n\n"
        ".. py:data:: Body\n   :module: vestespy.response\n\n"
        ".. py:class:: Thing\n\n   .. py:attribute:: member\n"
    )
    assert _directives(page) == Documented(
        {"vestespy.cli"},
        {
            "vestespy.cli.vestespy.request.RequestEvent",
            "vestespy.request.SocketAddress",
            "vestespy.Server",
            "vestespy.response.Body",
            "vestespy.request.Thing",
        },
    )


@pytest.mark.parametrize("module", public_modules(), ids=str)
def test_every_public_name_is_in_the_reference(module: ModuleType) -> None:
    docs = documented()
    ids = _documented_ids(docs.objects)
    if module.__name__ not in IMPLEMENTATION_MODULES:
        assert module.__name__ in docs.modules, (
            f"{module.__name__} is not documented as a module (.. automodule:: {module.__name__})"
        )
    missing = [
        name
        for name in PUBLIC[module.__name__]
        if f"{module.__name__}.{name}" not in docs.objects and id(getattr(module, name)) not in ids
    ]
    assert not missing, f"public names of {module.__name__} missing from docs/: {missing}"


def test_the_reference_documents_only_public_names() -> None:
    """No page documents a private, moved or misspelt name, or one of another module."""
    docs = documented()
    public = {f"{module}.{name}" for module, names in PUBLIC.items() for name in names}
    assert docs.modules <= set(PUBLIC), f"not public modules: {sorted(docs.modules - set(PUBLIC))}"
    assert docs.objects <= public, f"documented but not public: {sorted(docs.objects - public)}"


def test_every_event_is_in_the_events_table() -> None:
    from vestespy.request import RequestEvent

    table = (DOCS / "events.rst").read_text(encoding="utf-8")
    for event in ("request", *typing.get_args(RequestEvent)):
        assert f'``"{event}"``' in table, f'event "{event}" is missing from docs/events.rst'


def test_every_page_is_in_a_toctree() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)$", index, re.MULTILINE))
    # Files conf.py excludes are included by other pages (conformance.md, websocket_nginx.rst).
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    included = set(re.findall(r'^    "(\w+)\.(?:rst|md)",$', conf, re.MULTILINE))
    pages = {p.stem for p in [*DOCS.glob("*.rst"), *DOCS.glob("*.md")]} - {"index", *included}
    assert pages <= listed, f"pages missing from the toctrees of docs/index.rst: {pages - listed}"
