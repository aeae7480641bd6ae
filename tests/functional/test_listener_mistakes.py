"""In a debug server: a route that returns a value, a request nobody answers (logged)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

import vestespy
import vestespy._mistakes
from support import poll
from vestespy.tools import Dispatcher


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "vestespy.error" and r.levelno == logging.WARNING
    ]


def _raw_get(address: tuple[str, int], path: str) -> socket.socket:
    client = socket.create_connection(address, timeout=10)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return client


def _serve(server: vestespy.Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert server.wait_serving(10)
    return thread


def _wait_for(caplog: pytest.LogCaptureFixture, text: str, timeout: float) -> list[str]:
    return poll(
        lambda: [w for w in _warnings(caplog) if text in w] or None,
        timeout,
        f"a warning with {text!r}",
    )


@pytest.mark.parametrize("workers", [4, 0], ids=["pool", "inline"])
def test_debug_server_names_an_unanswered_request(
    caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    routes = Dispatcher()

    def flask_habit(server: object, req: object, res: object) -> str:
        return "hello"

    # One warning per function for the whole process: forget an earlier run's.
    vestespy._mistakes._warned.discard(flask_habit.__code__)
    routes.register("/habit", flask_habit)
    routes.register("/forgot", lambda ev, req, res: None)
    routes.register("/ok", lambda ev, req, res: res.send_all("ok"))
    server = vestespy.Server(
        ("127.0.0.1", 0), debug=True, max_workers=workers, unanswered_warning=0.3
    )
    server.on("request", routes.as_handler())
    thread = _serve(server)
    clients = []
    try:
        with caplog.at_level(logging.WARNING, "vestespy.error"):
            clients.append(_raw_get(server.address, "/ok"))
            assert clients[0].recv(4096).startswith(b"HTTP/1.1 200")
            clients.append(_raw_get(server.address, "/habit"))
            clients.append(_raw_get(server.address, "/forgot?a=1"))
            started = time.monotonic()
            # Generous: 3 x the delay + 1 s, and machine load.
            _wait_for(caplog, "GET /forgot?a=1: no response started 0.3 s", 10)
            _wait_for(caplog, "GET /habit: no response started", 10)
            assert time.monotonic() - started >= 0.3
    finally:
        for client in clients:
            client.close()
        server.shutdown()
        thread.join(10)
        server.close()
    habit = [w for w in _warnings(caplog) if "flask_habit returned 'hello'" in w]
    assert len(habit) == 1
    assert not [w for w in _warnings(caplog) if "/ok" in w]


def test_without_debug_nothing_is_watched(caplog: pytest.LogCaptureFixture) -> None:
    server = vestespy.Server(("127.0.0.1", 0), unanswered_warning=0.05)
    server.on("request", lambda ev, req, res: None)
    assert server._unanswered is None
    server.close()
