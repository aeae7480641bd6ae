"""wsgi.input, wsgi.errors and the environ, without sockets."""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

import pytest

import vestespy
from vestespy._pool import WorkerPool
from vestespy.proxies import TrustedProxies, resolve
from vestespy.wsgi import FileWrapper, WSGIAdapter
from vestespy.wsgi._input import EMPTY_INPUT, ErrorStream, InputStream
from vestespy.wsgi._response import Call, HeaderError

WAIT = 10.0


def fed(*pieces: bytes, limit: int = 1 << 20) -> InputStream:
    stream = InputStream(limit)
    for piece in pieces:
        stream.feed(piece)
    stream.on_end(None, None, None)
    return stream


def test_read_sizes_cross_chunk_boundaries() -> None:
    stream = fed(b"abc", b"defg", b"h")
    assert stream.read(2) == b"ab"
    assert stream.read(3) == b"cde"
    assert stream.read(0) == b""
    assert stream.read(10) == b"fgh"
    assert stream.read(10) == b""
    assert stream.read() == b""


def test_read_all_and_none() -> None:
    assert fed(b"ab", b"cd").read() == b"abcd"
    assert fed(b"ab", b"cd").read(None) == b"abcd"
    assert fed().read() == b""


def test_readline_limits_and_iteration() -> None:
    stream = fed(b"one\ntw", b"o\nthr", b"ee")
    assert stream.readline() == b"one\n"
    assert stream.readline(2) == b"tw"
    assert stream.readline() == b"o\n"
    assert list(stream) == [b"three"]
    assert stream.readline() == b""
    assert fed(b"a\nb\nc\n").readlines() == [b"a\n", b"b\n", b"c\n"]
    assert fed(b"a\nb\nc\n").readlines(3) == [b"a\n", b"b\n"]


def test_read_blocks_until_data_then_end() -> None:
    stream = InputStream(1024)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(stream.read(6)))
    reader.start()
    stream.feed(b"abc")
    stream.feed(b"def")
    reader.join(WAIT)
    assert got == [b"abcdef"]
    reader = threading.Thread(target=lambda: got.append(stream.read(6)))
    reader.start()
    stream.feed(b"g")
    stream.on_end(None, None, None)
    reader.join(WAIT)
    assert got[1] == b"g"


def test_error_is_raised_once_the_buffer_is_read() -> None:
    stream = InputStream(1024)
    stream.feed(b"abc")
    stream.on_error(None, None, None, vestespy.ClientDisconnected("gone"))
    assert stream.read(3) == b"abc"
    with pytest.raises(vestespy.ClientDisconnected):
        stream.read(1)


def test_feed_waits_while_full_and_close_releases_it() -> None:
    stream = InputStream(4)
    stream.feed(b"abcd")
    done = threading.Event()

    def produce() -> None:
        stream.feed(b"efgh")
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    # The buffer holds its limit: the producer must wait until the reader takes some.
    assert not done.wait(0.2)
    assert stream.read(1) == b"a"
    assert done.wait(WAIT)
    producer.join(WAIT)
    assert stream.read(7) == b"bcdefgh"
    # Once the application is done, the producer discards rather than waits.
    stream.feed(b"1234")
    stream.close()
    stream.feed(b"5678")
    assert stream.read(4) == b""


def test_first_read_hook_runs_once_before_waiting() -> None:
    calls: list[int] = []
    stream = InputStream(16, lambda: calls.append(1))
    stream.feed(b"x")
    assert calls == []
    stream.read(1)
    stream.on_end(None, None, None)
    stream.read(1)
    assert calls == [1]


def test_error_stream_logs_whole_lines(caplog: pytest.LogCaptureFixture) -> None:
    errors = ErrorStream(logging.getLogger("vestespy.wsgi"))
    with caplog.at_level(logging.ERROR, logger="vestespy.wsgi"):
        errors.write("first li")
        errors.writelines(["ne\nsecond\n", "partial"])
        assert [r.getMessage() for r in caplog.records] == ["first line", "second"]
        errors.flush()
    assert [r.getMessage() for r in caplog.records] == ["first line", "second", "partial"]
    with pytest.raises(TypeError):
        errors.write(b"bytes")  # type: ignore[arg-type]


def test_error_stream_keeps_a_partial_line_per_thread(caplog: pytest.LogCaptureFixture) -> None:
    # One stream serves every request of an adapter: a partial line written on one thread is
    # not completed by another's, and each thread's flush logs only its own.
    errors = ErrorStream(logging.getLogger("vestespy.wsgi"))
    with caplog.at_level(logging.ERROR, logger="vestespy.wsgi"):
        assert errors.partial == 0
        errors.write("main ")
        assert errors.partial == 1  # the adapter flushes only while a thread has one

        def other() -> None:
            errors.write("other ")
            errors.write("line\n")
            errors.write("other tail")
            assert errors.partial == 2
            errors.flush()
            assert errors.partial == 1

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(WAIT)
        errors.write("line\n")
        assert errors.partial == 0
        errors.flush()  # nothing pending on this thread: no empty record
    assert [r.getMessage() for r in caplog.records] == ["other line", "other tail", "main line"]


def test_the_empty_input_reads_nothing_and_survives_close() -> None:
    assert EMPTY_INPUT.read() == b""
    assert EMPTY_INPUT.read(10) == b""
    assert EMPTY_INPUT.readline() == b""
    assert EMPTY_INPUT.readlines() == []
    assert list(EMPTY_INPUT) == []
    EMPTY_INPUT.close()  # shared: an application closing it harms no other request
    assert EMPTY_INPUT.read() == b""


def test_app_threads_run_every_task_at_once_uncapped() -> None:
    # Each application may wait for its own body: none may wait for a free thread.
    threads = WSGIAdapter(lambda environ, start_response: [])._threads
    barrier = threading.Barrier(6, timeout=WAIT)
    done = threading.Semaphore(0)

    def task() -> None:
        barrier.wait()
        done.release()

    for _ in range(5):
        threads.submit(task)
    barrier.wait()
    for _ in range(5):
        assert done.acquire(timeout=WAIT)


def test_file_wrapper_length_and_blocks() -> None:
    import io
    import tempfile

    with tempfile.TemporaryFile() as file:
        file.write(b"x" * 200_000)
        file.seek(1000)
        wrapper = FileWrapper(file, 10)
        assert wrapper.length() == 199_000
        assert [len(block) for block in wrapper] == [65536, 65536, 65536, 2392]
        wrapper.close()
        assert file.closed
    assert FileWrapper(io.BytesIO(b"abc")).length() is None  # not a real file


class FakeServer:
    address = ("127.0.0.1", 8080)
    max_workers = 4
    debug = False


def make_request(target: str, headers: list[tuple[str, str]], version: str = "1.1") -> Any:
    return vestespy.Request(
        method="GET",
        target=target,
        http_version=version,
        headers=vestespy.Headers(headers),
        client_address=("10.0.0.7", 5555),
    )


def environ(
    adapter: WSGIAdapter, target: str, headers: list[tuple[str, str]], version: str = "1.1"
) -> Any:
    request = make_request(target, headers, version)
    return adapter.environ(FakeServer(), request, None)  # type: ignore[arg-type]


def test_environ_paths_are_latin1_bytes_and_script_name_is_split() -> None:
    env = environ(WSGIAdapter(lambda e, s: []), "/caf%C3%A9/a%2Fb?x=%20", [("Host", "h")])
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/a/b"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a/b"
    assert env["QUERY_STRING"] == "x=%20"
    assert env["RAW_URI"] == "/caf%C3%A9/a%2Fb?x=%20"
    assert env["SCRIPT_NAME"] == ""
    mounted = WSGIAdapter(lambda e, s: [], script_name="/app/")
    env = environ(mounted, "/app/x", [("Host", "h")])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/x")
    env = environ(mounted, "/app", [("Host", "h")])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "")
    # Not under the prefix (a proxy already stripped it): the path stays whole.
    env = environ(mounted, "/application", [("Host", "h")])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/application")
    with pytest.raises(ValueError, match="start with"):
        WSGIAdapter(lambda e, s: [], script_name="app")


def test_environ_headers() -> None:
    env = environ(
        WSGIAdapter(lambda e, s: []),
        "/",
        [
            ("Host", "example.com:8443"),
            ("Content-Type", "text/plain"),
            ("Content-Length", "3"),
            ("Accept", "a"),
            ("accept", "b"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X_Forwarded_For", "spoofed"),
            ("X-Forwarded-For", "1.2.3.4"),
        ],
    )
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_ACCEPT"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"  # the underscore twin was dropped
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "8443")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("10.0.0.7", "5555")
    assert env["wsgi.url_scheme"] == "http"  # the client is not a trusted proxy
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert "wsgi.input_terminated" not in env  # CONTENT_LENGTH says where it ends
    chunked = environ(WSGIAdapter(lambda e, s: []), "/", [("Transfer-Encoding", "chunked")])
    assert chunked["wsgi.input_terminated"] is True


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, ("127.0.0.1", "8080")),
        ("example.com", ("example.com", "80")),
        ("[::1]:81", ("::1", "81")),
        ("[::1]", ("::1", "80")),
    ],
)
def test_environ_server_name_and_port(host: str | None, expected: tuple[str, str]) -> None:
    headers = [("Host", host)] if host is not None else []
    env = environ(WSGIAdapter(lambda e, s: []), "/", headers)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == expected


def resolved_request(
    headers: list[tuple[str, str]],
    *,
    tls: bool = False,
    trusted: str = "",
    peer: Any = ("10.0.0.7", 5555),
) -> Any:
    """A request as the server hands it to listeners: what the connection does in
    ``_on_request_started`` (the scheme of a TLS socket, then what trusted proxies say)."""
    request = vestespy.Request(
        method="GET",
        target="/",
        http_version="1.1",
        headers=vestespy.Headers(headers),
        client_address=peer,
    )
    if tls:
        request.scheme = "https"
    if trusted:
        forwarded = resolve(peer, request.headers, TrustedProxies.parse(trusted))
        if forwarded is not None:
            request._set_forwarded(forwarded.client, forwarded.scheme, forwarded.host)
    return request


def resolved_environ(adapter: WSGIAdapter, request: Any) -> Any:
    return adapter.environ(FakeServer(), request, None)  # type: ignore[arg-type]


def test_environ_plain_http() -> None:
    env = resolved_environ(WSGIAdapter(lambda e, s: []), resolved_request([("Host", "h")]))
    assert env["wsgi.url_scheme"] == "http"
    assert "HTTPS" not in env
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("h", "80")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("10.0.0.7", "5555")
    assert env["SERVER_SOFTWARE"] == f"VestesPy/{vestespy.__version__}"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", ("example.com", "443")),
        ("example.com:8443", ("example.com", "8443")),
        ("[::1]", ("::1", "443")),
        ("[::1]:9443", ("::1", "9443")),
    ],
)
def test_environ_direct_tls(host: str, expected: tuple[str, str]) -> None:
    env = resolved_environ(
        WSGIAdapter(lambda e, s: []), resolved_request([("Host", host)], tls=True)
    )
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == expected
    assert env["HTTP_HOST"] == host
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("10.0.0.7", "5555")


def test_environ_behind_a_trusted_proxy() -> None:
    headers = [
        ("Host", "shop.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-For", "9.9.9.9, 10.0.0.1"),
    ]
    adapter = WSGIAdapter(lambda e, s: [])
    env = resolved_environ(adapter, resolved_request(headers, trusted="10.0.0.0/8"))
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("9.9.9.9", "")  # no port reported
    # No port in Host: the default port of the scheme the proxy reported.
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("shop.example", "443")
    assert env["HTTP_X_FORWARDED_FOR"] == "9.9.9.9, 10.0.0.1"  # the fields stay readable
    # The same fields from a peer that is not trusted change nothing.
    env = resolved_environ(adapter, resolved_request(headers, trusted="10.0.0.8"))
    assert (env["wsgi.url_scheme"], env["REMOTE_ADDR"]) == ("http", "10.0.0.7")
    assert env["SERVER_PORT"] == "80"
    # Nor without trusted proxies at all: the adapter reads no forwarding field itself.
    env = resolved_environ(adapter, resolved_request(headers))
    assert (env["wsgi.url_scheme"], env["REMOTE_ADDR"]) == ("http", "10.0.0.7")


def test_environ_from_rfc7239_forwarded_and_forwarded_host() -> None:
    headers = [
        ("Host", "backend:8000"),
        ("Forwarded", 'for="[2001:db8::7]:4711";proto=https;host=www.example:8443'),
    ]
    env = resolved_environ(
        WSGIAdapter(lambda e, s: []), resolved_request(headers, trusted="10.0.0.7")
    )
    assert env["wsgi.url_scheme"] == "https"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("2001:db8::7", "4711")
    # The host the client asked for, in HTTP_HOST too: frameworks build URLs from it.
    assert env["HTTP_HOST"] == "www.example:8443"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("www.example", "8443")


def test_environ_proxy_saying_http_over_a_tls_socket() -> None:
    # A proxy that reaches the server over TLS for a client that used plain HTTP.
    headers = [("Host", "h"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-For", "9.9.9.9")]
    env = resolved_environ(
        WSGIAdapter(lambda e, s: []), resolved_request(headers, tls=True, trusted="10.0.0.7")
    )
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"], env["REMOTE_ADDR"]) == (
        "http",
        "80",
        "9.9.9.9",
    )


def test_environ_url_scheme_and_multiprocess_options() -> None:
    request = resolved_request([("Host", "h")])
    forced = WSGIAdapter(lambda e, s: [], url_scheme="https", multiprocess=True)
    env = resolved_environ(forced, request)
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"]) == ("https", "443")
    assert env["wsgi.multiprocess"] is True
    assert resolved_environ(WSGIAdapter(lambda e, s: []), request)["wsgi.multiprocess"] is False
    with pytest.raises(ValueError, match="url_scheme"):
        WSGIAdapter(lambda e, s: [], url_scheme="ftp")


def test_environ_over_a_unix_socket() -> None:
    env = resolved_environ(WSGIAdapter(lambda e, s: []), resolved_request([("Host", "h")], peer=""))
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("", "")


def test_environ_repeated_fields_and_the_shared_part_stays_shared() -> None:
    adapter = WSGIAdapter(lambda e, s: [])
    env = environ(
        adapter,
        "/",
        [
            ("Host", "h"),
            ("Content-Type", "text/a"),
            ("content-type", "text/b"),  # CONTENT_* are not joined: the last one wins
            ("X-Odd", "1"),
            ("x-ODD", "2"),
            ("Cookie", "a=1"),
        ],
    )
    assert env["CONTENT_TYPE"] == "text/b"
    assert env["HTTP_X_ODD"] == "1, 2"
    assert env["HTTP_COOKIE"] == "a=1"
    assert env["wsgi.input"] is None
    # A request's values never reach the next request's environ.
    env["wsgi.errors"].flush()
    env["HTTP_LEFTOVER"] = "x"
    later = environ(adapter, "/b?q", [])
    assert not {"HTTP_LEFTOVER", "CONTENT_TYPE", "HTTP_X_ODD", "HTTP_HOST"} & later.keys()
    assert (later["PATH_INFO"], later["QUERY_STRING"]) == ("/b", "q")
    assert later["wsgi.errors"] is env["wsgi.errors"]
    assert environ(adapter, "/", [], version="1.0")["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_environ_follows_options_set_after_construction() -> None:
    adapter = WSGIAdapter(lambda e, s: [])
    adapter.script_name = "/app/"
    adapter.url_scheme = "https"
    adapter.multiprocess = True
    env = environ(adapter, "/app/x", [("Host", "h")])
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/x")
    assert (env["wsgi.url_scheme"], env["HTTPS"], env["SERVER_PORT"]) == ("https", "on", "443")
    assert env["wsgi.multiprocess"] is True
    assert (adapter.script_name, adapter.url_scheme, adapter.multiprocess) == (
        "/app",
        "https",
        True,
    )
    with pytest.raises(ValueError, match="url_scheme"):
        adapter.url_scheme = "ftp"
    with pytest.raises(ValueError, match="start with"):
        adapter.script_name = "app"


def new_call() -> Call:
    # Real arguments of the declared types (the compiled Call checks them); start_response
    # uses none of them. The pool starts no thread until a task is submitted.
    request = vestespy.Request(
        method="GET", target="/", http_version="1.1", headers=vestespy.Headers(), client_address=""
    )
    response = vestespy.Response(None)  # type: ignore[arg-type]  # no channel: nothing is sent
    return Call(lambda e, s: [], WorkerPool(None), False, request, response)


@pytest.mark.parametrize("repeat", [1, 2])  # the second time, from the caches
def test_start_response_checks_the_same_from_its_caches(repeat: int) -> None:
    for _ in range(repeat):
        call = new_call()
        call.start_response("404 Not Here", [("content-LENGTH", "3"), ("X-A", "b")])
        assert (call.status, call.reason, call.length) == (404, "Not Here", "3")
        with pytest.raises(HeaderError, match="'Transfer-Encoding' is a hop-by-hop header"):
            new_call().start_response("200 OK", [("Transfer-Encoding", "chunked")])
        with pytest.raises(HeaderError, match="invalid Content-Length"):
            new_call().start_response("200 OK", [("Content-Length", "x")])
        with pytest.raises(ValueError, match="3-digit code"):
            new_call().start_response("2000 OK", [])
        with pytest.raises(TypeError, match="status must be a str"):
            new_call().start_response(b"200 OK", [])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be str"):
            new_call().start_response("200 OK", [("X-A", 1)])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="tuple"):
            new_call().start_response("200 OK", [["X-A", "1"]])  # type: ignore[list-item]


def test_the_public_classes_can_be_subclassed() -> None:
    """Also compiled by mypyc (allow_interpreted_subclasses): an application may extend them."""

    class Mounted(WSGIAdapter):
        def environ(self, server: Any, req: Any, stream: Any) -> dict[str, Any]:
            environ = super().environ(server, req, stream)
            environ["app.mounted"] = True
            return environ

    class Wrapper(FileWrapper):
        pass

    environ = Mounted(lambda e, s: []).environ(FakeServer(), make_request("/x", []), EMPTY_INPUT)
    assert (environ["PATH_INFO"], environ["app.mounted"]) == ("/x", True)
    assert list(Wrapper(io.BytesIO(b"ab"))) == [b"ab"]
