"""--umask parsing and the pid file, in process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vestespy._config import StartupError
from vestespy._privileges import parse_umask, pid_file, resolve


@pytest.mark.parametrize(("text", "value"), [("022", 0o22), ("0o077", 0o77), ("7", 7), ("000", 0)])
def test_umask_is_octal(text: str, value: int) -> None:
    assert parse_umask(text) == value


@pytest.mark.parametrize("text", ["089", "abc", "1000", ""])
def test_bad_umask(text: str) -> None:
    with pytest.raises(ValueError, match="umask"):
        parse_umask(text)


def test_pid_file_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    path.write_text("999999999\n")  # no such process
    with pid_file(str(path)):
        assert path.read_text() == f"{os.getpid()}\n"
    assert not path.exists()


def test_pid_file_is_left_if_someone_else_took_it(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    with pid_file(str(path)):
        path.write_text("12345\n")
    assert path.read_text() == "12345\n"


def test_pid_file_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="--pid"), pid_file(str(tmp_path / "no" / "x.pid")):
        pass


def test_resolve_nothing_and_unknown_names() -> None:
    assert not resolve(None, None).changes
    with pytest.raises(StartupError, match="no such group"):
        resolve(None, "no-such-group-x")
