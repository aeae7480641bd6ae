"""Every conformance case against every backend, pooled and inline, over real sockets.

Each case is sent whole and pipelined behind another request; accepted cases are also sent
one byte per write (short ones) or in pieces of seeded random sizes (long ones). The
outcome must be the same every time.
"""

from __future__ import annotations

import json
import random
import socket

import pytest
from conformance_cases import CASES, Case, Echo, Reject

from support import RawClient, ServerThread
from support.client import ParsedResponse, build_request

#: Accepted cases up to this size are also replayed one byte per write over the socket;
#: longer ones are replayed in pieces of 1 to SPLIT_MAX bytes.
BYTEWISE_MAX = 160
SPLIT_MAX = 97

FIRST = build_request(target="/first")
#: What the echo handler reports for the requests the suite adds around a case.
FIRST_ECHO = Echo(target="/first", headers=(("Host", "test"),))
AFTER_ECHO = Echo(target="/after", headers=(("Host", "test"),))
OTHER_ECHO = Echo(target="/other", headers=(("Host", "test"),))


def check_echo(response: ParsedResponse, expected: Echo) -> None:
    """Check that the handler saw exactly the request ``expected`` describes."""
    assert response.status == expected.status, response
    if expected.method == "HEAD" or expected.status in (204, 304):
        # No body (RFC 9110 9.3.2, 15.3.5, 15.4.5): the report comes in a header.
        assert response.body == b"", response
        if expected.status == 204:
            # RFC 9110 8.6 and RFC 9112 6.1: no framing fields in a 204.
            assert response.header("Content-Length") is None, response.headers
            assert response.header("Transfer-Encoding") is None, response.headers
        report = response.header("X-Echo")
        assert report is not None, response.headers
        seen = json.loads(report)
    else:
        seen = json.loads(response.body)
    assert seen["method"] == expected.method
    assert seen["target"] == expected.target
    assert seen["version"] == expected.version
    assert expected.headers is not None, "every Echo states the header fields"
    assert [tuple(h) for h in seen["headers"]] == list(expected.headers)
    assert seen["body"].encode("latin-1") == expected.body
    assert [tuple(t) for t in seen["trailers"]] == list(expected.trailers)


def pieces(case: Case, mode: str) -> list[bytes]:
    """The writes that send ``case`` in ``mode``."""
    data = case.raw
    if mode == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    if mode == "split":
        rng = random.Random(case.id)  # the same pieces on every run and backend
        out = []
        while data:
            size = rng.randint(1, SPLIT_MAX)
            out.append(data[:size])
            data = data[size:]
        return out
    if mode == "pipelined":
        return [FIRST + data]
    return [data]


def replay(address: tuple[str, int], case: Case, mode: str) -> None:
    """Send ``case`` in ``mode`` and check every response, then the connection's fate."""
    expected: list[Echo | Reject] = list(case.responses)
    if mode == "pipelined":
        expected.insert(0, FIRST_ECHO)
    with RawClient(address) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces(case, mode):
            client.send(piece)
        if case.eof:
            client.sock.shutdown(socket.SHUT_WR)
        response = None
        for index, want in enumerate(expected):
            if isinstance(want, Echo):
                response = client.read_response(
                    head_only=want.method == "HEAD" or want.status in (204, 304)
                )
                check_echo(response, want)
            else:
                # An error response to HEAD has no body either.
                head = index == len(expected) - len(case.responses) and case.raw[:5] == b"HEAD "
                response = client.read_response(head_only=head)
                # A well-formed error response that closes the connection.
                assert response.status == want.status, response
                assert response.closes, response.headers
                assert head or response.header("Content-Length") is not None, response.headers
        if case.closes:
            if case.responses:
                # RFC 9112 9.6: the case's last response says the connection closes (a silent
                # case has none: the client hung up mid-request).
                assert response is not None
                assert response.closes, response.headers
            assert client.read_until_close() == b"", "bytes after the last response"
        else:
            # The connection stays usable.
            assert response is None or not response.closes, response.headers
            check_echo(client.request(target="/after"), AFTER_ECHO)
    if case.closes:
        # The server keeps serving other clients.
        with RawClient(address) as other:
            check_echo(other.request(target="/other"), OTHER_ECHO)


def _params() -> list[object]:
    params = []
    for case in CASES:
        modes = ["whole"]
        if case.pipeline:
            modes.append("pipelined")
        if case.accepted and not case.eof:
            modes.append("bytewise" if len(case.raw) <= BYTEWISE_MAX else "split")
        for mode in modes:
            # A known gap fails for certain when the case arrives in one write; in pieces it
            # may depend on how the server's reads fall.
            strict = mode in ("whole", "pipelined")
            marks = [pytest.mark.xfail(reason=case.gap, strict=strict)] if case.gap else []
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
    for case in CASES:
        assert case.section.startswith("RFC "), case.id
        # A rejection always closes the connection; nothing follows it.
        if any(isinstance(r, Reject) for r in case.responses):
            assert isinstance(case.responses[-1], Reject), case.id
            assert case.closes, case.id
        assert case.silent == (not case.responses), case.id
        for response in case.responses:
            if isinstance(response, Echo):
                assert response.headers is not None, case.id
