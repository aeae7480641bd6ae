"""Property tests on the sans-IO driver: splits never change what a request parses to."""

from __future__ import annotations

from conformance_cases import CASES, Case
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
SHORT = [c for c in CASES if c.accepted and not c.eof and len(c.raw) <= 300]


def parse(pieces: list[bytes]) -> list[object]:
    """Feed ``pieces`` to a driver, answering each request; return what it parsed."""
    driver = Driver()
    seen: list[object] = []
    body = bytearray()
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
            elif isinstance(event, RequestEnded):
                seen.append((bytes(body), event.trailers))
                body.clear()
                driver.start_response(200, [(b"Content-Length", b"0")])
                driver.end_response()
            elif isinstance(event, RequestRejected):
                seen.append(("rejected", event.status))
                return seen
            elif isinstance(event, PeerClosed):
                return seen
    return seen


def test_every_split_of_short_accepted_cases() -> None:
    checked = 0
    for case in SHORT:
        whole = parse([case.raw])
        assert whole, case.id
        assert whole[-1][0] != "rejected", case.id
        for cut in range(1, len(case.raw)):
            assert parse([case.raw[:cut], case.raw[cut:]]) == whole, (case.id, cut)
            checked += 1
    assert checked > 1000


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [piece for piece in pieces if piece]  # b"" would mean end of input


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([c for c in CASES if not c.eof]), st.lists(st.integers(0, 1 << 16), max_size=8)
)
def test_cases_split_at_random_points(case: Case, cuts: list[int]) -> None:
    assert parse(_split(case.raw, cuts)) == parse([case.raw])


_token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_value = st.text("abc xyz0123456789/;=,.", max_size=20).map(str.strip)
_request = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/-._~%?=&", max_size=30).map(lambda t: "/" + t),
    st.lists(st.tuples(_token.map(lambda t: "x-" + t), _value), max_size=6),
    st.binary(max_size=200),
    st.booleans(),
)


def _encode(
    method: str, target: str, fields: list[tuple[str, str]], body: bytes, chunked: bool
) -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: h"] + [f"{n}: {v}" for n, v in fields]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@settings(max_examples=80, deadline=None)
@given(st.lists(_request, min_size=1, max_size=5), st.lists(st.integers(0, 1 << 16), max_size=10))
def test_random_valid_sequences_parse_to_what_was_sent(
    requests: list[tuple], cuts: list[int]
) -> None:  # type: ignore[type-arg]
    data = b"".join(_encode(*r) for r in requests)
    seen = parse(_split(data, cuts))
    assert len(seen) == 2 * len(requests)
    for index, (method, target, fields, body, _chunked) in enumerate(requests):
        head, end = seen[2 * index], seen[2 * index + 1]
        assert isinstance(head, tuple)
        assert head[:3] == (method, target, "1.1")
        names = [(n, v) for _, n, v in head[3]]
        assert names[1 : 1 + len(fields)] == fields
        assert end == (body, [])
