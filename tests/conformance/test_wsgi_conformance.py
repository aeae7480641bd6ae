"""The conformance cases that reach a WSGI application, through the adapter on every backend.

Chunked uploads, pipelining, HEAD, 100-continue and connection handling: each case is sent
whole and pipelined behind another request to a validator-wrapped WSGI echo application, which
reports what its environ held. The expected environ is derived from the case's expected
request, by PEP 3333's rules written out here independently of the adapter.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes
from wsgiref.validate import validator

import pytest
from conformance_cases import CASES, Case, Echo, Reject
from test_conformance import pieces

from support import RawClient, ServerThread, serve
from support.client import ParsedResponse, build_request
from vestespy.wsgi import WSGIAdapter

FIRST_ECHO = Echo(target="/first", headers=(("Host", "test"),))
AFTER_ECHO = Echo(target="/after", headers=(("Host", "test"),))


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answer with what the environ held, as JSON; the path picks how, as for ``echo``."""
    path = environ["PATH_INFO"]
    body = b""
    if not path.startswith("/ignore"):
        stream = environ["wsgi.input"]
        body = b"".join(iter(lambda: stream.read(65536), b""))
    report = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "target": environ["RAW_URI"],
            "path": path,
            "query": environ["QUERY_STRING"],
            "version": environ["SERVER_PROTOCOL"][5:],
            "headers": {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))},
            "body": body.decode("latin-1"),
        }
    )
    status = "200 OK"
    headers = [("Content-Type", "application/json")]
    if path.startswith("/status/"):
        status = {"204": "204 No Content", "304": "304 Not Modified"}[path[8:11]]
        headers = []
    if path.startswith("/close"):
        headers.append(("Connection", "close"))
    if environ["REQUEST_METHOD"] == "HEAD" or status[:3] in ("204", "304"):
        headers.append(("X-Echo", report))
    start_response(status, headers)
    return [] if status[:3] in ("204", "304") else [report.encode()]


def expected_environ_headers(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``HTTP_*`` and ``CONTENT_*`` keys PEP 3333 (and the adapter's rules) give."""
    out: dict[str, str] = {}
    for name, value in fields:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in out and key.startswith("HTTP_"):
            out[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            out[key] = value
    return out


def check(response: ParsedResponse, expected: Echo) -> None:
    assert response.status == expected.status, response
    if expected.method == "HEAD" or expected.status in (204, 304):
        assert response.body == b"", response
        report = response.header("X-Echo")
        assert report is not None, response.headers
        seen = json.loads(report)
    else:
        seen = json.loads(response.body)
    assert seen["method"] == expected.method
    assert seen["target"] == expected.target
    path, _, query = expected.target.partition("?")
    if "://" in path:  # absolute-form
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    assert seen["path"] == unquote_to_bytes(path).decode("latin-1")
    assert seen["query"] == query
    assert seen["version"] == expected.version
    assert expected.headers is not None
    assert seen["headers"] == expected_environ_headers(expected.headers)
    assert seen["body"].encode("latin-1") == expected.body


def relevant(case: Case) -> bool:
    """Chunked bodies, pipelining, HEAD, 100-continue and connection handling."""
    return case.category in ("chunked", "connection") or any(
        word in case.name for word in ("head", "expect", "pipeline")
    )


SELECTED = [case for case in CASES if relevant(case) and not case.gap]


def _params() -> list[Any]:
    params = []
    for case in SELECTED:
        for mode in ["whole", "pipelined"] if case.pipeline else ["whole"]:
            params.append(pytest.param(case, mode, id=f"{case.id}[{mode}]"))
    return params


@pytest.fixture(scope="module", params=__import__("vestespy").available_backends())
def wsgi_server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    adapter = WSGIAdapter(validator(wsgi_echo))
    with serve(adapter, select=request.param, max_workers=4, keep_alive_timeout=10) as thread:
        yield thread


def test_enough_cases_are_selected() -> None:
    assert len(SELECTED) >= 60
    names = " ".join(case.id for case in SELECTED)
    for word in ("chunked/", "pipeline", "head", "expect-100"):
        assert word in names


@pytest.mark.parametrize(("case", "mode"), _params())
def test_case_through_wsgi(wsgi_server: ServerThread, case: Case, mode: str) -> None:
    expected: list[Echo | Reject] = list(case.responses)
    if mode == "pipelined":
        expected.insert(0, FIRST_ECHO)
    with RawClient(wsgi_server.address) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces(case, mode):
            client.send(piece)
        if case.eof:
            client.sock.shutdown(socket.SHUT_WR)
        response = None
        for want in expected:
            if isinstance(want, Echo):
                head_only = want.method == "HEAD" or want.status in (204, 304)
                response = client.read_response(head_only=head_only)
                check(response, want)
            else:
                head_only = case.raw[:5] == b"HEAD " and want is expected[-1]
                response = client.read_response(head_only=head_only)
                assert response.status == want.status, response
                assert response.closes, response.headers
        if case.closes:
            assert client.read_until_close() == b"", "bytes after the last response"
        else:
            assert response is None or not response.closes, response.headers
            client.send(build_request(target="/after"))
            check(client.read_response(), AFTER_ECHO)
