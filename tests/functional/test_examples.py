"""The examples in examples/ run unchanged and answer as documented, on every backend."""

from __future__ import annotations

import contextlib
import runpy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vestespy
from support import RawClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(
    name: str, backend: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[vestespy.Server]:
    """Run an example file as ``__main__`` with its Server moved to port 0 on ``backend``."""
    created: list[vestespy.Server] = []
    ready = threading.Event()

    class LoopbackServer(vestespy.Server):
        def __init__(self, addr: tuple[str, int], **kwargs: Any) -> None:
            kwargs.update(select=backend, max_workers=workers)
            super().__init__(("127.0.0.1", 0), **kwargs)
            created.append(self)

        def serve_forever(self) -> None:
            ready.set()
            super().serve_forever()

    monkeypatch.setattr(vestespy, "Server", LoopbackServer)
    errors: list[BaseException] = []

    def main() -> None:
        try:
            runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    assert not errors, errors
    server = created[0]
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        server.close()
        assert not errors, errors


@pytest.fixture
def seed(backend: str, workers: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[vestespy.Server]:
    yield from run_example("seed.py", backend, workers, monkeypatch)


@pytest.fixture
def seed_dispatcher(
    backend: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[vestespy.Server]:
    yield from run_example("dispatcher.py", backend, workers, monkeypatch)


@pytest.fixture
def routed(
    backend: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[vestespy.Server]:
    yield from run_example("routing.py", backend, workers, monkeypatch)


def test_seed_example_answers_test(seed: vestespy.Server) -> None:
    with RawClient(seed.address) as client:
        response = client.request("GET", "/")
        assert (response.status, response.body) == (200, b"TEST")
        assert response.header("Content-Length") == "4"
        # With a body, "end" fires once the body is in; keep-alive holds.
        response = client.request("POST", "/upload", body=b"x" * 100_000)
        assert (response.status, response.body) == (200, b"TEST")


def test_seed_dispatcher_example_routes(seed_dispatcher: vestespy.Server) -> None:
    """The seed's Dispatcher example: ``import vestespy`` alone, then vestespy.tools."""
    with RawClient(seed_dispatcher.address) as client:
        assert client.request("GET", "/").body == b"test"
        assert client.request("GET", "/test/42").body == b"ID: 42"
        assert client.request("GET", "/nothing/here").status == 404


def test_routing_example_routes(routed: vestespy.Server) -> None:
    with RawClient(routed.address) as client:
        assert client.request("GET", "/").body == b"test"
        assert client.request("GET", "/test/42").body == b"ID: 42"
        assert client.request("GET", "/test/a%20b").body == b"ID: a b"
        assert client.request("GET", "/archive/2024/05").body == b"ARCHIVE: 2024-05"
        missing = client.request("GET", "/archive/24/5")
        assert missing.status == 404
        assert client.request("GET", "/test/1/extra").status == 404


def test_echo_stream_example(backend: str, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for server in run_example("echo_stream.py", backend, workers, monkeypatch):
        with RawClient(server.address) as client:
            assert client.request("POST", "/echo", body=b"ping" * 1000).body == b"ping" * 1000
            numbers = client.request("GET", "/numbers")
            assert numbers.body == b"".join(f"{n}\n".encode() for n in range(1000))
            countdown = client.request("GET", "/countdown")
            assert countdown.chunked
            assert countdown.body.startswith(b"10...\n9...\n")


def test_websocket_chat_example(
    backend: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages go to every member of their room, the sender too, and to no other room."""
    client = pytest.importorskip("websockets.sync.client")
    for server in run_example("websocket_chat.py", backend, workers, monkeypatch):
        base = "ws://{}:{}/chat/".format(*server.address)
        with RawClient(server.address) as http:
            page = http.request("GET", "/lobby")
            assert page.status == 200
            assert page.header("Content-Type") == "text/html; charset=utf-8"
            assert b'new WebSocket(scheme + location.host + "/chat/"' in page.body

        def connect(room: str, base: str = base) -> Any:
            return client.connect(base + room, open_timeout=10)

        with contextlib.ExitStack() as stack:
            # Each member gets its own arrival, and the members already there get it too.
            first = stack.enter_context(connect("a"))
            joined = first.recv(10)
            assert joined.endswith(" joined")
            one = joined.split()[0]
            second = stack.enter_context(connect("a"))
            joined = second.recv(10)
            assert first.recv(10) == joined
            two = joined.split()[0]
            other = stack.enter_context(connect("b"))
            three = other.recv(10).split()[0]
            first.send("hello")
            assert first.recv(10) == second.recv(10) == f"{one}: hello"
            # The other room: its own message is the next it gets, room a's never came.
            other.send("elsewhere")
            assert other.recv(10) == f"{three}: elsewhere"
            second.close()
            assert first.recv(10) == f"{two} left"
