"""Operators' controls of the ``vestespy`` command, run as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.command import Command, get, poll, write_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need os.fork"),
]

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    # The test's own settings only (VESTESPY_H11 picks the core under tox).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("VESTESPY_") or k == "VESTESPY_H11"
    }
    env.pop("WEB_CONCURRENCY", None)
    env.update(extra)
    return env


def test_settings_from_pyproject_and_environment(app_dir: Path) -> None:
    (app_dir / "pyproject.toml").write_text(
        '[tool.vestespy]\napp = "app:app"\nport = 0\nheader = ["X-From: file, really"]\n'
        "access_log = false\n"
    )
    env = _env(VESTESPY_NO_SERVER_HEADER="1", VESTESPY_DATE_HEADER="on")
    with Command([], app_dir, env=env) as command:
        address = command.wait_ready()
        status, headers, _ = get(address, "/pid")
        assert status == 200
        assert headers["x-from"] == "file, really"
        assert "server" not in headers  # from the environment
        assert "date" in headers
        command.send_signal(signal.SIGTERM)
        assert command.wait() == 0
    assert "GET /pid" not in command.stdout  # access_log = false from the file


def test_unknown_setting_is_refused_in_one_line(app_dir: Path) -> None:
    (app_dir / "pyproject.toml").write_text("[tool.vestespy]\nworkerz = 2\n")
    result = subprocess.run(
        [sys.executable, "-m", "vestespy", "app:app"],
        cwd=app_dir,
        env=_env(PYTHONPATH=SRC),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "unknown setting 'workerz'" in result.stderr


def test_limit_concurrency_from_the_command(app_dir: Path) -> None:
    """--limit-concurrency 1: while /slow is in flight, another request gets 503."""
    args = ["app:app", "--port", "0", "--limit-concurrency", "1"]
    with Command(args, app_dir, env=_env()) as command:
        address = command.wait_ready()
        results: list[int] = []
        slow = threading.Thread(target=lambda: results.append(get(address, "/slow/5000")[0]))
        slow.start()
        try:
            poll(lambda: (app_dir / "inflight-5000").exists() or None, 10, "/slow in flight")
            status, headers, body = get(address, "/pid")
            assert (status, headers.get("retry-after")) == (503, "1"), body
            assert headers.get("connection") == "close"
        finally:
            slow.join(20)
        assert results == [200]
        assert command.stop() == 0
