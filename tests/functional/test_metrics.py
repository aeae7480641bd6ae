"""Server.stats() and /metrics after a known mix of traffic over real sockets: every figure
exact, and the two agreeing.

The mix: good requests, a listener that raises, each kind of rejection, each deadline of
vestespy._deadlines (the clients that provoke them come from support.slow_clients, as in
test_deadlines.py), a client that resets its connection, and a WebSocket. The deadlines are
short (a second or two) and run side by side, so the whole mix takes a few seconds; which
deadline closes a connection does not depend on timing: each client gives one rule reason to
trip, and where two could (a body or a response stalled: the minimum rate, then the silence),
the rules are checked in a fixed order and the other one is hours away. Nothing sleeps: the
test waits for the figures with a bounded poll of stats().

Apart, each on a server of its own options: the WebSocket deadlines, the 503 of
limit_concurrency, and the pause of accepting at max_connections (no 503 for that one).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import vestespy
from support.client import RawClient, build_request
from support.polling import poll
from support.server import ServerThread
from support.slow_clients import BIG, big, echo_length, small_receive_buffer_client
from support.websocket import CLOSE, PING, TEXT, WebSocketClient
from vestespy._stats import ACCEPT_PAUSE_REASONS, DEADLINE_NAMES

OPTIONS: dict[str, Any] = {
    "header_timeout": 1.0,
    "keep_alive_timeout": 2.0,
    "client_timeout": 2.0,
    "linger_timeout": 2.0,
    # A body byte in half a second trips min_body_rate; a reader that took megabytes would
    # trip min_response_rate only hours after it stopped (client_timeout closes it first).
    "min_body_rate": 100,
    "min_response_rate": 1000,
    "rate_grace_period": 0.5,
    "max_body_size": 10,
    "max_request_line": 100,
    "max_header_count": 5,
}


def _largest_send_buffer() -> int:
    """The most a TCP socket's send buffer grows to: tcp_wmem's maximum on Linux (4 MiB
    unless tuned), and 4 MiB at least."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return max(int(limits.read().split()[2]), 4 << 20)
    except (OSError, ValueError, IndexError):
        return 4 << 20


#: What the response_unread client reads before it stops: twice what the first send of its
#: response can leave in the kernel, so that later sends, which the rate meter counts, took
#: at least as much again.
STALL_AFTER = 2 * _largest_send_buffer()
#: The response the response_unread client stops reading: a backlog stays once it stops.
HUGE = 4 * STALL_AFTER
# What each path answers: status and body.
ROUTES = {"/": (200, b"hello"), "/created": (201, b"ok"), "/missing": (404, b"no")}
#: What the WebSocket listener sends first, before echoing each message.
GREETING = "hi"


class App:
    """Answers ROUTES; ``/fail`` raises (a 500); ``/hold`` waits until released; ``/upload``
    answers once the body came (support.slow_clients.echo_length), ``/big`` answers BIG
    bytes, ``/huge`` HUGE. Its WebSocket listener greets, then echoes (on ``/bye``: closes
    at once)."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, server: vestespy.Server, req: vestespy.Request, res: Any) -> None:
        if req.target == "/fail":
            raise RuntimeError("on purpose")
        if req.target == "/upload":
            echo_length(server, req, res)
            return
        if req.target == "/big":
            big(server, req, res)
            return
        if req.target == "/huge":
            res.send_all(b"x" * HUGE)
            return
        if req.target == "/hold":
            self.held.set()
            self.release.wait(10)
        status, body = ROUTES.get(req.target, (200, b"hello"))
        res.status = status
        res.send_all(body)

    def websocket(
        self, server: vestespy.Server, ws: vestespy.WebSocket, req: vestespy.Request
    ) -> None:
        ws.accept()
        if req.target == "/bye":
            ws.close(1000)
            return
        ws.send(GREETING)
        ws.on("message", lambda ws, data: ws.send(data))


@pytest.fixture
def app_server() -> Iterator[tuple[ServerThread, App]]:
    yield from _serve(**OPTIONS)


@pytest.fixture
def limited_server() -> Iterator[tuple[ServerThread, App]]:
    # Apart: with a limit of 1, a request sent right after the previous response can race
    # with the release of its slot (on the listener's thread, after the response went out).
    yield from _serve(limit_concurrency=1)


@pytest.fixture
def websocket_deadline_server() -> Iterator[tuple[ServerThread, App]]:
    yield from _serve(
        websocket_ping_interval=0.5, websocket_ping_timeout=0.5, websocket_close_timeout=0.5
    )


@pytest.fixture
def one_connection_server() -> Iterator[tuple[ServerThread, App]]:
    yield from _serve(max_connections=1)


def _serve(**options: Any) -> Iterator[tuple[ServerThread, App]]:
    app = App()
    server = vestespy.Server(("127.0.0.1", 0), max_workers=4, metrics_bind="127.0.0.1:0", **options)
    server.on("request", app)
    server.on("websocket", app.websocket)
    thread = ServerThread(server).start()
    try:
        yield thread, app
    finally:
        app.release.set()
        thread.stop()


def _reset(client: RawClient) -> None:
    """Close with a reset (RST) instead of a FIN."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def _rejected(address: tuple[str, int], data: bytes) -> int:
    with RawClient(address) as client:
        client.send(data)
        response = client.read_response()
        client.read_until_close()
        return response.status


def _closed(server: vestespy.Server, count: int) -> vestespy.ServerStats | None:
    stats = server.stats()
    return stats if sum(stats.connections_closed.values()) >= count else None


def _metrics(address: tuple[str, int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


#: What the clients of Deadlines add: the connections, the rejections, the requests answered.
DEADLINE_CLOSES = {
    "head_timed_out": 1,
    "no_request": 1,
    "body_too_slow": 1,
    "body_late": 1,
    "response_too_slow": 1,
    "response_unread": 1,
    "linger_over": 1,
    "keep_alive_over": 1,
}
DEADLINE_REJECTIONS = {(408, "head_timed_out"): 1, (408, "body_too_slow"): 1}
# The lingering and the idle clients' requests, and the two big responses: counted when
# their end is handed over for sending, as all are; the clients' not reading them is
# what response_too_slow and response_unread count.
DEADLINE_REQUESTS = {("GET", "2xx"): 4}
DEADLINE_RESPONSE_BODY_BYTES = 5 + 5 + BIG + HUGE


class Deadlines:
    """One client per deadline of vestespy._deadlines, each left to trip its own, side by
    side; :meth:`finish` checks what each saw and closes them."""

    def __init__(self, address: tuple[str, int]) -> None:
        # head_timed_out: part of a head, then nothing (408).
        self.head = RawClient(address)
        self.head.send(b"GET / HTTP/1.1\r\n")
        # no_request: not one byte (closed without an answer).
        self.silent = RawClient(address)
        # body_too_slow: one byte of a ten-byte body, then nothing (408 at the grace period,
        # before client_timeout).
        self.slow_body = RawClient(address)
        upload = build_request("POST", "/upload", headers=[("Content-Length", "10")])
        self.slow_body.send(upload + b"x")
        # body_late: the head of a body, and no body at all (no rate to measure).
        self.no_body = RawClient(address)
        self.no_body.send(upload)
        # response_too_slow: a big response, not read at all.
        self.unread = small_receive_buffer_client(address)
        self.unread.send(build_request("GET", "/big"))
        # response_unread: a quarter of a huge response read quickly, the rest left unread
        # (its average rate stays above min_response_rate for hours; client_timeout trips).
        # The meter counts only what sends after the first take (the one that left a
        # backlog), and that first send takes what the kernel buffers and whatever a reader
        # drains meanwhile: a client that read during it, or only a kernel buffer's worth,
        # could leave the meter at zero (seen as response_too_slow in CI). So it reads its
        # head only, and the rest (STALL_AFTER) once the loop has finished that send.
        self.stalled = small_receive_buffer_client(address)
        self.stalled.send(build_request("GET", "/huge"))
        assert self.stalled.read_head().status == 200
        # linger_over: a response with Connection: close, its FIN, and the client never
        # closes. Its request is read by the loop after the send above returned (the loop
        # thread was in it when the head left).
        self.lingering = RawClient(address)
        response = self.lingering.request("GET", "/", headers=[("Connection", "close")])
        assert response.closes
        assert self.lingering.read_until_close() == b""
        received = len(self.stalled.buffer)
        while received < STALL_AFTER:
            chunk = self.stalled.sock.recv(1 << 20)
            assert chunk, "closed early"
            received += len(chunk)
        # keep_alive_over: a request, then idle.
        self.idle = RawClient(address)
        assert self.idle.request("GET", "/").status == 200

    def finish(self) -> None:
        """Check what each client saw (every connection is closed by now) and close them."""
        for client in (self.head, self.slow_body):
            response = client.read_response()
            assert response.status == 408
            assert response.closes
        assert self.silent.read_until_close() == b""
        assert self.no_body.read_until_close() == b""
        for client in (self.unread, self.stalled):
            try:
                client.read_until_close()
            except ConnectionResetError:
                pass  # closed with response bytes unsent: the kernel resets
        for client in (
            self.head,
            self.silent,
            self.slow_body,
            self.no_body,
            self.unread,
            self.stalled,
            self.lingering,
            self.idle,
        ):
            client.close()


def _websocket_open(server: vestespy.Server) -> vestespy.ServerStats | None:
    stats = server.stats()
    return stats if stats.websockets_open == 1 and ("GET", "1xx") in stats.requests else None


def _websocket_session(server: vestespy.Server, address: tuple[str, int]) -> None:
    """A WebSocket: greeted, three messages echoed, closed by the client; counted open while
    it is, and closed after."""
    with WebSocketClient(address) as ws:
        assert ws.recv_message() == GREETING
        stats = poll(
            lambda: _websocket_open(server), 10, "the WebSocket counted open, its 101 answered"
        )
        assert stats.requests_in_flight == 0  # a WebSocket is not a request
        for message in ("one", "two", b"three"):
            ws.send(message)
            assert ws.recv_message() == message
        ws.close()
        assert ws.recv_frame().opcode == CLOSE
        assert ws.recv_eof()

    def closed() -> vestespy.ServerStats | None:
        stats = server.stats()
        return stats if stats.websockets_open == 0 and stats.websocket_messages_sent == 4 else None

    stats = poll(closed, 10, "the WebSocket to be counted closed")
    assert stats.websocket_messages_received == 3


def test_metrics_and_stats_count_a_known_mix_exactly(
    app_server: tuple[ServerThread, App],
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    thread, _ = app_server
    server, address = thread.server, thread.address
    # Good requests on one keep-alive connection, which the client then closes.
    with RawClient(address) as client:
        assert client.request("GET", "/").status == 200
        assert client.request("HEAD", "/").status == 200
        assert client.request("POST", "/created", body=b"hello").status == 201
        assert client.request("DELETE", "/missing").status == 404
    # A listener that raises: 500, and the server closes the connection.
    with RawClient(address) as client:
        failed = client.request("PUT", "/fail")
        assert failed.status == 500
        assert failed.closes
        client.read_until_close()
    # The server's rejections, each on a connection of its own.
    assert _rejected(address, b"GET / HTTP/1.1\nHost: x\n\n") == 400
    assert _rejected(address, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n") == 413
    assert _rejected(address, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 414
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(10))
    assert _rejected(address, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n") == 431
    # A client that resets its connection after a response.
    resetting = RawClient(address)
    assert resetting.request("GET", "/").status == 200
    _reset(resetting)
    # A WebSocket.
    _websocket_session(server, address)
    requests = {
        ("GET", "2xx"): 2 + DEADLINE_REQUESTS[("GET", "2xx")],  # and the resetting client's
        ("HEAD", "2xx"): 1,
        ("POST", "2xx"): 1,
        ("DELETE", "4xx"): 1,
        ("PUT", "5xx"): 1,
        ("GET", "1xx"): 1,  # the WebSocket's 101
    }
    rejections = {
        (400, "bare-lf"): 1,
        (413, "body-larger-than-max_body_size"): 1,
        (414, "request-line-too-long"): 1,
        (431, "too-many-header-fields"): 1,
        **DEADLINE_REJECTIONS,
    }
    closed = {
        "client": 2,  # the keep-alive connection; the WebSocket (the client's close frame)
        "server": 1,  # after the 500
        "protocol_error": 1,
        "limit": 3,  # 413, 414, 431
        "client_reset": 1,
        **DEADLINE_CLOSES,
    }
    # Each deadline, side by side (every one the server has: a new one needs a client here).
    assert set(DEADLINE_CLOSES) == set(DEADLINE_NAMES.values())
    deadlines = Deadlines(address)
    stats = poll(lambda: _closed(server, sum(closed.values())), 30, "every connection to close")
    deadlines.finish()

    answered = sum(requests.values())
    assert dict(stats.requests) == requests
    assert dict(stats.rejections) == rejections
    assert dict(stats.connections_closed) == closed
    assert stats.connections_accepted == sum(closed.values())
    assert stats.connections_open == 0
    assert stats.requests_in_flight == 0
    assert stats.request_body_bytes == 5 + 1  # POST /created; the one byte of the slow body
    error_page = len(b"500 Internal Server Error\n")
    # GET / and the resetting client's; HEAD sends none; /created, /missing, the 500.
    assert stats.response_body_bytes == 2 * 5 + 2 + 2 + error_page + DEADLINE_RESPONSE_BODY_BYTES
    assert stats.request_duration.count == answered
    assert stats.request_duration.sum > 0
    assert stats.pool.threads >= 1
    assert stats.pool.busy == 0
    assert stats.pool.queued == 0
    assert stats.websockets_open == 0
    assert stats.websocket_messages_received == 3
    assert stats.websocket_messages_sent == 4
    assert dict(stats.accept_paused) == {}  # max_connections (1000) never reached

    _check_metrics(server, stats, requests, rejections, closed)


def _check_metrics(
    server: vestespy.Server,
    stats: vestespy.ServerStats,
    requests: dict[tuple[str, str], int],
    rejections: dict[tuple[int, str], int],
    closed: dict[str, int],
) -> None:
    """The scrape says what ``stats`` says, and ``stats`` what the test expects."""
    answered = sum(requests.values())
    metrics = _metrics(server.metrics_address or ("", 0))
    for (method, status_class), n in requests.items():
        key = (("method", method), ("status_class", status_class))
        assert metrics.pop(("vestespy_requests_total", key)) == n
    for (status, reason), n in rejections.items():
        key = (("reason", reason), ("status", str(status)))
        assert metrics.pop(("vestespy_rejections_total", key)) == n
    for cause, n in closed.items():
        assert metrics.pop(("vestespy_connections_closed_total", (("cause", cause),))) == n
    assert not [k for k in metrics if k[0] == "vestespy_requests_total"]
    assert not [k for k in metrics if k[0] == "vestespy_rejections_total"]
    assert all(n == 0 for k, n in metrics.items() if k[0] == "vestespy_connections_closed_total")
    assert metrics[("vestespy_connections_accepted_total", ())] == stats.connections_accepted
    assert metrics[("vestespy_connections_open", ())] == 0
    assert metrics[("vestespy_requests_in_flight", ())] == 0
    assert metrics[("vestespy_request_body_bytes_total", ())] == stats.request_body_bytes
    assert metrics[("vestespy_response_body_bytes_total", ())] == stats.response_body_bytes
    assert metrics[("vestespy_request_duration_seconds_count", ())] == answered
    assert metrics[("vestespy_request_duration_seconds_sum", ())] == pytest.approx(
        stats.request_duration.sum
    )
    for bound, n in zip(
        (*stats.request_duration.bounds, "+Inf"), stats.request_duration.cumulative, strict=True
    ):
        le = bound if isinstance(bound, str) else repr(bound)
        assert metrics[("vestespy_request_duration_seconds_bucket", (("le", le),))] == n
    assert metrics[("vestespy_pool_threads", ())] == stats.pool.threads
    assert metrics[("vestespy_pool_busy_threads", ())] == 0
    assert metrics[("vestespy_pool_queue_depth", ())] == 0
    assert metrics[("vestespy_websockets_open", ())] == 0
    for reason in ACCEPT_PAUSE_REASONS:
        key = ("vestespy_accept_paused_total", (("reason", reason),))
        assert metrics[key] == stats.accept_paused.get(reason, 0)
    for direction, n in (
        ("received", stats.websocket_messages_received),
        ("sent", stats.websocket_messages_sent),
    ):
        assert metrics[("vestespy_websocket_messages_total", (("direction", direction),))] == n


def test_limit_concurrency_refusals_are_counted(
    limited_server: tuple[ServerThread, App],
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    thread, app = limited_server
    server, address = thread.server, thread.address
    holder = RawClient(address)
    holder.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    assert app.held.wait(10)
    in_flight = server.stats()
    assert in_flight.requests_in_flight == 1
    assert in_flight.pool.busy == 1
    assert _rejected(address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == 503
    app.release.set()
    assert holder.read_response().status == 200
    holder.close()
    stats = poll(lambda: _closed(server, 2), 20, "the two connections to close")
    refused = len(b"503 Service Unavailable: too many requests in flight; retry later\n")
    assert stats.response_body_bytes == 5 + refused
    assert stats.requests_in_flight == 0
    _check_metrics(
        server,
        stats,
        {("GET", "2xx"): 1, ("GET", "5xx"): 1},
        {(503, "limit_concurrency"): 1},
        {"client": 1, "limit": 1},
    )


def _frames_until_closed(ws: WebSocketClient) -> list[int]:
    """The opcodes of the frames that come before the server closes the connection."""
    opcodes = []
    try:
        while True:
            opcodes.append(ws.recv_frame().opcode)
    except ConnectionError:  # the end, or a reset
        return opcodes


def test_the_websocket_deadlines_are_counted_by_name(
    websocket_deadline_server: tuple[ServerThread, App],
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    thread, _ = websocket_deadline_server
    server, address = thread.server, thread.address
    # A client that never answers a ping, and one that never answers the server's close.
    with WebSocketClient(address) as deaf, WebSocketClient(address, "/bye") as mute:
        assert mute.recv_frame().opcode == CLOSE
        stats = poll(lambda: _closed(server, 2), 20, "the two WebSockets to be closed")
        # The greeting, a ping left unanswered, and the close (no close frame: the peer is dead).
        assert _frames_until_closed(deaf) == [TEXT, PING]
        assert _frames_until_closed(mute) == []
    closed = {"websocket_ping_timeout": 1, "websocket_close_timeout": 1}
    assert dict(stats.connections_closed) == closed
    assert dict(stats.requests) == {("GET", "1xx"): 2}
    assert stats.websockets_open == 0
    _check_metrics(server, stats, {("GET", "1xx"): 2}, {}, closed)


def test_accepting_paused_at_max_connections_is_counted_and_nobody_gets_a_503(
    one_connection_server: tuple[ServerThread, App],
) -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    thread, _ = one_connection_server
    server, address = thread.server, thread.address
    with RawClient(address) as first:
        assert first.request().status == 200
        # A second client: its handshake completes in the listen queue, which wakes the
        # loop, which finds the limit reached and stops accepting.
        waiting = RawClient(address)
        waiting.send(build_request())
        poll(
            lambda: server.stats().accept_paused.get("max_connections") == 1,
            10,
            "accepting to pause",
        )
        assert server.stats().connections_accepted == 1
    # The first client leaves: the waiting one is accepted and served, no 503 anywhere.
    assert waiting.read_response().status == 200
    waiting.close()
    stats = poll(lambda: _closed(server, 2), 10, "the two connections to close")
    assert dict(stats.accept_paused) == {"max_connections": 1}
    assert dict(stats.requests) == {("GET", "2xx"): 2}
    assert dict(stats.rejections) == {}
    _check_metrics(server, stats, {("GET", "2xx"): 2}, {}, {"client": 2})


def test_the_application_port_does_not_serve_metrics(
    app_server: tuple[ServerThread, App],
) -> None:
    thread, _ = app_server
    assert thread.server.metrics_address != thread.address
    with RawClient(thread.address) as client:
        assert client.request("GET", "/metrics").body == b"hello"  # the application's answer


def test_stats_work_without_metrics_bind_and_without_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    server = vestespy.Server(("127.0.0.1", 0), max_workers=0)
    server.on("request", lambda srv, req, res: res.send_all(b"x"))
    thread = ServerThread(server).start()
    try:
        with RawClient(thread.address) as client:
            assert client.request().status == 200
        stats = poll(lambda: _closed(server, 1), 10, "the connection to close")
        assert dict(stats.requests) == {("GET", "2xx"): 1}
        assert dict(stats.connections_closed) == {"client": 1}
        assert stats.pool == vestespy.PoolLoad()
        assert server.metrics_address is None
    finally:
        thread.stop()


def test_metrics_bind_without_the_client_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(RuntimeError, match=r"pip install 'vestespy\[metrics\]'"):
        vestespy.Server(("127.0.0.1", 0), metrics_bind="127.0.0.1:0")


@pytest.mark.parametrize("bind", ["9100", "host:port", "127.0.0.1:70000", ""])
def test_a_malformed_metrics_bind_is_refused(bind: str) -> None:
    with pytest.raises(ValueError, match="metrics_bind"):
        vestespy.ServerOptions(metrics_bind=bind)
