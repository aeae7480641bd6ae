"""The WSGI adapter over real sockets, on every backend (WSGI needs a pool of workers).

Every application is wrapped in :func:`wsgiref.validate.validator`, which asserts PEP 3333 on
both sides: a server that breaks the protocol makes the application raise, and the test
sees a 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

import vestespy
from support import RawClient, Serve, ServerThread, serve
from support.client import build_request
from vestespy.wsgi import WSGIAdapter

WAIT = 10.0
Environ = dict[str, Any]
App = Callable[[Environ, Any], Iterable[bytes]]


@pytest.fixture
def workers() -> int:
    """WSGI needs a pool: ``served`` runs every test here on 4 workers."""
    return 4


@pytest.fixture
def wsgi_served(served: Serve) -> Serve:
    """``wsgi_served(app, **adapter_options)``: ``served`` with ``validator(app)``."""

    @contextlib.contextmanager
    def start(
        app: App, *, server: dict[str, Any] | None = None, **options: Any
    ) -> Iterator[ServerThread]:
        adapter = WSGIAdapter(validator(app), **options)
        with served(adapter, **(server or {})) as thread:
            yield thread

    return start


def read_all(environ: Environ, size: int = 4096) -> bytes:
    stream = environ["wsgi.input"]
    return b"".join(iter(lambda: stream.read(size), b""))


def text(start_response: Any, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# -- the environ and the request body ------------------------------------------------------


def environ_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    body = read_all(environ)
    report = {k: v for k, v in environ.items() if isinstance(v, str | bool | int)}
    report["body"] = body.decode("latin-1")
    return text(start_response, json.dumps(report).encode())


def test_environ_over_the_wire(wsgi_served: Serve) -> None:
    with (
        wsgi_served(environ_app, script_name="/app") as thread,
        RawClient(thread.address) as client,
    ):
        client.send(
            b"POST /app/caf%C3%A9?q=1 HTTP/1.1\r\nHost: example.com\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 5\r\nCookie: a=1\r\nCookie: b=2\r\n"
            b"X-Multi: 1\r\nX-Multi: 2\r\nX_Multi: spoof\r\n\r\nhello"
        )
        seen = json.loads(client.read_response().body)
        local = client.sock.getsockname()
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["SCRIPT_NAME"] == "/app"
    assert seen["PATH_INFO"].encode("latin-1") == "/café".encode()
    assert seen["QUERY_STRING"] == "q=1"
    assert (seen["CONTENT_TYPE"], seen["CONTENT_LENGTH"]) == ("text/plain", "5")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "80")
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == (local[0], str(local[1]))
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert seen["HTTP_X_MULTI"] == "1, 2"
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["wsgi.multithread"] is True
    assert "wsgi.input_terminated" not in seen  # only set without CONTENT_LENGTH
    assert seen["body"] == "hello"


def test_environ_over_tls_by_hand_wired_adapter(backend: str, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(keyfile)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    adapter = WSGIAdapter(validator(environ_app))
    with serve(
        adapter, select=backend, max_workers=4, certfile=str(certfile), keyfile=str(keyfile)
    ) as thread:
        raw = socket.create_connection(thread.address, timeout=WAIT)
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            local = sock.getsockname()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            data = b"".join(iter(lambda: sock.recv(65536), b""))
    seen = json.loads(data.partition(b"\r\n\r\n")[2])
    assert (seen["wsgi.url_scheme"], seen["HTTPS"]) == ("https", "on")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "443")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == (local[0], str(local[1]))


def test_environ_from_a_trusted_proxy_by_hand_wired_adapter(wsgi_served: Serve) -> None:
    headers = [
        ("Host", "example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-For", "198.51.100.7, 203.0.113.9"),
    ]
    trusted = {"trusted_proxies": ("127.0.0.1", "203.0.113.0/24")}
    with (
        wsgi_served(environ_app, server=trusted) as thread,
        RawClient(thread.address) as client,
    ):
        seen = json.loads(client.request("GET", "/", headers=headers).body)
    assert (seen["wsgi.url_scheme"], seen["HTTPS"]) == ("https", "on")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("198.51.100.7", "")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "443")
    # Not trusted: the fields are the client's word, and change nothing.
    with wsgi_served(environ_app) as thread, RawClient(thread.address) as client:
        seen = json.loads(client.request("GET", "/", headers=headers).body)
        local = client.sock.getsockname()
    assert (seen["wsgi.url_scheme"], seen["SERVER_PORT"]) == ("http", "80")
    assert seen["REMOTE_ADDR"] == local[0]
    assert "HTTPS" not in seen


def digest_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    """Hash the body as it streams in, in reads of a size the query gives (or lines)."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    total = 0
    if environ["QUERY_STRING"] == "lines":
        for line in stream:
            digest.update(line)
            total += len(line)
    else:
        size = int(environ["QUERY_STRING"] or 65536)
        while data := stream.read(size):
            digest.update(data)
            total += len(data)
    assert stream.read(10) == b""  # past the end: b"" again
    return text(start_response, f"{total} {digest.hexdigest()}".encode())


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("query", ["", "1000", "lines"])
def test_body_streams_in_whole(wsgi_served: Serve, chunked: bool, query: str) -> None:
    body = b"".join(b"line %d of the body\n" % i for i in range(200_000))  # ~4 MB
    with wsgi_served(digest_app) as thread, RawClient(thread.address) as client:
        if chunked:
            pieces = [body[i : i + 100_000] for i in range(0, len(body), 100_000)]
            framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            client.send(
                b"POST /?%s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                % query.encode()
                + framed
            )
            response = client.read_response()
        else:
            response = client.request("POST", f"/?{query}", body=body)
    assert response.status == 200
    assert response.body == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_a_slow_application_stops_the_server_reading(wsgi_served: Serve) -> None:
    """Backpressure: while the app does not read, the client cannot send the whole body."""
    total = 64 << 20
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        first = environ["wsgi.input"].read(1)
        assert release.wait(WAIT)
        rest = read_all(environ, 1 << 20)
        return text(start_response, str(len(first) + len(rest)).encode())

    block = b"x" * (1 << 20)
    with wsgi_served(app) as thread, RawClient(thread.address) as client:
        client.send(build_request("POST", "/", headers=[("Content-Length", str(total))]))
        client.sock.settimeout(1.0)
        sent = 0
        with contextlib.suppress(TimeoutError):
            while sent < total:
                sent += client.sock.send(block)
        # Bounded by the app's input buffer, the server's body buffer and the kernel's
        # socket buffers: far less than the body.
        assert sent < total // 2, sent
        release.set()
        client.sock.settimeout(WAIT)
        view = memoryview(block)
        while sent < total:
            sent += client.sock.send(view[: min(len(block), total - sent)])
        assert client.read_response().body == str(total).encode()


def test_client_leaving_mid_body_raises_in_the_app(wsgi_served: Serve) -> None:
    outcome: list[BaseException] = []
    done = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        try:
            read_all(environ)
        except BaseException as exc:
            outcome.append(exc)
            done.set()
            raise
        return text(start_response, b"unexpected")

    with wsgi_served(app) as thread:
        with RawClient(thread.address) as client:
            client.send(build_request("POST", "/", headers=[("Content-Length", "1000000")]))
            client.send(b"x" * 100_000)
        assert done.wait(WAIT)
    assert isinstance(outcome[0], vestespy.ClientDisconnected)


# -- 100-continue --------------------------------------------------------------------------


def continue_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/read":
        return text(start_response, read_all(environ))
    return text(start_response, b"not read", "403 Forbidden")


@pytest.mark.parametrize("size", [5, 1 << 20])
def test_100_continue_only_once_the_app_reads(wsgi_served: Serve, size: int) -> None:
    body = b"y" * size
    head = "POST {} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n"
    with wsgi_served(continue_app) as thread, RawClient(thread.address) as client:
        client.send(head.format("/read", size).encode())
        interim = client.read_head()
        assert interim.status == 100
        client.send(body)
        assert client.read_response().body == body
        # An app that answers without reading: no 100, straight to the final response.
        client.send(head.format("/ignore", size).encode())
        final = client.read_head()
        assert final.status == 403
        client.read_body(final)
        assert final.body == b"not read"


# -- the response --------------------------------------------------------------------------


def response_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    plain = [("Content-Type", "text/plain")]
    if path == "/chunked":
        start_response("200 OK", plain)
        return (b"%d," % i for i in range(1000))
    if path == "/length":
        start_response("200 OK", [*plain, ("Content-Length", "6")])
        return iter([b"ab", b"", b"cd", b"ef"])
    if path == "/short":
        start_response("200 OK", [*plain, ("Content-Length", "10")])
        return iter([b"ab", b"cd"])
    if path == "/over":
        start_response("200 OK", [*plain, ("Content-Length", "3")])
        return iter([b"ab", b"cd"])
    if path == "/write":
        write = start_response("200 OK", plain)
        write(b"written,")
        write(b"")
        return [b"returned"]
    if path == "/write-big":
        write = start_response("200 OK", [*plain, ("Content-Length", str(8 << 20))])
        for _ in range(8):
            write(b"w" * (1 << 20))
        return []
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/head":
        start_response("200 OK", [*plain, ("Content-Length", "1234")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"x" * 1234]
    raise AssertionError(path)


def test_streamed_body_without_length_is_chunked_on_1_1(wsgi_served: Serve) -> None:
    expected = b"".join(b"%d," % i for i in range(1000))
    with wsgi_served(response_app) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/chunked")
        assert response.chunked
        assert response.body == expected
        response = client.request("GET", "/chunked", version="1.0")
        assert response.header("Transfer-Encoding") is None
        assert response.header("Content-Length") is None
        assert response.body == expected  # delimited by the close
        assert client.is_closed_by_server()


def test_content_length_from_the_app_is_kept_and_checked(wsgi_served: Serve) -> None:
    with wsgi_served(response_app) as thread:
        with RawClient(thread.address) as client:
            response = client.request("GET", "/length")
            assert (response.header("Content-Length"), response.body) == ("6", b"abcdef")
            assert not response.chunked
        for path in ("/short", "/over"):
            with RawClient(thread.address) as client:
                client.send(build_request("GET", path))
                data = client.read_until_close()
                # Never a complete message that lies: the connection closes mid-body.
                if data:
                    head, _, body = data.partition(b"\r\n\r\n")
                    assert b"Content-Length: " in head
                    assert len(body) < (10 if path == "/short" else 3), data


def test_write_callable(wsgi_served: Serve) -> None:
    with wsgi_served(response_app) as thread, RawClient(thread.address) as client:
        assert client.request("GET", "/write").body == b"written,returned"
        response = client.request("GET", "/write-big")
        assert response.body == b"w" * (8 << 20)
        assert client.request("HEAD", "/write-big").body == b""
        assert client.request("GET", "/write").body == b"written,returned"


def test_head_and_204(wsgi_served: Serve) -> None:
    with wsgi_served(response_app) as thread, RawClient(thread.address) as client:
        response = client.request("HEAD", "/head")
        assert (response.header("Content-Length"), response.body) == ("1234", b"")
        response = client.request("GET", "/head")
        assert response.body == b"x" * 1234
        response = client.request("GET", "/empty")
        assert response.status == 204
        assert response.header("Content-Length") is None
        # Still in step: the connection serves the next request.
        assert client.request("GET", "/length").body == b"abcdef"


def head_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    """A streamed route that answers HEAD with an empty iterable, as Werkzeug does."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return iter([b"hello ", b"world!"])


def test_head_of_a_streamed_response_has_the_head_get_would(wsgi_served: Serve) -> None:
    with wsgi_served(head_app) as thread, RawClient(thread.address) as client:
        get = client.request("GET", "/")
        assert get.chunked
        assert get.body == b"hello world!"
        head = client.request("HEAD", "/")
        # Not "Content-Length: 0" (RFC 9110 9.3.2, 8.6): the length is unknown, as for GET.
        assert head.header("Content-Length") is None
        assert head.header("Transfer-Encoding") == "chunked"
        assert head.body == b""
        assert client.request("GET", "/").body == b"hello world!"  # still in step
        head = client.request("HEAD", "/", version="1.0")
        assert head.header("Content-Length") is None
        assert head.header("Transfer-Encoding") is None


def framing_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    plain = [("Content-Type", "text/plain")]
    if environ["PATH_INFO"] == "/chunked-by-the-app":
        start_response("200 OK", [*plain, ("Transfer-Encoding", "chunked")])
        return [b"3\r\nabc\r\n0\r\n\r\n"]
    lengths = {
        "/two-lengths": ["86", "1"],
        "/not-a-number": ["12abc"],
        "/negative": ["-1"],
        "/plus": ["+3"],
        "/same-twice": ["3", "3"],
    }[environ["PATH_INFO"]]
    start_response("200 OK", plain + [("Content-Length", value) for value in lengths])
    return [b"abc"]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/two-lengths", "conflicting Content-Length values from the application: '86' and '1'"),
        ("/not-a-number", "invalid Content-Length from the application: '12abc'"),
        ("/negative", "invalid Content-Length from the application: '-1'"),
        ("/plus", "invalid Content-Length from the application: '+3'"),
        ("/chunked-by-the-app", "'Transfer-Encoding' is a hop-by-hop header, set by the server"),
    ],
)
def test_invalid_framing_from_the_app_gets_a_500_and_one_log_line(
    wsgi_served: Serve, caplog: pytest.LogCaptureFixture, path: str, named: str
) -> None:
    caplog.set_level(logging.INFO, logger="vestespy")
    with wsgi_served(framing_app) as thread, RawClient(thread.address) as client:
        response = client.request("GET", path)
        assert response.status == 500
        assert response.body == b"500 Internal Server Error\n"
    lines = [r for r in caplog.records if r.name.startswith("vestespy") and path in r.getMessage()]
    assert [r.getMessage() for r in lines] == [f"GET {path}: {named}"]
    assert lines[0].exc_info is None  # one line, no traceback
    assert lines[0].levelno == logging.ERROR


def test_the_same_content_length_twice_is_one(wsgi_served: Serve) -> None:
    with wsgi_served(framing_app) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/same-twice")
        assert (response.status, response.body) == (200, b"abc")
        assert response.header_all("Content-Length") == ["3"]


def test_pipelined_requests_with_bodies(wsgi_served: Serve) -> None:
    big = os.urandom(300_000)
    requests = [
        build_request("POST", "/?lines", body=b"a\nb\n"),
        build_request("GET", "/?"),
        build_request("POST", "/", body=big),
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        build_request("POST", "/", body=b"z" * 10),
    ]
    bodies = [b"a\nb\n", b"", big, b"abc", b"z" * 10]
    with wsgi_served(digest_app) as thread, RawClient(thread.address) as client:
        client.send(b"".join(requests))
        for body in bodies:
            response = client.read_response()
            assert response.body == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def file_app(open_file: Callable[[], Any], headers: list[tuple[str, str]]) -> App:
    """Send a new file object each time (the wrapper closes it), from its position 100."""

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        file = open_file()
        file.seek(100)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), *headers])
        result: Iterable[bytes] = environ["wsgi.file_wrapper"](file, 4096)
        return result

    return app


def test_file_wrapper_sends_a_file_with_sendfile_and_closes_it(
    wsgi_served: Serve, sendfile_calls: list[int]
) -> None:
    content = os.urandom(3 << 20)
    with tempfile.TemporaryFile() as file:
        file.write(content)
        with wsgi_served(file_app(lambda: file, [])) as thread, RawClient(thread.address) as client:
            response = client.request("GET", "/")
        assert file.closed  # the wrapper's close() closed it
    assert response.header("Content-Length") == str(len(content) - 100)
    assert response.body == content[100:]
    assert sum(sendfile_calls) == len(content) - 100  # kernel to kernel, validator or not


def test_file_wrapper_sends_no_more_than_the_application_content_length(
    wsgi_served: Serve, sendfile_calls: list[int], tmp_path: Path
) -> None:
    content = os.urandom(1 << 20)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    app = file_app(lambda: path.open("rb"), [("Content-Length", "5000")])
    with wsgi_served(app) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/")
        assert client.request("HEAD", "/").header("Content-Length") == "5000"
        assert client.request("GET", "/").body == content[100:5100]  # still in step
    assert response.body == content[100:5100]
    assert sum(sendfile_calls) == 2 * 5000


def test_file_wrapper_with_a_content_length_past_the_file_gets_a_500(
    wsgi_served: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    with tempfile.TemporaryFile() as file:
        file.write(b"x" * 1000)
        app = file_app(lambda: file, [("Content-Length", "5000")])  # 900 bytes from 100
        with wsgi_served(app) as thread, RawClient(thread.address) as client:
            response = client.request("GET", "/")
    assert response.status == 500
    assert response.closes
    assert "holds 900 bytes from its position, not 5000" in caplog.text


def test_file_wrapper_around_a_reader_without_a_file_is_iterated(
    wsgi_served: Serve, sendfile_calls: list[int]
) -> None:
    content = os.urandom(200_000)
    with (
        wsgi_served(file_app(lambda: io.BytesIO(content), [])) as thread,
        RawClient(thread.address) as client,
    ):
        response = client.request("GET", "/")
    assert response.chunked
    assert response.body == content[100:]
    assert sendfile_calls == []


# -- errors and close() --------------------------------------------------------------------


class Tracked:
    """An iterable response that records its close()."""

    def __init__(self, pieces: Iterable[bytes], closed: threading.Event) -> None:
        self.pieces = iter(pieces)
        self.closed = closed

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.pieces)

    def close(self) -> None:
        self.closed.set()


def test_close_is_called_when_the_client_goes_away(wsgi_served: Serve) -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        while True:
            yield b"z" * 65536

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Tracked(endless(), closed)

    with wsgi_served(app) as thread:
        with RawClient(thread.address) as client:
            client.send(build_request("GET", "/"))
            assert client.read_head().status == 200
        assert closed.wait(WAIT)


def failing_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise ValueError("boom before the response")
    if path == "/late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def pieces() -> Iterator[bytes]:
            yield b"first piece"
            raise ValueError("boom mid-body")

        return pieces()
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def recovering() -> Iterator[bytes]:
            try:
                raise KeyError("inside")
            except KeyError:
                import sys

                start_response(
                    "503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info()
                )
            yield b"error page"

        return recovering()
    if path == "/write-then-raise":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        raise ValueError("boom after write()")
    if path == "/errors":
        environ["wsgi.errors"].write("logged by the app\n")
        return text(start_response, b"ok")
    raise AssertionError(path)


def test_errors(wsgi_served: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vestespy")
    with wsgi_served(failing_app) as thread:
        with RawClient(thread.address) as client:
            response = client.request("GET", "/raise")
            assert response.status == 500
            assert response.closes
        with RawClient(thread.address) as client:
            client.send(build_request("GET", "/late"))
            head = client.read_head()
            assert head.status == 200
            with pytest.raises(ConnectionError):
                client.read_body(head)  # cut short: the chunked body never ends
        with RawClient(thread.address) as client:
            client.send(build_request("GET", "/write-then-raise"))
            head = client.read_head()
            assert head.status == 200
            with pytest.raises(ConnectionError):
                client.read_body(head)  # cut short after "partial"
        with RawClient(thread.address) as client:
            response = client.request("GET", "/exc-info")
            assert (response.status, response.body) == (503, b"error page")
            assert client.request("GET", "/errors").body == b"ok"
        # The server goes on.
        with RawClient(thread.address) as client:
            assert client.request("GET", "/errors").body == b"ok"
    messages = [r.getMessage() for r in caplog.records]
    assert any("/raise" in m for m in messages)
    assert any("/late" in m for m in messages)
    assert any("/write-then-raise" in m for m in messages)
    assert messages.count("logged by the app") == 2


def exc_info_app(environ: Environ, start_response: Any) -> Iterable[bytes]:
    """Calls start_response with an exc_info of each shape, before anything is sent."""
    path = environ["PATH_INFO"]
    plain = [("Content-Type", "text/plain")]
    if path == "/never-raised":
        # An exception built but never raised has no traceback: (type, error, None).
        start_response("200 OK", plain)
        error = ValueError("never raised")
        start_response("503 Service Unavailable", plain, (ValueError, error, None))
        return [b"replaced"]
    if path == "/nothing-caught":
        start_response("200 OK", plain, (None, None, None))  # sys.exc_info() outside except
        return [b"ok"]
    if path == "/not-a-triple":
        start_response("200 OK", plain, ["not", "a triple"])
        return [b"unreachable"]
    raise AssertionError(path)


def test_exc_info_is_taken_as_sys_exc_info_gives_it_and_any_other_shape_is_refused(
    served: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # Not validator-wrapped: the validator refuses a None traceback before the server sees it.
    caplog.set_level(logging.ERROR, logger="vestespy")
    with served(WSGIAdapter(exc_info_app)) as thread, RawClient(thread.address) as client:
        response = client.request("GET", "/never-raised")
        assert (response.status, response.body) == (503, b"replaced")
        response = client.request("GET", "/nothing-caught")
        assert (response.status, response.body) == (200, b"ok")
        assert client.request("GET", "/not-a-triple").status == 500
    assert any(
        "exc_info must be sys.exc_info()" in r.getMessage() + str(r.exc_info)
        for r in caplog.records
    )


def test_a_str_body_is_an_application_error(served: Serve) -> None:
    # Not validator-wrapped: validator() would catch the slip first, which is the point.
    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return "not bytes"  # type: ignore[return-value]

    with (
        served(WSGIAdapter(app)) as thread,
        RawClient(thread.address) as client,
    ):
        assert client.request("GET", "/").status == 500


def test_inline_server_is_refused_clearly(served: Serve, caplog: pytest.LogCaptureFixture) -> None:
    adapter = WSGIAdapter(validator(environ_app))
    with (
        served(adapter, max_workers=0) as thread,
        RawClient(thread.address) as client,
    ):
        assert client.request("GET", "/").status == 500
    assert any(
        "max_workers >= 1" in r.getMessage() or "max_workers >= 1" in str(r.exc_info)
        for r in caplog.records
    )
    with pytest.raises(ValueError, match="max_workers"):
        vestespy.serve(environ_app, port=0, max_workers=0)


def test_large_response_streams_to_a_slow_reader(wsgi_served: Serve) -> None:
    produced = []
    ran_ahead = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])

        def pieces() -> Iterator[bytes]:
            for i in range(512):
                produced.append(i)
                if i == 256:
                    ran_ahead.set()  # 16 MiB ahead of a client that reads nothing
                yield b"%08d" % i * 8192  # 64 KiB each, 32 MiB in all

        return pieces()

    with wsgi_served(app) as thread, RawClient(thread.address) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.send(build_request("GET", "/"))
        head = client.read_head()
        assert head.status == 200
        # The app runs ahead of the client by the server's write buffer (256 KiB) and the
        # kernel's socket buffers (a send buffer of at most 4 MiB here), not by the body.
        assert not ran_ahead.wait(0.5), len(produced)
        client.read_body(head)
        assert len(head.body) == 512 * 65536
