"""The command's access log under load: no line lost, cut or interleaved across stops and reloads.

stdout is a pipe here (as under a process manager), shared by the workers: only writes of at
most PIPE_BUF bytes are atomic there. Each request has a target of its own and a long
User-Agent, so that lines fill several PIPE_BUF writes per batch and any interleaving or cut
breaks a line's parse.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from support import RawClient, poll
from support.command import ACCESS_LINE, Command, Load, check_access_log, write_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need os.fork"),
]

#: A line of about 1,000 bytes: a loop pass's batch from a few connections fills several
#: PIPE_BUF writes.
AGENT = "load/1.0 " + "a" * 891
#: A 4 KiB pipe: a longer write waits half done, where another worker's would cut in.
PIPE = {"stdout_pipe": True, "pipe_size": 4096}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


@pytest.mark.parametrize("buffer", ["64K", "0"])
def test_two_workers_under_load_then_sigterm_lose_no_line(app_dir: Path, buffer: str) -> None:
    args = ["app:app", "--port", "0", "--workers", "2", "--access-log-buffer", buffer]
    with Command(
        [*args, "--log-level", "debug"], app_dir, stdout_pipe=True, pipe_size=4096
    ) as command:
        address = command.wait_ready()
        size = 0 if buffer == "0" else 65536
        command.wait_for_log(
            rf"access log: written to file descriptor 1, buffer {size} bytes", count=2
        )
        load = Load(address, clients=8, headers={"User-Agent": AGENT})
        try:
            load.wait_answered(1500, timeout=60)
            poll(lambda: len(load.pids) == 2, 30, "both workers to answer")
            # Stopped under load: requests in flight finish, their lines are written.
            command.send_signal(signal.SIGTERM)
            assert command.wait(45) == 0
        finally:
            load.stop()
        text = command.wait_stdout_closed()
    parsed = check_access_log(text, load, AGENT)
    assert len(parsed) >= 1500
    assert load.failed > 0 or len(parsed) >= len(load.answered)


def test_reloads_under_load_lose_no_line(app_dir: Path) -> None:
    args = ["app:app", "--port", "0", "--workers", "2"]
    with Command(args, app_dir, **PIPE) as command:
        address = command.wait_ready()
        load = Load(address, clients=8, headers={"User-Agent": AGENT})
        try:
            for count in (1, 2):
                load.wait_answered(600 * count, timeout=60)
                # New workers start, then the old ones drain and exit with their lines.
                command.send_signal(signal.SIGHUP)
                command.wait_for_log("reloaded: 2 new workers serving", count=count)
            load.wait_answered(600 * 3, timeout=60)
            poll(lambda: len(load.pids) >= 4, 30, "old and new workers to answer")
        finally:
            load.stop()
        answered = len(load.answered)
        assert command.stop() == 0
        text = command.wait_stdout_closed()
    parsed = check_access_log(text, load, AGENT)
    assert len(parsed) >= answered


def test_an_access_logger_configured_by_log_config_goes_through_logging(app_dir: Path) -> None:
    config = {
        "version": 1,
        "formatters": {"tagged": {"format": "ACCESS %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(app_dir / "access.log"),
                "formatter": "tagged",
            }
        },
        "loggers": {"vestespy.access": {"handlers": ["file"], "propagate": False}},
    }
    (app_dir / "logging.json").write_text(json.dumps(config))
    args = ["app:app", "--port", "0", "--log-config", "logging.json", "--log-level", "debug"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        command.wait_for_log("access log: through logging")
        load = Load(address, clients=2, headers={"User-Agent": AGENT})
        try:
            load.wait_answered(50)
        finally:
            load.stop()
        assert command.stop() == 0
    lines = (app_dir / "access.log").read_text().splitlines()
    assert lines
    assert all(line.startswith("ACCESS ") and ACCESS_LINE.fullmatch(line[7:]) for line in lines), (
        lines[:3]
    )
    assert command.stdout == ""


def test_json_lines_with_the_servers_rejections(app_dir: Path) -> None:
    args = ["app:app", "--port", "0", "--access-log-format", "json", "--echo-request-id"]
    args += ["--max-header-count", "5", "--forwarded-allow-ips", "127.0.0.1"]
    with Command(args, app_dir) as command:
        address = command.wait_ready()
        with RawClient(address) as client:
            response = client.request(target="/pid", headers=[("X-Request-ID", "lb-1")])
            assert response.status == 200
            assert response.header("X-Request-ID") == "lb-1"
        with RawClient(address) as client:
            client.send(b"GET /many HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 6 + b"\r\n")
            assert client.read_response().status == 431
        with RawClient(address) as client:
            client.send(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.read_response().status == 400
        assert command.stop() == 0
    records = [json.loads(line) for line in command.stdout.splitlines()]
    by_status = {record["status"]: record for record in records if record["target"] != "/pid"}
    ready = [record for record in records if record["target"] == "/pid"]
    assert any(record["request_id"] == "lb-1" and not record["rejected"] for record in ready)
    assert by_status[431]["target"] == "/many"
    assert by_status[431]["rejected"] is True
    assert by_status[431]["reason"] == "too-many-header-fields"
    assert by_status[400]["rejected"] is True
    assert by_status[400]["method"] is None  # h11 refused the request line
    assert len(records) == len(ready) + 2
