"""Misbehaving listeners and clients never take the server down or hurt other clients."""

from __future__ import annotations

import logging
import select as select_module
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import vestespy
from support import RawClient, Serve, ServerThread
from support.timing import deadline_bound


def hello(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all("hello")


def assert_still_serving(thread: ServerThread) -> None:
    with RawClient(thread.address) as client:
        response = client.request("GET", "/healthy")
        assert (response.status, response.body) == (200, b"hello")


def routed(failing: vestespy.server.RequestListener) -> vestespy.server.RequestListener:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/healthy":
            hello(server, req, res)
        else:
            failing(server, req, res)

    return onrequest


@pytest.mark.parametrize("debug", [False, True])
def test_listener_that_raises_gets_a_500_and_is_logged(
    served: Serve, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        raise RuntimeError("listener bug 1234")

    with (
        caplog.at_level(logging.ERROR, logger="vestespy"),
        served(routed(fail), debug=debug) as thread,
    ):
        with RawClient(thread.address) as client:
            response = client.request("GET", "/fail")
            assert response.status == 500
            assert response.closes
            assert ("listener bug 1234" in response.body.decode()) is debug
            assert ("Traceback" in response.body.decode()) is debug
        assert_still_serving(thread)
    assert any("listener bug 1234" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_listener_that_raises_in_end_after_a_body(served: Serve) -> None:
    def fail(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def onend(ev: object, r: object, s: object) -> None:
            raise ValueError("late failure")

        req.on("end", onend)

    with served(routed(fail)) as thread:
        with RawClient(thread.address) as client:
            assert client.request("POST", "/", body=b"x" * 50_000).status == 500
        assert_still_serving(thread)


def test_listener_that_raises_mid_stream_closes_the_connection(served: Serve) -> None:
    def fail(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def pieces() -> Iterator[bytes]:
            yield b"first piece"
            raise OSError("disk went away")

        res.send_chunked(pieces())

    with served(routed(fail)) as thread:
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            data = client.read_until_close()
            assert data.startswith(b"HTTP/1.1 200 OK")
            assert not data.endswith(b"0\r\n\r\n")  # no terminating chunk: the client knows
        assert_still_serving(thread)


def test_client_disconnecting_mid_body_emits_error_and_close(served: Serve) -> None:
    events: list[str] = []
    closed = threading.Event()

    def upload(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        req.on("data", lambda ev, r, s, chunk: None)
        req.on("end", lambda ev, r, s: events.append("end"))

        def onerror(ev: object, r: object, s: object, exc: Exception) -> None:
            events.append(type(exc).__name__)

        def onclose(ev: object, r: object, s: object) -> None:
            events.append("close")
            closed.set()

        req.on("error", onerror)
        req.on("close", onclose)

    with served(routed(upload)) as thread:
        client = RawClient(thread.address)
        client.send(
            b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 5000
        )
        client.close()
        assert closed.wait(10)
        assert_still_serving(thread)
    assert events == ["ClientDisconnected", "close"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n",
        b"NOT-HTTP AT ALL\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
    ],
    ids=["tls-hello", "bad-field", "bad-request-line", "bad-length"],
)
def test_garbage_gets_400_and_close(served: Serve, garbage: bytes) -> None:
    with served(hello) as thread:
        healthy = RawClient(thread.address)
        assert healthy.request().status == 200
        with RawClient(thread.address) as client:
            client.send(garbage)
            response = client.read_response()
            assert response.status == 400
            assert response.closes
            assert client.is_closed_by_server()
        assert healthy.request().status == 200  # another client's connection is untouched
        healthy.close()


def test_a_client_that_stops_reading_a_large_stream_does_not_block_others(
    served: Serve,
) -> None:
    total = 1024 * 1024 * 1024
    piece = b"s" * 65536
    produced = [0]
    closed = threading.Event()

    def big(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def pieces() -> Iterator[bytes]:
            for _ in range(total // len(piece)):
                produced[0] += len(piece)
                yield piece

        req.on("close", lambda ev, r, s: closed.set())
        try:
            res.send_stream(pieces(), total)
        except vestespy.ClientDisconnected:
            pass

    with served(routed(big), write_buffer_size=128 * 1024) as thread:
        stalled = socket.create_connection(thread.address)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        stalled.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        assert stalled.recv(100).startswith(b"HTTP/1.1 200 OK")  # it started
        with RawClient(thread.address) as other:
            # Other clients are served while the stalled one holds its response; use their
            # round trips as the clock until the producer stops advancing.
            previous, steady = -1, 0
            for _ in range(200):
                assert other.request("GET", "/healthy").body == b"hello"
                steady = steady + 1 if produced[0] == previous else 0
                previous = produced[0]
                if steady >= 5:
                    break
            assert steady >= 5, "the producer never stopped: output is not bounded"
        # Kernel socket buffers hold some; the server's own buffer is bounded.
        assert produced[0] < 64 * 1024 * 1024
        stalled.close()
        assert closed.wait(10)
        assert_still_serving(thread)
    assert produced[0] < total


def test_idle_keep_alive_connection_is_closed_after_the_timeout(served: Serve) -> None:
    with served(hello, keep_alive_timeout=0.2) as thread, RawClient(thread.address) as client:
        assert client.request().status == 200
        # The sweep runs every second: the server closes within a couple of seconds.
        assert client.is_closed_by_server()


@pytest.mark.parametrize(
    "backend", ["epoll", "select"] if hasattr(select_module, "epoll") else ["select"]
)
@pytest.mark.parametrize("workers", [4], ids=["pool"])
def test_keep_alive_timeout_counts_from_the_end_of_the_response(served: Serve) -> None:
    """A listener that takes most of the timeout does not shorten the idle time after it."""
    timeout, work = 1.0, 0.8

    def slow(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        time.sleep(work)  # the application's own slowness, under test
        res.send_all("done")

    with (
        served(slow, keep_alive_timeout=timeout) as thread,
        RawClient(thread.address) as client,
    ):
        assert client.request().body == b"done"
        answered = time.monotonic()
        assert client.is_closed_by_server()
        idle = time.monotonic() - answered
    # Counted from the request (as before), the connection closed ~0.2 s after the answer.
    assert idle >= timeout - 0.1, idle
    assert idle < deadline_bound(timeout), idle  # the sweep runs every timeout / 2


def test_many_concurrent_clients(served: Serve) -> None:
    with served(hello) as thread:
        clients = [RawClient(thread.address) for _ in range(100)]
        try:
            for client in clients:
                client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 3)
            for client in clients:
                assert [client.read_response().body for _ in range(3)] == [b"hello"] * 3
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("workers", [2], ids=["pool-2"])
def test_reading_pauses_while_listeners_fall_behind_on_a_body(served: Serve) -> None:
    total = 64 * 1024 * 1024
    release = threading.Event()
    received = [0]
    done = threading.Event()

    def upload(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def ondata(ev: object, r: object, s: object, chunk: bytes) -> None:
            release.wait(30)  # a listener that cannot keep up
            received[0] += len(chunk)

        def onend(ev: object, r: object, s: vestespy.Response) -> None:
            s.send_all(str(received[0]))
            done.set()

        req.on("data", ondata)
        req.on("end", onend)

    with served(upload, max_body_buffer=256 * 1024) as thread:
        sock = socket.create_connection(thread.address)
        sock.sendall(f"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {total}\r\n\r\n".encode())
        sock.setblocking(False)
        piece = b"u" * 65536
        sent = 0
        while sent < total:
            try:
                sent += sock.send(piece[: total - sent])
            except BlockingIOError:
                # Blocked: wait for room; if none comes, the server has stopped reading.
                _, writable, _ = select_module.select([], [sock], [], 1.0)
                if not writable:
                    break
        # The server read no more than its body buffer plus socket buffers.
        assert sent < total // 2, f"server kept reading: {sent} bytes accepted"
        release.set()
        sock.setblocking(True)
        sock.sendall(piece * ((total - sent) // len(piece)) + piece[: (total - sent) % len(piece)])
        assert done.wait(30)
        reply = b""
        while not reply.endswith(str(total).encode()):
            chunk = sock.recv(4096)
            assert chunk
            reply += chunk
        sock.close()
    assert received[0] == total


def test_a_client_stalled_mid_body_is_closed_but_a_slow_application_is_not(
    served: Serve,
) -> None:
    release = threading.Event()

    def slow(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def onend(ev: object, r: object, s: vestespy.Response) -> None:
            if r.path == "/slow":  # type: ignore[attr-defined]
                # Let the server's timeout pass while the application works (off the loop).
                threading.Thread(target=lambda: (release.wait(10), s.send_all("late"))).start()
            else:
                s.send_all("ok")

        req.on("end", onend)

    with served(slow, client_timeout=0.2, keep_alive_timeout=30) as thread:
        with RawClient(thread.address) as stalled:
            stalled.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly part")
            assert stalled.is_closed_by_server()  # the sweep closed it within seconds
        with RawClient(thread.address) as patient:
            patient.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
            # Two sweeps later the connection must still be open: wait on another client's
            # idle connection being kept (keep_alive_timeout=30) for a clock.
            with RawClient(thread.address) as clock:
                clock.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n")
                assert clock.is_closed_by_server()  # client_timeout passed for this one
            release.set()
            assert patient.read_response().body == b"late"
