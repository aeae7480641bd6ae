"""Responses over real sockets: send_all, send_stream, send_chunked and their errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import vestespy
from support import RawClient, Serve


def test_send_all_str_is_utf8_with_content_length(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.status = 201
        res.set_header("Content-Type", "text/plain; charset=utf-8")
        res.set_header("X-Multi", "a")
        res.headers.add("X-Multi", "b")
        res.send_all("héllo")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        response = client.request()
    assert response.status == 201
    assert response.reason == "Created"
    assert response.body == "héllo".encode()
    assert response.header("Content-Length") == "6"
    assert response.header_all("X-Multi") == ["a", "b"]
    assert response.header("Date") is not None
    assert response.header("Server") == "vestespy"


def test_send_stream_and_chunked(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/stream":
            res.send_stream(iter(["ab", b"", bytearray(b"cd"), memoryview(b"ef")]), 6)
        else:
            res.send_chunked(f"{n}," for n in range(5))

    with served(onrequest) as thread, RawClient(thread.address) as client:
        stream = client.request("GET", "/stream")
        assert (stream.body, stream.header("Content-Length")) == (b"abcdef", "6")
        chunked = client.request("GET", "/chunked")
        assert chunked.chunked
        assert chunked.body == b"0,1,2,3,4,"
        old = client.request("GET", "/chunked", version="1.0")
        assert not old.chunked
        assert old.closes
        assert old.body == b"0,1,2,3,4,"


def test_large_stream_is_delivered_intact(served: Serve) -> None:
    size = 8 * 1024 * 1024
    piece = bytes(range(256)) * 256  # 64 KiB

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_stream((piece for _ in range(size // len(piece))), size)

    with served(onrequest) as thread, RawClient(thread.address) as client:
        response = client.request()
        assert len(response.body) == size
        assert response.body == piece * (size // len(piece))
        assert client.request().status == 200  # still keep-alive


@pytest.mark.parametrize(("pieces", "length"), [([b"abc"], 5), ([b"abc", b"def"], 4)])
def test_stream_of_the_wrong_length_closes_and_raises(
    served: Serve, pieces: list[bytes], length: int
) -> None:
    raised: list[BaseException] = []
    done = threading.Event()

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        def produce() -> Iterator[bytes]:
            yield from pieces

        try:
            res.send_stream(produce(), length)
        except vestespy.StreamLengthError as exc:
            raised.append(exc)
        finally:
            done.set()

    with served(onrequest, max_workers=4) as thread, RawClient(thread.address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = client.read_until_close()
        assert done.wait(5)
    assert isinstance(raised[0], vestespy.StreamLengthError)
    head, _, body = data.partition(b"\r\n\r\n")
    assert f"Content-Length: {length}".encode() in head
    assert len(body) < length or len(body) <= length  # never more than declared
    assert len(body) != length  # and never a complete-looking message


@pytest.mark.parametrize("workers", [0], ids=["inline"])
def test_stream_of_the_wrong_length_on_the_loop_thread_closes(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_stream(iter([b"abc"]), 10)

    with served(onrequest) as thread:
        with RawClient(thread.address) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            data = client.read_until_close()
        assert data.endswith(b"\r\n\r\nabc")
        with RawClient(thread.address) as client:  # still serving
            client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert client.read_until_close().endswith(b"abc")


def test_programming_errors_raise_clearly(served: Serve) -> None:
    errors: list[BaseException] = []

    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        for attempt in (
            lambda: res.set_header("Bad Name", "x"),
            lambda: res.set_header("X", "a\r\nInjected: yes"),
            lambda: res.send_stream([], -1),
        ):
            try:
                attempt()
            except ValueError as exc:
                errors.append(exc)
        res.status = 99
        try:
            res.send_all("an interim status cannot be final")
        except ValueError as exc:
            errors.append(exc)
        res.status = 200
        res.send_all("first")
        try:
            res.send_all("second")
        except vestespy.ResponseAlreadyStarted as exc:
            errors.append(exc)
        try:
            res.set_header("X-Late", "1")
        except vestespy.ResponseAlreadyStarted as exc:
            errors.append(exc)

    with served(onrequest) as thread, RawClient(thread.address) as client:
        response = client.request()
        assert response.body == b"first"
        assert response.header("Injected") is None
        assert client.request().body == b"first"
    assert [type(e).__name__ for e in errors] == [
        "ValueError",
        "ValueError",
        "ValueError",
        "ValueError",
        "ResponseAlreadyStarted",
        "ResponseAlreadyStarted",
    ] * 2


def test_informational_response_before_final(served: Serve) -> None:
    def onrequest(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_informational(103, [("Link", "</style.css>; rel=preload")])
        res.send_all("final")

    with served(onrequest) as thread, RawClient(thread.address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        interim = client.read_head()
        assert interim.status == 103
        assert interim.header("Link") == "</style.css>; rel=preload"
        assert client.read_response().body == b"final"


# -- a pipelined burst on a pool: held for one send, but never waiting on a slow listener -----


@pytest.mark.parametrize("workers", [4])
def test_pipelined_responses_on_a_pool_come_in_order_whole(served: Serve) -> None:
    # Each response is held until the next request's is ready (see _sender): all 32 come,
    # in order, and the connection is still usable after the burst.
    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        res.send_all(req.path)

    with served(listener) as thread, RawClient(thread.address) as raw:
        raw.send(b"".join(f"GET /{n} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for n in range(32)))
        assert [raw.read_response().body for _ in range(32)] == [
            f"/{n}".encode() for n in range(32)
        ]
        assert raw.request("GET", "/after").body == b"/after"


@pytest.mark.parametrize("workers", [4])
def test_a_slow_pipelined_request_does_not_hold_back_the_response_before_it(
    served: Serve,
) -> None:
    # A response is held while the next pipelined request runs (the second's, at least: the
    # first may leave before the loop sees the requests behind it); the third's listener
    # waits until the client has the second response, which the hold's time limit lets go.
    release = threading.Event()

    def listener(server: vestespy.Server, req: vestespy.Request, res: vestespy.Response) -> None:
        if req.path == "/slow":
            assert release.wait(30)
        res.send_all(req.path)

    with served(listener) as thread, RawClient(thread.address) as raw:
        try:
            raw.send(
                b"".join(
                    f"GET /{path} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
                    for path in ("fast", "fast2", "slow")
                )
            )
            assert raw.read_response().body == b"/fast"
            assert raw.read_response().body == b"/fast2"
        finally:
            release.set()
        assert raw.read_response().body == b"/slow"
