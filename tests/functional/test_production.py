"""What the command line builds on: draining shutdown, pre-bound sockets, access log, proxies."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import vestespy
from support import RawClient, Serve, ServerThread, poll


class Pending:
    """A listener that holds responses until the test releases them (any thread)."""

    def __init__(self) -> None:
        self.responses: list[vestespy.Response] = []
        self.arrived = threading.Semaphore(0)

    def __call__(self, server: vestespy.Server, req: vestespy.Request, res: Any) -> None:
        if req.path == "/now":
            res.send_all("now")
            return
        self.responses.append(res)
        self.arrived.release()

    def wait(self) -> vestespy.Response:
        assert self.arrived.acquire(timeout=10), "the request did not arrive"
        return self.responses[-1]


def connect_idle(address: tuple[str, int]) -> RawClient:
    """A keep-alive connection that has been answered once and is now idle."""
    return connect_idle_on(address, "/now", b"now")


def connect_idle_on(address: tuple[str, int], target: str, body: bytes) -> RawClient:
    """A keep-alive connection answered once at ``target`` with ``body``, now idle."""
    client = RawClient(address)
    response = client.request(target=target)
    assert response.body == body
    assert not response.closes
    return client


def test_drain_finishes_requests_in_flight_and_closes_idle_connections(served: Serve) -> None:
    pending = Pending()
    with served(pending) as thread:
        server = thread.server
        idle = connect_idle(thread.address)
        busy = RawClient(thread.address)
        busy.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        response = pending.wait()
        server.shutdown(timeout=30)
        assert idle.is_closed_by_server()  # idle: closed once idle for a second
        assert not server.wait_stopped(0.2)  # the request in flight holds the drain
        response.send_all("done")
        answer = busy.read_response()
        assert answer.body == b"done"
        assert answer.header("Connection") == "close"
        assert busy.is_closed_by_server()
        idle.close()
        busy.close()  # or the server lingers for linger_timeout, waiting for the client
        assert server.wait_stopped(10)


def test_a_request_on_an_idle_connection_during_the_drain_is_answered(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vestespy.server, "_DRAIN_IDLE", 30.0)  # the test decides, not a clock
    with served(Pending()) as thread:
        idle = connect_idle(thread.address)
        thread.server.shutdown(timeout=60)
        poll(lambda: thread.server._draining, 10, "the drain to begin")
        response = idle.request(target="/now")  # sent while the server drains
        assert response.body == b"now"
        assert response.closes
        assert idle.is_closed_by_server()
        idle.close()
        assert thread.server.wait_stopped(10)


def test_a_request_that_reached_the_kernel_before_the_idle_close_is_answered(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race a proxy in front loses a POST to: the drain's sweep finds a connection idle
    # while its next request already waits in the kernel, unread. A listener blocking the
    # (inline) loop holds the sweep until the request has arrived, so the order is forced.
    monkeypatch.setattr(vestespy.server, "_DRAIN_IDLE", 0.0)  # every idle connection qualifies
    blocking, release = threading.Event(), threading.Event()

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: Any) -> None:
        if req.path == "/block":
            blocking.set()
            assert release.wait(10)
        res.send_all(req.path)

    with served(onrequest, max_workers=0) as thread:
        idle = connect_idle_on(thread.address, "/first", b"/first")
        blocker = RawClient(thread.address)
        blocker.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        assert blocking.wait(10), "the blocking request did not arrive"
        idle.send(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n")  # lands while the loop waits
        thread.server.shutdown(timeout=30)  # its sweep runs as soon as the loop is free
        release.set()
        late = idle.read_response()
        assert late.body == b"/late"
        assert late.closes
        assert blocker.read_response().body == b"/block"
        idle.close()
        blocker.close()
        assert thread.server.wait_stopped(10)


def test_drain_closes_connections_still_open_at_the_timeout(served: Serve) -> None:
    pending = Pending()
    with served(pending) as thread:
        client = RawClient(thread.address)
        client.send(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        pending.wait()
        started = time.monotonic()
        thread.server.shutdown(timeout=0.3)
        assert thread.server.wait_stopped(10)
        assert time.monotonic() - started < 5
        assert client.is_closed_by_server()
        client.close()


def test_a_shorter_shutdown_cuts_the_drain_short(served: Serve) -> None:
    pending = Pending()
    with served(pending) as thread:
        client = RawClient(thread.address)
        client.send(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        pending.wait()
        thread.server.shutdown(timeout=60)
        thread.server.shutdown()
        assert thread.server.wait_stopped(10)
        client.close()


def test_response_started_before_the_drain_keeps_its_keep_alive_promise(
    served: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its head went out without Connection: close, so the client (a proxy's pool) takes the
    # connection as reusable the moment the response ends and may send on it at once: closing
    # there would cut that request short. The next request is answered, with the close.
    monkeypatch.setattr(vestespy.server, "_DRAIN_IDLE", 30.0)  # the test decides, not a clock
    release = threading.Event()
    started = threading.Event()

    def stream(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/next":
            res.send_all("next")
            return

        def chunks() -> Any:
            yield b"first "
            started.set()
            assert release.wait(10)
            yield b"last"

        threading.Thread(target=res.send_chunked, args=(chunks(),), daemon=True).start()

    with served(stream) as thread:
        client = RawClient(thread.address)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(10)
        head = client.read_head()  # sent before the drain: keep-alive as far as it says
        assert head.header("Connection") is None
        thread.server.shutdown(timeout=30)
        poll(lambda: thread.server._draining, 10, "the drain to begin")
        release.set()
        client.read_body(head)
        assert head.body == b"first last"
        response = client.request(target="/next")  # on the connection the response kept
        assert response.body == b"next"
        assert response.closes
        assert client.is_closed_by_server()
        client.close()
        assert thread.server.wait_stopped(10)


def test_a_just_accepted_connection_gets_its_first_request_answered(served: Serve) -> None:
    with served(Pending()) as thread:
        client = RawClient(thread.address)
        # Make sure the server has accepted it: a connection it never saw is not draining.
        poll(lambda: thread.server._connections, 10, "the connection to be accepted")
        thread.server.shutdown(timeout=10)
        # The drain has begun before the request is sent.
        poll(lambda: thread.server._draining, 10, "the drain to begin")
        response = client.request(target="/now")
        assert response.body == b"now"
        assert response.closes
        client.close()
        assert thread.server.wait_stopped(10)


def test_serving_again_after_a_drain(served: Serve) -> None:
    with served(Pending()) as thread:
        thread.server.shutdown(timeout=5)
        assert thread.server.wait_stopped(10)
        second = ServerThread(thread.server)
        second._thread.start()
        assert thread.server.wait_serving(10)
        with RawClient(thread.address) as client:
            assert client.request(target="/now").body == b"now"
        thread.server.shutdown()
        assert thread.server.wait_stopped(10)


# -- pre-bound sockets ------------------------------------------------------------------------


def test_serves_on_several_pre_bound_sockets(tmp_path: Path, backend: str) -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "s.sock")
    unix.bind(path)
    unix.listen()
    server = vestespy.Server([tcp, unix], max_workers=0, select=backend)
    server.on("request", lambda srv, req, res: res.send_all(repr(req.client_address)))
    thread = ServerThread(server).start()
    try:
        assert server.address == tcp.getsockname()
        assert server.sockets == [tcp, unix]
        with RawClient(server.address) as client:
            assert client.request().body.startswith(b"('127.0.0.1', ")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(path)
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := raw.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
        assert data.endswith(b"''")  # a UNIX client has no address
    finally:
        thread.stop()
    assert tcp.fileno() == -1  # the server closed what it was given
    assert unix.fileno() == -1
    os.unlink(path)


def test_unix_address_and_bad_addr(tmp_path: Path) -> None:
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "a.sock"))
    unix.listen()
    with vestespy.Server(unix) as server:
        assert server.address == (str(tmp_path / "a.sock"), 0)
    with pytest.raises(TypeError, match="a listening socket or a list of them"):
        vestespy.Server([])  # type: ignore[arg-type]


# -- the access log hook ----------------------------------------------------------------------


def test_access_log_hook_sees_every_completed_response(served: Serve) -> None:
    records: list[tuple[str, int, int, float]] = []
    lock = threading.Lock()

    def hook(req: vestespy.Request, status: int, sent: int, duration: float) -> None:
        with lock:
            records.append((req.target, status, sent, duration))

    def app(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/all":
            res.status = 201
            res.send_all(b"x" * 10)
        elif req.path == "/stream":
            res.send_stream([b"ab", b"cde"], 5)
        elif req.path == "/chunked":
            res.send_chunked([b"a" * 1000, "b" * 24])
        elif req.path == "/boom":
            raise RuntimeError("listener bug (expected by the test)")
        else:
            res.send_all("")

    with served(app, access_log=hook) as thread, RawClient(thread.address) as client:
        for target in ("/all", "/stream", "/chunked", "/empty"):
            client.request(target=target)
        client.request("HEAD", "/all")
        client.request(target="/boom")  # last: a 500 closes the connection
        poll(lambda: len(records) >= 6, 10, "the six access log records")
    assert [record[:3] for record in records] == [
        ("/all", 201, 10),
        ("/stream", 200, 5),
        ("/chunked", 200, 1024),
        ("/empty", 200, 0),
        ("/all", 201, 0),  # HEAD: no body sent
        ("/boom", 500, len(b"500 Internal Server Error\n")),
    ]
    assert all(0 <= duration < 10 for *_, duration in records)


# -- trusted proxies ------------------------------------------------------------------------


def test_forwarded_fields_believed_only_from_trusted_peers(served: Serve) -> None:
    def app(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all(f"{req.client_address}|{req.peer_address[0]}|{req.scheme}|{req.host}")

    fields = [
        ("Host", "internal:8080"),
        ("X-Forwarded-For", "6.6.6.6, 198.51.100.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "shop.example"),
    ]
    with served(app, trusted_proxies="127.0.0.1") as thread, RawClient(thread.address) as client:
        body = client.request(headers=fields).body.decode()
        assert body == "('198.51.100.7', 0)|127.0.0.1|https|shop.example"
    with served(app, trusted_proxies="10.0.0.0/8") as thread, RawClient(thread.address) as client:
        body = client.request(headers=fields).body.decode()
        client_address, peer, scheme, host = body.split("|")
        assert client_address.startswith("('127.0.0.1', ")
        assert (peer, scheme, host) == ("127.0.0.1", "http", "internal:8080")
