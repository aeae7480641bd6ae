"""Operators' controls of the ``vestespy`` command, run as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import vestespy
from support.command import Command, get, poll, process_exists, write_app

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


# -- --timeout ------------------------------------------------------------------------------

BLOCKING_APP = """
import os
import time

from vestespy.tools import Dispatcher

app = Dispatcher()


def pid(server, req, res):
    res.send_all(str(os.getpid()))


def block(server, req, res, seconds):
    open(f"blocking-{os.getpid()}", "w").close()
    time.sleep(float(seconds))  # blocks its thread: the loop's with --threads 0
    res.send_all(f"slept {os.getpid()}")


app.register("/pid", pid)
app.register("/block/:seconds", block)
"""

TIMEOUT = 2.0


def _send_without_reading(address: tuple[str, int], path: str) -> socket.socket:
    sock = socket.create_connection(address, timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_timeout_replaces_a_worker_whose_loop_is_blocked(tmp_path: Path) -> None:
    write_app(tmp_path, BLOCKING_APP)
    args = ["app:app", "--port", "0", "--threads", "0", "--timeout", str(TIMEOUT)]
    with Command(args, tmp_path, env=_env()) as command:
        address = command.wait_ready()
        first = int(get(address, "/pid")[2])
        with _send_without_reading(address, "/block/600"):
            poll(lambda: (tmp_path / f"blocking-{first}").exists() or None, 10, "the block")
            command.wait_for_log(rf"worker {first} timed out", timeout=3 * TIMEOUT + 20)

            def replaced() -> int | None:
                try:
                    pid = int(get(address, "/pid", timeout=2)[2])
                except OSError:
                    return None
                return pid if pid != first else None

            poll(replaced, 30, "a new worker to answer")
        poll(lambda: not process_exists(first) or None, 10, "the old worker to be gone")
        assert command.stop() == 0
    assert "Thread" in command.stderr  # faulthandler's stacks: where the loop hung


def test_timeout_leaves_a_worker_whose_pool_thread_sleeps(tmp_path: Path) -> None:
    write_app(tmp_path, BLOCKING_APP)
    args = ["app:app", "--port", "0", "--threads", "4", "--timeout", str(TIMEOUT)]
    seconds = 3 * TIMEOUT + 1
    with Command(args, tmp_path, env=_env()) as command:
        address = command.wait_ready()
        first = int(get(address, "/pid")[2])
        status, _, body = get(address, f"/block/{seconds}", timeout=seconds + 30)
        assert (status, body) == (200, f"slept {first}".encode())
        # The loop kept serving meanwhile, and the worker was never judged hung.
        assert int(get(address, "/pid")[2]) == first
        assert "timed out" not in command.stderr
        assert command.stop() == 0


# -- the process: --pid, --chdir, --umask, --user/--group -------------------------------------

UID_APP = """
import os


def app(server, req, res):
    res.send_all(f"{os.getuid()} {os.getgid()} {os.getcwd()}")
"""


def test_pid_file_is_written_at_start_and_removed_at_exit(app_dir: Path) -> None:
    pid_path = app_dir / "run" / "vestespy.pid"
    pid_path.parent.mkdir()
    args = ["app:app", "--port", "0", "--pid", str(pid_path)]
    with Command(args, app_dir, env=_env()) as command:
        command.wait_ready()
        assert pid_path.read_text() == f"{command.pid}\n"
        assert command.stop() == 0
    assert not pid_path.exists()


def test_pid_file_of_a_running_server_is_refused(app_dir: Path) -> None:
    pid_path = app_dir / "vestespy.pid"
    pid_path.write_text(f"{os.getpid()}\n")  # this test's process: alive
    result = subprocess.run(
        [sys.executable, "-m", "vestespy", "app:app", "--port", "0", "--pid", str(pid_path)],
        cwd=app_dir,
        env=_env(PYTHONPATH=SRC),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"process {os.getpid()} is running" in result.stderr
    assert pid_path.read_text() == f"{os.getpid()}\n"


def test_chdir_is_entered_before_the_application_is_loaded(tmp_path: Path) -> None:
    app_dir = tmp_path / "site"
    app_dir.mkdir()
    write_app(app_dir, UID_APP)
    args = ["app:app", "--port", "0", "--chdir", str(app_dir)]
    with Command(args, tmp_path, env=_env()) as command:
        address = command.wait_ready(path="/")
        assert get(address, "/")[2].decode().split()[2] == str(app_dir)
        assert command.stop() == 0


@pytest.mark.parametrize(("umask", "mode"), [("077", 0o700), ("0o002", 0o775)])
def test_umask_sets_the_unix_socket_mode(app_dir: Path, umask: str, mode: int) -> None:
    path = app_dir / "s.sock"
    args = ["app:app", "--bind", f"unix:{path}", "--umask", umask]
    with Command(args, app_dir, env=_env()) as command:
        command.wait_for_log("serving")
        poll(lambda: get(str(path), "/pid")[0] == 200 or None, 20, "the first response")
        assert path.stat().st_mode & 0o777 == mode
        assert command.stop() == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_user_and_group_drop_privileges_after_binding() -> None:
    import pwd
    import tempfile

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    # The workers go on importing VestesPy's modules as nobody, as a real install in a system
    # location lets them; a tox env lives in a directory only root may enter (.tox is 0700).
    # The same for the standard library (an interpreter under /root, as pyenv's, is not).
    for what, module in (("the installed package", vestespy), ("the standard library", os)):
        where = Path(module.__file__ or "").resolve().parent
        if any(not d.stat().st_mode & stat.S_IXOTH for d in (where, *where.parents)):
            pytest.skip(f"nobody cannot reach {what} in {where}")
    # The workers import the application as nobody: a directory nobody can reach (pytest's
    # tmp_path is under a directory only root may enter).
    with tempfile.TemporaryDirectory(prefix="vestespy-user-") as public:
        app_dir = Path(public)
        app_dir.chmod(0o755)
        write_app(app_dir, UID_APP).chmod(0o644)
        _serve_as_nobody(app_dir, nobody)


def _serve_as_nobody(app_dir: Path, nobody: Any) -> None:
    run_dir = app_dir / "run"  # as /run/app, a directory of the user's
    run_dir.mkdir()
    os.chown(run_dir, nobody.pw_uid, nobody.pw_gid)
    pid_path = run_dir / "vestespy.pid"
    args = ["app:app", "--port", "0", "--user", "nobody", "--pid", str(pid_path)]
    with Command(args, app_dir, env=_env()) as command:
        address = command.wait_ready(path="/")
        uid, gid, _ = get(address, "/")[2].decode().split()
        assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
        supervisor = Path(f"/proc/{command.pid}/status")
        if supervisor.exists():  # the supervisor dropped them too, before forking
            uids = next(
                line for line in supervisor.read_text().splitlines() if line.startswith("Uid:")
            )
            assert uids.split()[1:] == [str(nobody.pw_uid)] * 4
        assert pid_path.stat().st_uid == nobody.pw_uid
        assert command.stop() == 0
    assert not pid_path.exists()  # handed to nobody, who could remove it


def test_unknown_user_is_refused_before_binding(app_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vestespy", "app:app", "--port", "0", "--user", "no-such-user-x"],
        cwd=app_dir,
        env=_env(PYTHONPATH=SRC),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "vestespy: error: --user no-such-user-x: no such user"


def test_log_config_routes_the_server_log(app_dir: Path) -> None:
    log_file = app_dir / "server.log"
    (app_dir / "logging.toml").write_text(
        f"""version = 1
[formatters.plain]
format = "LOGCONFIG %(levelname)s %(name)s %(message)s"
[handlers.file]
class = "logging.FileHandler"
filename = "{log_file}"
formatter = "plain"
[loggers."vestespy.error"]
handlers = ["file"]
level = "INFO"
"""
    )
    args = ["app:app", "--port", "0", "--log-config", "logging.toml"]
    with Command(args, app_dir, env=_env()) as command:
        command.wait_ready()  # the server answers (its log line also reaches stderr)
        assert command.stop() == 0
    assert "LOGCONFIG INFO vestespy.error: " not in log_file.read_text()
    assert "LOGCONFIG INFO vestespy.error serving app:app on" in log_file.read_text()
