"""The public names, pinned (as trio's test_exports does): nothing enters or leaves the API
by accident.

The pinned list is ``PUBLIC`` in ``tests/support/surface.py`` (tests/typing and
tests/unit/test_docs.py read it too). A module's public names are read through ``dir()``, not
only ``__all__``: a type checker counts every public name a module defines as exported.
"""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

import vestespy
import vestespy.tools
from support.surface import (
    PUBLIC,
    imported_names,
    is_public_module_name,
    public_modules,
    public_names,
)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is in __all__ but missing"


def test_every_public_module_is_pinned() -> None:
    """A new module without a leading underscore is public: it must be pinned too."""
    assert sorted(module.__name__ for module in public_modules()) == sorted(PUBLIC)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_through_dir_are_pinned(module_name: str) -> None:
    """What the module defines publicly, whether ``__all__`` lists it or not, is pinned."""
    module = importlib.import_module(module_name)
    assert public_names(module) == set(PUBLIC[module_name])
    # __all__ says exactly what is public.
    assert set(module.__all__) == public_names(module)


def test_public_names_sees_what_all_leaves_out(tmp_path: Path) -> None:
    """The check is strict: a definition counts whatever ``__all__`` says; imports do not."""
    package = tmp_path / "surface_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sibling.py").write_text("value = 1\nother = 2\nthird = 3\n")
    (package / "probe.py").write_text(
        "from __future__ import annotations\n"
        "import json\n"
        "import os.path\n"
        "import collections as coll\n"
        "from typing import Any\n"
        "from .sibling import value\n"
        "from .sibling import other as other\n"
        "from .sibling import third as renamed\n"
        "try:\n"
        "    from enum import Enum\n"
        "except ImportError:\n"
        "    pass\n"
        "__all__ = ['listed', 'value']\n"
        "listed = 1\n"
        "CONSTANT = 2\n"
        "Alias = int | str\n"
        "_private = 3\n"
        "def helper() -> Any: ...\n"
        "class Thing: ...\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        probe = importlib.import_module("surface_probe.probe")
        names = public_names(probe)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("surface_probe")]:
            del sys.modules[name]
    assert names == {"listed", "value", "other", "CONSTANT", "Alias", "helper", "Thing"}


def test_imported_names_reads_the_re_export_forms() -> None:
    """``import a as a``, ``from x import a as a`` and ``from . import a`` re-export."""
    source = "import a as a\nfrom . import b\nfrom .x import c as c\nfrom .. import d\n"
    assert imported_names(source) == {"d"}


def test_dunder_main_is_a_public_module_name() -> None:
    """Type checkers count ``vestespy.__main__`` as public; ``vestespy._core`` is not."""
    assert is_public_module_name("vestespy.__main__")
    assert not is_public_module_name("vestespy._core")
    assert not is_public_module_name("vestespy.wsgi._serve")


def test_top_level_has_nothing_public_beyond_all() -> None:
    """Public modules may be attributes; any other public name must be in ``__all__``."""
    extra = {
        name
        for name, value in vars(vestespy).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } - set(vestespy.__all__)
    assert not extra


def test_private_modules_stay_private() -> None:
    """Modules that are not public are named with a leading underscore."""
    public_modules = {name.rpartition(".")[2] for name in PUBLIC} | {"demo"}
    for name, value in vars(vestespy).items():
        if isinstance(value, types.ModuleType) and not name.startswith("_"):
            assert name in public_modules, f"vestespy.{name} is a module nobody declared public"


def test_import_vestespy_alone_reaches_the_tools() -> None:
    """The seed's Dispatcher example does ``import vestespy`` only."""
    code = "import vestespy; print(vestespy.tools.Dispatcher.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Dispatcher"


def test_options_typeddict_matches_the_dataclass() -> None:
    """Every ServerOptions field is a ServerOptionsKwargs key of the same type, and back."""
    fields = typing.get_type_hints(vestespy.ServerOptions)
    keys = typing.get_type_hints(vestespy.ServerOptionsKwargs)
    assert keys == {
        field.name: fields[field.name] for field in dataclasses.fields(vestespy.ServerOptions)
    }
    assert not vestespy.ServerOptionsKwargs.__required_keys__
