"""The access log sees everything: the server's own 408 and 503, request ids, JSON lines.

Real servers on 127.0.0.1 port 0, real sockets. The conformance suite's rejections are
replayed in tests/conformance/test_access_log_rejections.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

import vestespy
from support import RawClient, poll, serve
from vestespy.access_log import JSON_FORMAT, AccessLogFormatter
from vestespy.wsgi import WSGIAdapter

JSON = AccessLogFormatter(JSON_FORMAT)
TEXT = AccessLogFormatter("{status} {request_id} {rejection} {request_line}")


class Captured:
    """An access hook keeping each request, its status and its lines (any thread)."""

    def __init__(self) -> None:
        self.entries: list[tuple[vestespy.Request, int, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, request: vestespy.Request, status: int, sent: int, duration: float) -> None:
        entry = (request, status, TEXT(request, status, sent, duration))
        record = json.loads(JSON(request, status, sent, duration))
        with self._lock:
            self.entries.append((*entry, record))

    def wait(self, count: int) -> list[tuple[vestespy.Request, int, str, dict[str, Any]]]:
        poll(lambda: len(self.entries) >= count, 10, f"{count} access log lines")
        with self._lock:
            return list(self.entries)


def answer_id(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
    res.send_all(req.request_id)


def test_a_head_past_header_timeout_gets_408_and_a_line() -> None:
    log = Captured()
    with serve(answer_id, header_timeout=0.3, access_log=log) as thread:
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            response = client.read_response()
            assert response.status == 408
        [(request, status, text, record)] = log.wait(1)
    assert status == 408
    assert request.rejection is not None
    assert "header_timeout" in request.rejection
    assert text.startswith(f"408 {request.request_id} request head not received"), text
    assert text.endswith(" -"), text  # the head was never parsed: no request line
    assert record["rejected"] is True
    assert record["method"] is None
    assert record["duration_ms"] >= 250


def test_a_client_silent_from_the_start_gets_no_line() -> None:
    # Nothing was sent, so nothing is answered (the connection closes): no access log line.
    log = Captured()
    with serve(answer_id, header_timeout=0.2, access_log=log) as thread:
        with RawClient(thread.address) as client:
            assert client.read_until_close() == b""
        with RawClient(thread.address) as client:
            assert client.request().status == 200
        entries = log.wait(1)
    assert [status for _, status, _, _ in entries] == [200]


def test_the_concurrency_limit_503_is_marked() -> None:
    release = threading.Event()
    held: list[vestespy.Response] = []

    def hold(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        held.append(res)
        req.on("close", lambda *_: None)
        threading.Thread(target=lambda: (release.wait(10), res.send_all(b"late"))).start()

    log = Captured()
    with serve(hold, limit_concurrency=1, access_log=log) as thread:
        with RawClient(thread.address) as first, RawClient(thread.address) as second:
            first.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
            poll(lambda: held, 10, "the first request to reach the listener")
            refused = second.request(target="/second")
            assert refused.status == 503
            release.set()
            assert first.read_response().status == 200
        entries = log.wait(2)
    by_target = {
        request.target: (status, text, record) for request, status, text, record in entries
    }
    assert by_target["/second"][0] == 503
    assert " concurrency limit GET /second" in by_target["/second"][1]
    assert by_target["/second"][2]["reason"] == "concurrency limit"
    assert by_target["/first"][2]["rejected"] is False
    assert len(entries) == 2


def _request_id_of(
    options: dict[str, Any], headers: bytes = b""
) -> tuple[str, vestespy.Request, Any]:
    log = Captured()
    with serve(answer_id, access_log=log, **options) as thread:
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            response = client.read_response()
        [(request, _, _, record)] = log.wait(1)
    assert response.body.decode() == request.request_id == record["request_id"]
    return request.request_id, request, response


def test_a_trusted_proxy_gives_the_request_id() -> None:
    request_id, _, _ = _request_id_of(
        {"trusted_proxies": ("127.0.0.1",)}, b"X-Request-ID: lb-42.abc\r\n"
    )
    assert request_id == "lb-42.abc"


@pytest.mark.parametrize(
    ("options", "value"),
    [
        ({}, b"forged"),  # the peer is no trusted proxy
        ({"trusted_proxies": ("10.0.0.0/8",)}, b"forged"),
        ({"trusted_proxies": ("127.0.0.1",)}, b"has space"),
        ({"trusted_proxies": ("127.0.0.1",)}, b'quote"d'),
        ({"trusted_proxies": ("127.0.0.1",)}, b"x" * 201),
        ({"trusted_proxies": ("127.0.0.1",)}, b"caf\xe9"),
    ],
)
def test_otherwise_the_server_makes_one(options: dict[str, Any], value: bytes) -> None:
    request_id, request, _ = _request_id_of(options, b"X-Request-ID: " + value + b"\r\n")
    assert request_id != value.decode("latin-1")
    assert request.headers.get("X-Request-ID") == value.decode("latin-1")  # the client's


def test_made_ids_differ_per_request() -> None:
    ids = {_request_id_of({})[0] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("echo", [True, False])
def test_echo_request_id(echo: bool) -> None:
    request_id, _, response = _request_id_of({"echo_request_id": echo})
    assert response.header("X-Request-ID") == (request_id if echo else None)


def test_an_echoed_id_is_the_proxys() -> None:
    options = {"echo_request_id": True, "trusted_proxies": ("127.0.0.1",)}
    _, _, response = _request_id_of(options, b"X-Request-ID: abc\r\n")
    assert response.header("X-Request-ID") == "abc"


def test_the_wsgi_environ_has_the_servers_id_and_the_clients_field() -> None:
    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen["server"] = environ["vestespy.request_id"]
        seen["client"] = environ.get("HTTP_X_REQUEST_ID", "")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    log = Captured()
    options: dict[str, Any] = {"trusted_proxies": ("127.0.0.1",), "access_log": log}
    with serve(WSGIAdapter(app), **options) as thread:
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: from-lb\r\n\r\n")
            assert client.read_response().status == 200
            client.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-ID: bad id\r\n\r\n")
            assert client.read_response().status == 200
        entries = log.wait(2)
    assert seen["client"] == "bad id"
    assert seen["server"] == entries[1][0].request_id != "bad id"
    assert entries[0][0].request_id == "from-lb"


@pytest.mark.parametrize("workers", [0, 4])
def test_a_pipelined_rejection_is_logged_as_its_own_request(workers: int) -> None:
    log = Captured()
    with serve(answer_id, max_workers=workers, access_log=log) as thread:
        with RawClient(thread.address) as client:
            client.send(
                b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /second HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 101 + b"\r\n"
            )
            assert client.read_response().status == 200
            assert client.read_response().status == 431
        entries = log.wait(2)
    first, second = entries
    assert (first[0].target, first[1], first[0].rejection) == ("/first", 200, None)
    assert second[0] is not first[0]
    assert second[0].rejection is not None
    assert (second[0].target, second[1]) == ("/second", 431)


def test_a_wsgi_response_keeps_the_servers_fields() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Replaced", "app")])
        return [environ["vestespy.request_id"].encode()]

    options: dict[str, Any] = {
        "echo_request_id": True,
        "response_headers": ("X-A: 1", "X-A: 2", "X-Replaced: server"),
    }
    with serve(WSGIAdapter(app), **options) as thread, RawClient(thread.address) as client:
        response = client.request()
    assert response.header("X-Request-ID") == response.body.decode()
    assert response.header_all("X-A") == ["1", "2"]
    assert response.header_all("X-Replaced") == ["app"]
