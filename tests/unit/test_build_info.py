"""Which build and protocol core are in use; each tox env checks it runs the one it names."""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import pytest

import vestespy
from vestespy import _core

SETUP = Path(__file__).parents[2] / "setup.py"


def compiled_table() -> tuple[str, ...]:
    """COMPILED_MODULES as setup.py lists them."""
    for node in ast.parse(SETUP.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "COMPILED_MODULES"
        ):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED_MODULES")


def test_version_line_names_build_and_core() -> None:
    info = vestespy.build_info()
    line = str(info)
    assert re.fullmatch(
        r"vestespy \S+ \((compiled|pure Python)\) on (h11|h11_mypyc) \S+ "
        r"\((compiled|pure Python)\)",
        line,
    ), line
    assert info.version == vestespy.__version__
    assert info.core == _core.CORE_NAME


def test_core_names_come_from_the_chosen_module() -> None:
    core = importlib.import_module(_core.CORE_NAME)
    assert _core.Connection is core.Connection
    assert _core.IDLE is core.IDLE


def test_choose_core() -> None:
    assert _core.choose_core("h11").__name__ == "h11"
    assert _core.choose_core("auto").__name__ in ("h11", "h11_mypyc")
    with pytest.raises(ImportError, match="expected one of"):
        _core.choose_core("h12")


def test_every_compiled_module_exists() -> None:
    package = Path(vestespy.__file__).parent
    for name in compiled_table():
        *folders, module = name.split(".")  # wsgi._adapter: a module of a subpackage
        assert any(package.joinpath(*folders).glob(f"{module}.*")), name


@pytest.mark.skipif(
    "VESTESPY_EXPECT_BUILD" not in os.environ, reason="only in the tox envs that name a build"
)
def test_build_is_the_one_the_env_names() -> None:
    """py3X-compiled must run the mypyc build on h11_mypyc, py3X-pure the sources on h11."""
    expected = os.environ["VESTESPY_EXPECT_BUILD"]
    info = vestespy.build_info()
    modules = [importlib.import_module(f"vestespy.{name}") for name in compiled_table()]
    extensions = [m.__name__ for m in modules if _core._is_extension(m)]
    if expected == "compiled":
        assert info.compiled
        assert (info.core, info.core_compiled) == ("h11_mypyc", True)
        assert len(extensions) == len(modules), extensions
    else:
        assert expected == "pure"
        assert not info.compiled
        assert extensions == []
        assert (info.core, info.core_compiled) == ("h11", False)
