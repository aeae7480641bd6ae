"""What pyright counts as exported, module by module, is the pinned public surface.

``tests/unit/test_exports.py`` reads the exports through ``dir()`` by pyright's rules; this
asks pyright itself (``--verifytypes``, as tox's ``typecheck`` env runs it), so that the two
cannot drift apart. Skipped where pyright is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.surface import PUBLIC

pytest.importorskip("pyright")


def _exported_by_pyright(cwd: Path) -> list[dict[str, object]]:
    # pyright finds the installed package through the first python on PATH: this one's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["pyright", "--verifytypes", "vestespy", "--ignoreexternal", "--outputjson"]
    out = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    report = json.loads(out.stdout)
    symbols: list[dict[str, object]] = report["typeCompleteness"]["symbols"]
    return symbols


def test_pyright_exports_the_pinned_names(tmp_path: Path) -> None:
    symbols = _exported_by_pyright(tmp_path)
    exported = {
        str(symbol["name"])
        for symbol in symbols
        if symbol["isExported"]
        and symbol["category"] != "module"
        and str(symbol["name"]).rpartition(".")[0] in PUBLIC
    }
    assert exported, "pyright reported no exported symbols: did it find the package?"
    # pyright does not list a module's dunders (__version__) among its symbols.
    pinned = {
        f"{module}.{name}"
        for module in PUBLIC
        for name in PUBLIC[module]
        if not name.startswith("__")
    }
    assert exported == pinned
