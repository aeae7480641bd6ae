"""Every conformance case against every backend, pooled and inline, over real sockets.

Each case is sent whole and pipelined behind another request; accepted short cases are
also sent one byte per write. The outcome must be the same every time.
"""

from __future__ import annotations

import json
import socket

import pytest
from conformance_cases import CASES, Case, Echo, Reject

from support import RawClient, ServerThread
from support.client import ParsedResponse, build_request

#: Accepted cases up to this size are also replayed one byte per write over the socket.
BYTEWISE_MAX = 160

FIRST = build_request(target="/first")


def check_echo(response: ParsedResponse, expected: Echo) -> None:
    assert response.status == 200, response
    if expected.method == "HEAD":
        assert response.body == b""
        return
    seen = json.loads(response.body)
    assert seen["method"] == expected.method
    assert seen["target"] == expected.target
    assert seen["version"] == expected.version
    assert seen["body"].encode("latin-1") == expected.body
    assert [tuple(t) for t in seen["trailers"]] == list(expected.trailers)
    if expected.headers is not None:
        assert [tuple(h) for h in seen["headers"]] == list(expected.headers)


def replay(address: tuple[str, int], case: Case, mode: str) -> None:
    """Send ``case`` in ``mode`` and check every response, then the connection's fate."""
    expected: list[Echo | Reject] = list(case.responses)
    with RawClient(address) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "pipelined":
            expected.insert(0, Echo(target="/first"))
            client.send(FIRST + case.raw)
        elif mode == "bytewise":
            for index in range(len(case.raw)):
                client.send(case.raw[index : index + 1])
        else:
            client.send(case.raw)
        if case.eof:
            client.sock.shutdown(socket.SHUT_WR)
        for index, want in enumerate(expected):
            if isinstance(want, Echo):
                check_echo(client.read_response(head_only=want.method == "HEAD"), want)
            else:
                # An error response to HEAD has no body either.
                head = index == len(expected) - len(case.responses) and case.raw[:5] == b"HEAD "
                response = client.read_response(head_only=head)
                assert response.status == want.status, response
                assert response.closes, response.headers
        if case.closes:
            assert client.read_until_close() == b"", "bytes after the last response"
        else:
            # The connection stays usable.
            check_echo(client.request(target="/after"), Echo(target="/after"))
    if case.closes:
        # The server keeps serving other clients.
        with RawClient(address) as other:
            check_echo(other.request(target="/other"), Echo(target="/other"))


def _params() -> list[object]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(reason=case.gap, strict=True)] if case.gap else []
        modes = ["whole"]
        if case.pipeline:
            modes.append("pipelined")
        if case.accepted and not case.eof and len(case.raw) <= BYTEWISE_MAX:
            modes.append("bytewise")
        for mode in modes:
            params.append(pytest.param(case, mode, id=f"{case.id}[{mode}]", marks=marks))
    return params


@pytest.mark.parametrize(("case", "mode"), _params())
def test_case(
    echo_server: ServerThread, case: Case, mode: str, request: pytest.FixtureRequest
) -> None:
    request.node.user_properties.append(("server", echo_server.label))  # type: ignore[attr-defined]
    request.node.user_properties.append(("kind", mode))
    replay(echo_server.address, case, mode)


def test_case_count() -> None:
    assert len(CASES) >= 250
    assert len({case.id for case in CASES}) == len(CASES), "case names must be unique"
