"""Run mypy on the typed user programs and compare with the expected errors."""

from __future__ import annotations

import pathlib
import re

import pytest

api = pytest.importorskip("mypy.api")

HERE = pathlib.Path(__file__).resolve().parent

# (line, error code) pairs mypy must report for bad.py, and nothing else.
EXPECTED_BAD = {
    (17, "call-overload"),  # "request" listener with two arguments instead of three
    (19, "call-overload"),  # "data" listener missing the chunk argument
    (27, "call-overload"),  # "request" listener returning a value (ignored at run time)
    (29, "arg-type"),  # route handler returning a value (the Flask habit)
}


def _run(path: pathlib.Path) -> tuple[str, int]:
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--show-error-codes", str(path)]
    )
    return stdout + stderr, status


def test_good_program_type_checks() -> None:
    out, status = _run(HERE / "good.py")
    assert status == 0, out


def _errors(name: str) -> tuple[set[tuple[int, str]], str]:
    out, _ = _run(HERE / name)
    pattern = re.escape(name) + r":(\d+): error: .*\[([a-z-]+)\]$"
    found = {(int(m.group(1)), m.group(2)) for m in re.finditer(pattern, out, re.MULTILINE)}
    return found, out


def test_bad_program_reports_expected_errors() -> None:
    found, out = _errors("bad.py")
    assert found == EXPECTED_BAD, out


def test_server_options_are_type_checked() -> None:
    """``**options`` is typed (PEP 692): a wrong type and an unknown name are errors."""
    found, out = _errors("bad_options.py")
    assert found == {(7, "arg-type"), (8, "call-arg")}, out
