"""Requests over real sockets: attributes, body events, keep-alive, pipelining, HEAD."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import vestespy
from support import RawClient, Serve
from support.client import build_request


def recorder() -> tuple[list[tuple[Any, ...]], Any]:
    """A listener that records each request's events and answers with a summary at "end"."""
    log: list[tuple[Any, ...]] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        log.append(("request", threading.get_ident(), req))
        body: list[bytes] = []
        req.on("data", lambda ev, r, s, chunk: body.append(chunk))

        def onend(ev: vestespy.Request, r: vestespy.Request, s: vestespy.Response) -> None:
            log.append(("end", r.target, b"".join(body), list(r.trailers)))
            s.set_header("X-Target", r.target)
            s.send_all(b"".join(body) or r.target.encode())

        req.on("end", onend)
        req.on("close", lambda ev, r, s: log.append(("close", r.target)))

    return log, onrequest


def test_request_attributes(served: Serve) -> None:
    seen: list[vestespy.Request] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        seen.append(req)
        res.send_all("ok")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(
            b"GET /caf%C3%A9/x%20y?a=1&b=%20 HTTP/1.1\r\nHost: h\r\n"
            b"X-One: 1\r\nx-one: 2\r\nAccept: */*\r\n\r\n"
        )
        assert client.read_response().body == b"ok"
        local = client.sock.getsockname()
    req = seen[0]
    assert req.method == "GET"
    assert req.target == "/caf%C3%A9/x%20y?a=1&b=%20"
    assert req.path == "/café/x y"
    assert req.query == "a=1&b=%20"
    assert req.http_version == "1.1"
    assert list(req.headers) == [("Host", "h"), ("X-One", "1"), ("x-one", "2"), ("Accept", "*/*")]
    assert req.headers.get_all("X-ONE") == ["1", "2"]
    assert req.client_address[:2] == local[:2]
    assert req.params == {}


def test_body_events_in_order_then_close(served: Serve) -> None:
    log, onrequest = recorder()
    body = bytes(range(256)) * 2000  # several reads' worth
    with served(onrequest) as thread, RawClient(thread.address) as client:
        response = client.request("POST", "/upload", body=body)
        assert response.body == body
        client.send(
            b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Check: yes\r\n\r\n"
        )
        assert client.read_response().body == b"hello world"
        # "close" is the last event of an exchange: make one more request so it has run.
        client.request("GET", "/last")
    kinds = [entry[0] for entry in log]
    assert kinds[:6] == ["request", "end", "close", "request", "end", "close"]
    assert log[1][1:3] == ("/upload", body)
    assert log[4][1:] == ("/chunked", b"hello world", [("X-Check", "yes")])


def test_keep_alive_by_default_and_connection_close(served: Serve) -> None:
    _log, onrequest = recorder()
    with served(onrequest) as thread, RawClient(thread.address) as client:
        for n in range(5):
            response = client.request("GET", f"/{n}")
            assert response.body == f"/{n}".encode()
            assert not response.closes
        response = client.request("GET", "/bye", headers=[("Connection", "close")])
        assert response.closes
        assert client.is_closed_by_server()


def test_http10_closes_after_response(served: Serve) -> None:
    _log, onrequest = recorder()
    with served(onrequest) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/old", version="1.0")
        assert response.http_version == "1.1"
        assert response.body == b"/old"
        assert response.closes
        assert client.is_closed_by_server()


def test_pipelined_requests_are_answered_in_order(served: Serve) -> None:
    _log, onrequest = recorder()
    requests = [build_request("GET", f"/p{n}") for n in range(32)]
    requests[7] = build_request("POST", "/p7", body=b"body-seven")
    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(b"".join(requests))
        bodies = [client.read_response().body for _ in requests]
    expected = [f"/p{n}".encode() for n in range(32)]
    expected[7] = b"body-seven"
    assert bodies == expected


def test_unread_body_is_drained_before_the_next_request(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all(req.target)  # answers at once, never reads the body

    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(
            build_request("POST", "/first", body=b"x" * 300_000) + build_request("GET", "/second")
        )
        assert client.read_response().body == b"/first"
        assert client.read_response().body == b"/second"


def test_unread_body_past_the_drain_limit_closes(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all("early")

    with served(onrequest, max_drain=10_000) as thread, RawClient(thread.address) as client:
        client.send(build_request("POST", "/", headers=[("Content-Length", "10000000")]))
        assert client.read_response().body == b"early"
        try:
            client.send(b"x" * 200_000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert client.is_closed_by_server()


def test_events_of_one_connection_stay_ordered_on_a_pool(served: Serve) -> None:
    order: list[tuple[int, str]] = []
    lock = threading.Lock()

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        conn_id = int(req.headers.get("X-Conn", "0"))
        with lock:
            order.append((conn_id, "request"))

        def ondata(ev: Any, r: Any, s: Any, chunk: bytes) -> None:
            with lock:
                order.append((conn_id, "data"))

        def onend(ev: Any, r: Any, s: vestespy.Response) -> None:
            with lock:
                order.append((conn_id, "end"))
            s.send_all("done")

        req.on("data", ondata)
        req.on("end", onend)

    with served(onrequest) as thread:
        clients = [RawClient(thread.address) for _ in range(6)]
        try:
            for n, client in enumerate(clients):
                client.send(
                    build_request("POST", "/", body=b"z" * 200_000, headers=[("X-Conn", str(n))])
                )
            for client in clients:
                assert client.read_response().body == b"done"
        finally:
            for client in clients:
                client.close()
    for n in range(6):
        events = [kind for conn, kind in order if conn == n]
        assert events[0] == "request"
        assert events[-1] == "end"
        assert set(events[1:-1]) == {"data"}


def test_head_and_bodyless_statuses(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/204":
            res.status = 204
            res.send_all()
        elif req.path == "/304":
            res.status = 304
            res.send_all()
        elif req.path == "/stream":
            res.send_stream([b"abc", b"def"], 6)
        elif req.path == "/chunked":
            res.send_chunked([b"abc"])
        else:
            res.send_all("hello body")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        get = client.request("GET", "/")
        head = client.request("HEAD", "/")
        assert head.status == 200
        assert head.header("Content-Length") == get.header("Content-Length") == "10"
        assert head.body == b""
        assert client.request("HEAD", "/stream").header("Content-Length") == "6"
        chunked_head = client.request("HEAD", "/chunked")
        assert chunked_head.header("Transfer-Encoding") == "chunked"
        for status in (204, 304):
            response = client.request("GET", f"/{status}")
            assert response.status == status
            assert response.header("Content-Length") is None
        # If any of the above had sent a body, this response would be misparsed.
        assert client.request("GET", "/").body == b"hello body"


def test_bodyless_statuses_drop_a_given_body(served: Serve) -> None:
    """A body given with 204 or 304 is not sent, whichever method sends it (as for HEAD)."""
    streams_closed: list[str] = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def __iter__(self) -> Iterator[bytes]:
            yield b"a body"

        def close(self) -> None:
            streams_closed.append(self.name)

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        status, method = req.path.strip("/").split("/")
        res.status = int(status)
        if method == "all":
            res.send_all("a body")
        elif method == "stream":
            res.send_stream(Stream(req.path), 6)
        else:
            res.send_chunked(Stream(req.path))

    with served(onrequest) as thread, RawClient(thread.address) as client:
        for status in (204, 304):
            for method in ("all", "stream", "chunked"):
                response = client.request("GET", f"/{status}/{method}")
                assert response.status == status
                assert response.body == b""
                assert response.header("Content-Length") is None
                assert response.header("Transfer-Encoding") is None
        # If any of the above had sent body bytes, this response would be misparsed.
        assert client.request("GET", "/200/all").body == b"a body"
    assert sorted(streams_closed) == ["/204/chunked", "/204/stream", "/304/chunked", "/304/stream"]


def test_framing_headers_set_on_a_204_are_not_sent(served: Serve) -> None:
    # RFC 9110 8.6, RFC 9112 6.1: no Content-Length or Transfer-Encoding in a 204, even when the
    # application set them (some frameworks do); a 304 keeps a Content-Length it was given.
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.status = int(req.path[1:])
        res.set_header("Content-Length", "42")
        if res.status == 204:
            res.set_header("Transfer-Encoding", "chunked")
        res.send_all()

    with served(onrequest) as thread, RawClient(thread.address) as client:
        no_content = client.request("GET", "/204")
        assert no_content.status == 204
        assert no_content.header("Content-Length") is None
        assert no_content.header("Transfer-Encoding") is None
        not_modified = client.request("GET", "/304")
        assert not_modified.header("Content-Length") == "42"
        assert not_modified.body == b""
        assert client.request("GET", "/204").status == 204  # the connection is still in step


def test_expect_100_continue_sent_when_body_is_wanted(served: Serve) -> None:
    _log, onrequest = recorder()
    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(
            b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = client.read_head()
        assert (interim.status, interim.reason) == (100, "Continue")
        client.send(b"hello")
        assert client.read_response().body == b"hello"


def test_no_100_continue_when_the_response_comes_first(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.status = 413
        res.send_all("too big")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(
            b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        response = client.read_head()
        assert response.status == 413
        client.read_body(response)
        assert response.body == b"too big"


def test_trailers_and_query_on_absolute_form(served: Serve) -> None:
    seen: list[vestespy.Request] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        seen.append(req)
        res.send_all("ok")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(b"GET http://h/abs/path?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert client.read_response().status == 200
    assert (seen[0].path, seen[0].query) == ("/abs/path", "q=1")


def test_send_all_from_another_thread(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        threading.Thread(target=res.send_all, args=(b"from a thread",)).start()

    with served(onrequest) as thread, RawClient(thread.address) as client:
        for _ in range(3):
            assert client.request("GET", "/").body == b"from a thread"


def test_max_body_size_answers_413_and_closes(served: Serve) -> None:
    errors: list[Exception] = []
    errored = threading.Event()

    def onerror(_e: object, _q: object, _r: object, exc: Exception) -> None:
        errors.append(exc)
        errored.set()

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        body: list[bytes] = []
        req.on("data", lambda _e, _q, _r, chunk: body.append(chunk))
        req.on("error", onerror)
        req.on("end", lambda _e, _q, r: r.send_all(b"got " + b"".join(body)))

    with served(onrequest, max_body_size=8) as thread:
        with RawClient(thread.address) as client:
            response = client.request("POST", "/", b"12345678")
            assert (response.status, response.body) == (200, b"got 12345678")
            # Declared too large: refused before the body, without 100 Continue.
            headers = [("Content-Length", "9"), ("Expect", "100-continue")]
            client.send(build_request("POST", "/", b"", headers))
            response = client.read_response()
            # RFC 9110's phrase on every Python (3.10-3.12's HTTPStatus has the RFC 7231 one).
            assert (response.status, response.reason) == (413, "Content Too Large")
            assert response.closes
            assert client.is_closed_by_server()
        with RawClient(thread.address) as client:
            chunked = [("Transfer-Encoding", "chunked")]
            client.send(build_request("POST", "/", b"", chunked) + b"5\r\n12345\r\n")
            client.send(b"5\r\n67890\r\n0\r\n\r\n")
            response = client.read_response()
            assert response.status == 413
            assert client.is_closed_by_server()
            assert errored.wait(10), "the chunked request got no error event"
        with RawClient(thread.address) as client:
            assert client.request("POST", "/", b"ok").body == b"got ok"
    # The request refused on its Content-Length never reached the listeners.
    assert len(errors) == 1
    assert isinstance(errors[0], vestespy.BadRequest)
    assert errors[0].status == 413
