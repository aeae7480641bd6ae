"""The build (tox -e packaging): compiled and pure wheels, no-compiler fallback, editable installs.

Each test builds from a copy of the project's sources in a temporary directory, through the
normal PEP 517 front ends (``python -m build``, ``pip install -e``), so the checkout is never
touched. They need the package index for the isolated build environments, as any build does.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("VESTESPY_PACKAGING_TESTS") != "1",
        reason="builds take minutes: tox -e packaging runs them (VESTESPY_PACKAGING_TESTS=1)",
    ),
]


def compiled_table() -> tuple[str, ...]:
    for node in ast.parse((ROOT / "setup.py").read_text()).body:
        target = getattr(node, "targets", [None])[0]
        if isinstance(node, ast.Assign) and getattr(target, "id", "") == "COMPILED_MODULES":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED_MODULES")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what a build reads: metadata, setup.py and the sources."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(
        ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    )
    return copy


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def build_wheel(project: Path, **env: str) -> tuple[Path, str]:
    result = run([sys.executable, "-m", "build", "--wheel", "--outdir", "dist"], project, **env)
    (wheel,) = (project / "dist").glob("*.whl")
    return wheel, result.stdout + result.stderr


def extensions_in(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        # As COMPILED_MODULES names them: relative to the package, dotted (wsgi._adapter).
        return {
            ".".join([*Path(name).parent.parts[1:], Path(name).name.split(".")[0]])
            for name in archive.namelist()
            if name.startswith("vestespy/") and name.endswith((".so", ".pyd"))
        }


def test_compiled_wheel_has_every_module_of_the_table(project: Path) -> None:
    wheel, log = build_wheel(project, VESTESPY_COMPILE="1")
    assert "compiling" in log
    assert extensions_in(wheel) == set(compiled_table())
    assert not wheel.name.endswith("-none-any.whl")


def test_pure_wheel_when_asked(project: Path) -> None:
    wheel, log = build_wheel(project, VESTESPY_COMPILE="0")
    assert "pure Python (VESTESPY_COMPILE=0)" in log
    assert extensions_in(wheel) == set()
    assert wheel.name.endswith("-py3-none-any.whl")


def test_no_compiler_falls_back_to_pure_with_one_line(project: Path) -> None:
    wheel, log = build_wheel(project, CC="/bin/false", VESTESPY_COMPILE="auto")
    assert "vestespy build: building pure Python: no working C compiler" in log
    assert extensions_in(wheel) == set()


def test_no_compiler_is_an_error_when_compiling_is_forced(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", "dist"],
        cwd=project,
        env={**os.environ, "CC": "/bin/false", "VESTESPY_COMPILE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "VESTESPY_COMPILE=1 but cannot compile" in result.stdout + result.stderr


def test_editable_install_runs_the_sources(project: Path, tmp_path: Path) -> None:
    """No compiled module may shadow an edited source, even one left by an earlier build."""
    package = project / "src" / "vestespy"
    stale = package / "_driver.cpython-311-x86_64-linux-gnu.so"
    stale.write_bytes(b"stale")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    log = run([str(python), "-m", "pip", "install", "-e", str(project)], tmp_path)
    assert not stale.exists(), log.stdout + log.stderr
    assert not list(package.glob("*.so"))
    assert not list((project / "src").glob("*.so"))
    # An edit shows at once, and the build reports itself as pure Python.
    source = package / "_driver.py"
    source.write_text(source.read_text() + "\nEDITED = True\n")
    check = (
        "import vestespy, vestespy._driver as d; "
        "print(d.__file__, d.EDITED, vestespy.build_info().compiled)"
    )
    result = run([str(python), "-c", check], tmp_path)
    assert result.stdout.split() == [str(source), "True", "False"]
