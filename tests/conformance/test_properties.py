"""Property tests on the sans-IO driver: splits never change what a request parses to."""

from __future__ import annotations

import pytest
from conformance_cases import CASES, Case, Echo
from hypothesis import given, settings
from hypothesis import strategies as st

from vestespy._driver import (
    BodyReceived,
    Driver,
    PeerClosed,
    RequestEnded,
    RequestRejected,
    RequestStarted,
    Wait,
)

#: Cases short enough to be split at every byte boundary.
SHORT = [c for c in CASES if c.accepted and not c.eof and not c.gap and len(c.raw) <= 300]


def parse(pieces: list[bytes]) -> list[object]:
    """Feed ``pieces`` to a driver, answering each request; return what it parsed.

    Requests are answered as the echo handler answers them (conftest.py): with
    ``Connection: close`` when the path starts with ``/close``.
    """
    driver = Driver()
    seen: list[object] = []
    body = bytearray()
    closing = False
    for piece in [*pieces, b""]:
        driver.receive(piece)
        while True:
            event = driver.next_event()
            if isinstance(event, Wait):
                break
            if isinstance(event, BodyReceived):
                body += event.data
                continue
            if isinstance(event, RequestStarted):
                seen.append((event.method, event.target, event.http_version, event.headers))
                closing = event.target.startswith("/close")
            elif isinstance(event, RequestEnded):
                seen.append((bytes(body), event.trailers))
                body.clear()
                fields = [(b"Content-Length", b"0")]
                driver.start_response(200, fields + [(b"Connection", b"close")] * closing)
                driver.end_response()
            elif isinstance(event, RequestRejected):
                seen.append(("rejected", event.status))
                return seen
            elif isinstance(event, PeerClosed):
                return seen
    return seen


def summary(seen: list[object]) -> list[object]:
    """``seen`` with fields as ``(name as received, value)``, as a case states them.

    A request rejected in the middle of its body (its head already handed on) counts as
    its rejection only, as it does over a socket.
    """
    out: list[object] = []
    for index, item in enumerate(seen):
        assert isinstance(item, tuple)
        if item[0] == "rejected":
            out.append(item)
        elif len(item) == 4:
            following = seen[index + 1] if index + 1 < len(seen) else ("rejected",)
            if following[0] != "rejected":  # type: ignore[index]
                out.append((*item[:3], tuple((raw, value) for _, raw, value in item[3])))
        else:
            out.append((item[0], tuple((raw, value) for _, raw, value in item[1])))
    return out


def expected(case: Case, seen: list[object]) -> list[object]:
    """What the driver must parse ``case`` to, from the responses the case expects."""
    out: list[object] = []
    for index, response in enumerate(case.responses):
        if isinstance(response, Echo):
            end = (response.body, response.trailers)
            if response.target.startswith("/ignore"):
                # The handler ignored the body; the driver still parses it.
                end = seen[2 * index + 1]  # type: ignore[assignment]
            out.append((response.method, response.target, response.version, response.headers))
            out.append(end)
        else:
            out.append(("rejected", response.status))
    if case.silent and seen and seen[-1][0] == "rejected":  # type: ignore[index]
        # The client hung up mid-request: the driver's verdict is never sent.
        out.append(seen[-1])
    return out


def test_every_split_of_short_accepted_cases() -> None:
    checked = 0
    for case in SHORT:
        whole = parse([case.raw])
        assert whole, case.id
        assert whole[-1][0] != "rejected", case.id  # type: ignore[index]
        for cut in range(1, len(case.raw)):
            assert parse([case.raw[:cut], case.raw[cut:]]) == whole, (case.id, cut)
            checked += 1
    assert checked > 1000


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [piece for piece in pieces if piece]  # b"" would mean end of input


@pytest.mark.parametrize("case", [c for c in CASES if not c.gap], ids=lambda c: c.id)
@settings(max_examples=12, deadline=None)
@given(cuts=st.lists(st.integers(0, 1 << 20), max_size=12))
def test_cases_split_at_random_points(case: Case, cuts: list[int]) -> None:
    """Every case parses, at hypothesis-chosen boundaries, to what the case expects."""
    whole = parse([case.raw])
    assert summary(whole) == expected(case, summary(whole)), case.id
    assert parse(_split(case.raw, cuts)) == whole


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_value = st.text("abc xyz0123456789/;=,.", max_size=20).map(str.strip)
_fields = st.lists(st.tuples(_token.map(lambda t: "x-" + t), _value), max_size=6)
#: How a chunked body is sent: chunk sizes, whether hex is upper-case, leading zeros, an
#: extension on each chunk, and the trailer fields.
_chunking = st.tuples(
    st.lists(st.integers(1, 64), max_size=6),
    st.booleans(),
    st.integers(0, 3),
    st.sampled_from(["", ";a", ";a=b", ';a="b c"', "; a = b;c"]),
    _fields,
)
_request = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/-._~%?=&", max_size=30).map(lambda t: "/" + t),
    _fields,
    st.binary(max_size=200),
    st.none() | _chunking,
)

Chunking = tuple[list[int], bool, int, str, list[tuple[str, str]]]


def _encode(
    method: str,
    target: str,
    fields: list[tuple[str, str]],
    body: bytes,
    chunking: Chunking | None,
) -> tuple[bytes, list[tuple[str, str]], list[tuple[str, str]]]:
    """Return a request's bytes, its header fields and its trailer fields."""
    head = [("Host", "h"), *fields]
    trailers: list[tuple[str, str]] = []
    if chunking is None:
        head.append(("Content-Length", str(len(body))))
        payload = body
    else:
        sizes, upper, zeros, extension, trailers = chunking
        head.append(("Transfer-Encoding", "chunked"))
        pieces, rest = [], body
        for size in [*sizes, len(body)]:  # whatever the sizes leave goes in one last chunk
            piece, rest = rest[:size], rest[size:]
            if piece:
                digits = ("%X" if upper else "%x") % len(piece)
                pieces.append(f"{'0' * zeros}{digits}{extension}\r\n".encode() + piece + b"\r\n")
        last = "0" * (zeros + 1) + extension + "\r\n"
        payload = b"".join(pieces) + last.encode()
        payload += "".join(f"{n}: {v}\r\n" for n, v in trailers).encode() + b"\r\n"
    lines = [f"{method} {target} HTTP/1.1"] + [f"{n}: {v}" for n, v in head]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload, head, trailers


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_request, min_size=1, max_size=5),
    st.lists(st.integers(0, 1 << 16), max_size=10),
    st.booleans(),
)
def test_random_valid_sequences_parse_to_what_was_sent(
    requests: list[tuple[str, str, list[tuple[str, str]], bytes, Chunking | None]],
    cuts: list[int],
    leading_crlf: bool,
) -> None:
    encoded = [_encode(*r) for r in requests]
    data = (b"\r\n" if leading_crlf else b"") + b"".join(raw for raw, _, _ in encoded)
    seen = summary(parse(_split(data, cuts)))
    want: list[object] = []
    for (method, target, _, body, _), (_, head, trailers) in zip(requests, encoded, strict=True):
        want.append((method, target, "1.1", tuple(head)))
        want.append((body, tuple(trailers)))
        if target.startswith("/close"):
            break  # answered with Connection: close: what follows is not read (RFC 9112 9.6)
    assert seen == want
