"""Dispatcher routing, without sockets: a recording channel stands in for the connection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

import vestespy
from vestespy._head import ResponseHead
from vestespy.tools import Dispatcher


class RecordingChannel:
    """Implements the ResponseChannel protocol by remembering what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, dict[str, str], bytes]] = []

    def in_loop_thread(self) -> bool:
        return False

    def start(self, head: ResponseHead, body: bytes, end: bool) -> None:
        headers = {k.decode(): v.decode() for k, v in head.headers}
        self.sent.append((head.status, headers, body))

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def stream_from_loop(self, chunks: Iterator[bytes]) -> None: ...

    def abort(self) -> None: ...

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...


def call(dispatcher: Dispatcher, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    request = vestespy.Request(
        method=method,
        target=target,
        http_version="1.1",
        headers=vestespy.Headers(),
        client_address=("127.0.0.1", 1),
    )
    channel = RecordingChannel()
    response = vestespy.Response(channel, method)
    dispatcher.dispatch(None, request, response)  # type: ignore[arg-type]
    assert len(channel.sent) == 1
    return channel.sent[0]


@pytest.fixture
def dispatcher() -> Dispatcher:
    d = Dispatcher()

    def echo_params(ev: Any, req: vestespy.Request, res: vestespy.Response, **params: str) -> None:
        assert req.params == params
        res.send_all(repr(sorted(params.items())))

    d.register("/", lambda ev, req, res: res.send_all("root"))
    d.register("/test/:id", echo_params)
    d.register("/users/:user/posts/:post_id", echo_params)
    d.register(r"^/files/(?P<name>[a-z]+)\.(?P<ext>txt|md)$", echo_params)
    d.register(re.compile(r"^/api/v(?P<version>\d+)/"), echo_params)
    d.register("/items", lambda ev, req, res: res.send_all("list"), methods=["GET"])
    d.register("/items", lambda ev, req, res: res.send_all("created"), methods=["post"])
    d.register("/dot.path", lambda ev, req, res: res.send_all("literal dot"))
    d.register("/café/:x", echo_params)
    return d


def test_path_patterns_pass_parameters(dispatcher: Dispatcher) -> None:
    assert call(dispatcher, "GET", "/")[2] == b"root"
    assert call(dispatcher, "GET", "/test/42")[2] == b"[('id', '42')]"
    assert call(dispatcher, "GET", "/users/ann/posts/7?x=1")[2] == (
        b"[('post_id', '7'), ('user', 'ann')]"
    )
    # An encoded slash stays inside its segment; the parameter is decoded after matching.
    assert call(dispatcher, "GET", "/test/a%2Fb")[2] == b"[('id', 'a/b')]"
    assert call(dispatcher, "GET", "/test/a%20b")[2] == b"[('id', 'a b')]"
    assert call(dispatcher, "GET", "/caf%C3%A9/1")[2] == b"[('x', '1')]"


def test_regex_routes_string_and_compiled(dispatcher: Dispatcher) -> None:
    assert call(dispatcher, "GET", "/files/notes.md")[2] == b"[('ext', 'md'), ('name', 'notes')]"
    assert call(dispatcher, "GET", "/files/notes.exe")[0] == 404
    assert call(dispatcher, "GET", "/api/v2/anything/else")[2] == b"[('version', '2')]"


def test_no_match_is_404_and_partial_match_does_not_count(dispatcher: Dispatcher) -> None:
    for target in ("/nope", "/test/", "/test/1/2", "/dotXpath"):
        status, _, _body = call(dispatcher, "GET", target)
        assert status == 404, target
    assert call(dispatcher, "GET", "/dot.path")[2] == b"literal dot"


def test_other_method_is_405_with_allow(dispatcher: Dispatcher) -> None:
    assert call(dispatcher, "GET", "/items")[2] == b"list"
    assert call(dispatcher, "POST", "/items")[2] == b"created"
    status, headers, _ = call(dispatcher, "DELETE", "/items")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD, POST"


def test_get_routes_answer_head_without_body(dispatcher: Dispatcher) -> None:
    status, headers, body = call(dispatcher, "HEAD", "/items")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == "4"


def test_decorator_and_bad_registrations() -> None:
    d = Dispatcher()

    @d.route("/deco/:x", methods=["PUT"])
    def deco(ev: Any, req: vestespy.Request, res: vestespy.Response, x: str) -> None:
        res.send_all(x)

    assert call(d, "PUT", "/deco/yes")[2] == b"yes"
    with pytest.raises(ValueError, match="must start with"):
        d.register("relative", deco)
    with pytest.raises(TypeError, match="callable"):
        d.register("/x", "not callable")  # type: ignore[arg-type]


def test_as_handler_is_a_request_listener() -> None:
    d = Dispatcher()
    d.register("/", lambda ev, req, res: res.send_all("root"))
    listener = d.as_handler()
    with vestespy.Server(("127.0.0.1", 0)) as server:
        server.on("request", listener)
        assert server.listeners("request") == [listener]


def test_asterisk_pattern_matches_options_asterisk_only() -> None:
    dispatcher = Dispatcher()
    dispatcher.register("*", lambda ev, req, res: res.send_all("server-wide"), methods=["OPTIONS"])
    dispatcher.register("/", lambda ev, req, res: res.send_all("root"))
    assert call(dispatcher, "OPTIONS", "*")[::2] == (200, b"server-wide")
    assert call(dispatcher, "OPTIONS", "/")[::2] == (200, b"root")
    assert call(dispatcher, "GET", "/x")[0] == 404
