"""The reference site documents every public name: a name missing from docs/ fails here.

Reads the Sphinx sources (no build needed) for the objects their directives document
(``.. autoclass:: vestespy.Server``, ``.. py:data:: vestespy.__version__``, an ``automodule``
with ``:members:``...) and checks them against the ``__all__`` of ``vestespy``,
``vestespy.tools`` and of every other public module, including ones added later.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from pathlib import Path
from types import ModuleType

import pytest

import vestespy

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Modules whose main names are re-exported by ``vestespy`` and documented there: they need
# not be documented as modules, but the rest of their ``__all__`` (type aliases used in
# signatures) must be. Any other public module must be documented as a module too.
IMPLEMENTATION_MODULES = {
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
    r"^(?P<indent>[ \t]*)\.\. (?:auto|py:)"
    r"(?P<kind>module|class|exception|function|data|attribute|method|decorator)::[ \t]+"
    r"(?P<name>[\w.]+)[ \t]*\n(?P<options>(?:(?P=indent)[ \t]+:[\w-]+:.*\n)*)",
    re.MULTILINE,
)


def documented_names() -> tuple[set[str], set[int]]:
    """Qualified names documented in docs/, and the ids of the objects they name."""
    names: set[str] = set()
    for source in [*DOCS.glob("*.rst"), *DOCS.glob("*.md")]:
        for match in _DIRECTIVE.finditer(source.read_text(encoding="utf-8")):
            name, options = match["name"], match["options"]
            names.add(name)
            if match["kind"] == "module" and re.search(r":members:[ \t]*\n", options):
                excluded = re.search(r":exclude-members:(.*)", options)
                skip = {n.strip() for n in excluded[1].split(",")} if excluded else set()
                module = importlib.import_module(name)
                names.update(f"{name}.{n}" for n in getattr(module, "__all__", ()) if n not in skip)
    ids = set()
    for name in names:
        obj = _resolve(name)
        # Strings and numbers are compared by name only: equal values are not the same name.
        if obj is not None and not isinstance(obj, str | int | float | bool):
            ids.add(id(obj))
    return names, ids


def _resolve(name: str) -> object | None:
    module_name, _, attribute = name.rpartition(".")
    try:
        module = importlib.import_module(name)
    except ImportError:
        pass
    else:
        return module
    try:
        obj: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        return None
    return obj


def public_modules() -> list[ModuleType]:
    """``vestespy``, and every module under it with no underscore-prefixed part."""
    modules = [vestespy]
    for info in pkgutil.walk_packages(vestespy.__path__, "vestespy."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def test_tools_is_a_public_module() -> None:
    names = {module.__name__ for module in public_modules()}
    assert {"vestespy", "vestespy.tools"} <= names


@pytest.mark.parametrize("module", public_modules(), ids=str)
def test_every_public_name_is_in_the_reference(module: ModuleType) -> None:
    names, ids = documented_names()
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__: say what is public"
    if module.__name__ not in IMPLEMENTATION_MODULES:
        assert module.__name__ in names, (
            f"{module.__name__} is not documented as a module (.. automodule:: {module.__name__})"
        )
    missing = [
        name
        for name in exported
        if f"{module.__name__}.{name}" not in names and id(getattr(module, name)) not in ids
    ]
    assert not missing, f"public names of {module.__name__} missing from docs/: {missing}"


def test_every_event_is_in_the_events_table() -> None:
    from vestespy.request import RequestEvent

    table = (DOCS / "events.rst").read_text(encoding="utf-8")
    for event in ("request", *typing.get_args(RequestEvent)):
        assert f'``"{event}"``' in table, f'event "{event}" is missing from docs/events.rst'


def test_every_page_is_in_a_toctree() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   (\w+)$", index, re.MULTILINE))
    pages = {p.stem for p in [*DOCS.glob("*.rst"), *DOCS.glob("*.md")]} - {"index", "conformance"}
    assert pages <= listed, f"pages missing from the toctrees of docs/index.rst: {pages - listed}"
