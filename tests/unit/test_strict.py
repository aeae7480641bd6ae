"""The strict checks of _strict and their use in the driver (no sockets)."""

from __future__ import annotations

import pytest

from vestespy import _strict
from vestespy._driver import BodyReceived, Driver, RequestRejected, RequestStarted, Wait
from vestespy.options import ServerOptions


def first(driver: Driver, data: bytes) -> object:
    driver.receive(data)
    return driver.next_event()


@pytest.mark.parametrize(
    ("head", "rule"),
    [
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", _strict.BARE_LF),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", _strict.OBS_FOLD),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x07\r\n\r\n", _strict.CONTROL),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", _strict.CONTROL),
        (b"GET / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5, 5\r\n\r\n", _strict.CL_LIST),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 5, 5\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\tb\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", None),
        (b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-ENCODING: gzip, Chunked\r\n\r\n", None),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            _strict.TE_NOT_CHUNKED_LAST,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            _strict.TE_NOT_CHUNKED_LAST,
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", _strict.TE_NOT_CHUNKED_LAST),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
            _strict.TE_NOT_CHUNKED_LAST,
        ),
        (b"POST / HTTP/1.1\r\nX-Transfer-Encoding: gzip\r\n\r\n", None),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            _strict.TE_CHUNKED_TWICE,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n\r\n",
            _strict.TE_CHUNKED_TWICE,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;foo=bar\r\n\r\n",
            _strict.TE_CHUNKED_PARAMETERS,
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n", _strict.TE_REWRITE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n", _strict.TE_REWRITE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n", None),
    ],
)
def test_check_head(head: bytes, rule: _strict.Rule | None) -> None:
    assert _strict.check_head(head, frozenset()) is rule


def test_relaxed_rules_are_skipped() -> None:
    relaxed = frozenset({"allow_bare_lf", "allow_obs_fold"})
    assert _strict.check_head(b"GET / HTTP/1.1\nHost: a\n X\n\n", relaxed) is None
    # A folded Transfer-Encoding is read unfolded.
    folded = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n gzip\r\n\r\n"
    assert _strict.check_head(folded, relaxed) is _strict.TE_NOT_CHUNKED_LAST


@pytest.mark.parametrize(
    ("head", "relaxed", "expected"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\nX: 1\r\n\r\n",
            frozenset(),
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\ntransfer-encoding:\r\nX: 1\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
            frozenset(),
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nX: 1\r\n\r\n",
        ),
        (
            b"POST / HTTP/1.1\nTransfer-Encoding: chunked,\n\n",
            frozenset({"allow_bare_lf"}),
            b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n chunked\r\n\r\n",
            frozenset({"allow_obs_fold"}),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
    ],
)
def test_empty_transfer_encoding_elements_are_rewritten(
    head: bytes, relaxed: frozenset[str], expected: bytes
) -> None:
    assert _strict.check_head(head, relaxed) is _strict.TE_REWRITE
    assert _strict.normalize_transfer_encoding(head, relaxed) == expected
    assert _strict.check_head(expected, relaxed) is None


def test_driver_reads_a_rewritten_transfer_encoding_and_its_body() -> None:
    driver = Driver()
    event = first(
        driver, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n3\r\nabc\r\n"
    )
    assert isinstance(event, RequestStarted)
    assert ("transfer-encoding", "Transfer-Encoding", "chunked") in event.headers
    assert driver.next_event() == BodyReceived(b"abc")


@pytest.mark.parametrize(
    ("method", "target", "version", "fields", "rule"),
    [
        ("GET", "/", "2.0", [], _strict.VERSION),
        ("GET", "*", "1.1", [], _strict.ASTERISK_FORM),
        ("OPTIONS", "*", "1.1", [], None),
        ("GET", "a:1", "1.1", [], _strict.AUTHORITY_FORM),
        ("CONNECT", "a:1", "1.1", [], _strict.CONNECT),
        ("CONNECT", "/", "1.1", [], _strict.CONNECT_FORM),
        ("CONNECT", "http://a/", "1.1", [], _strict.CONNECT_FORM),
        ("CONNECT", "*", "1.1", [], _strict.ASTERISK_FORM),
        ("GET", "/", "1.1", [("host", "a.example:8080")], None),
        ("GET", "/", "1.1", [("host", "[::1]:80")], None),
        ("GET", "/", "1.1", [("host", "")], None),
        ("GET", "/", "1.1", [("host", "a b")], _strict.INVALID_HOST),
        ("GET", "/", "1.1", [("host", "u@a")], _strict.INVALID_HOST),
        ("GET", "/", "1.1", [("host", "a:1:2")], _strict.INVALID_HOST),
        ("GET", "/", "1.0", [("host", "a/b")], _strict.INVALID_HOST),
        ("GET", "http://a/", "1.1", [], None),
        ("GET", "/", "1.1", [("expect", "foo")], _strict.EXPECT),
        ("GET", "/", "1.1", [("expect", "100-Continue")], None),
        (
            "POST",
            "/",
            "1.1",
            [("transfer-encoding", "chunked"), ("content-length", "1")],
            _strict.TE_AND_CL,
        ),
        ("POST", "/", "1.0", [("transfer-encoding", "chunked")], _strict.TE_HTTP10),
        ("POST", "/", "1.1", [("content-length", str(2**63))], _strict.CL_RANGE),
        ("POST", "/", "1.1", [("content-length", str(2**63 - 1))], None),
    ],
)
def test_check_request(
    method: str, target: str, version: str, fields: list[tuple[str, str]], rule: object
) -> None:
    headers = [(n, n, v) for n, v in fields]
    assert _strict.check_request(method, target, version, headers) is rule


def test_rules_table_is_complete() -> None:
    assert len({rule.name for rule in _strict.RULES}) == len(_strict.RULES)
    options = set(ServerOptions.__dataclass_fields__)
    for rule in _strict.RULES:
        assert rule.section.startswith("RFC ")
        assert rule.option == "" or rule.option in options


def test_driver_rejects_with_connection_close() -> None:
    event = first(Driver(), b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n")
    assert isinstance(event, RequestRejected)
    assert event.status == 400
    assert event.response.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close\r\n" in event.response


def test_driver_option_relaxes_bare_lf() -> None:
    event = first(Driver(relaxed=frozenset({"allow_bare_lf"})), b"GET / HTTP/1.1\nHost: a\n\n")
    assert isinstance(event, RequestStarted)


def test_driver_skips_leading_empty_lines_split_across_reads() -> None:
    driver = Driver()
    assert first(driver, b"\r") is Wait.NEED_DATA
    assert first(driver, b"\n\r\n") is Wait.NEED_DATA
    event = first(driver, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(event, RequestStarted)


def test_driver_414_before_the_line_ends() -> None:
    event = first(Driver(max_request_line=100), b"GET /" + b"a" * 200)
    assert isinstance(event, RequestRejected)
    assert event.status == 414


def test_driver_431_for_a_head_that_arrives_whole() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 2000 + b"\r\n\r\n"
    event = first(Driver(max_header_size=1000), data)
    assert isinstance(event, RequestRejected)
    assert event.status == 431


def test_head_rejection_has_no_body() -> None:
    event = first(Driver(), b"HEAD * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(event, RequestRejected)
    assert event.response.endswith(b"\r\n\r\n")


def _scan(*pieces: bytes) -> _strict.ChunkScanner:
    scanner = _strict.ChunkScanner(max_line=64)
    for piece in pieces:
        scanner.feed(piece)
    return scanner


def test_chunk_scanner_follows_valid_framing_split_anywhere() -> None:
    body = b'5;name="v"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\r\n'
    for split in range(len(body) + 1):
        scanner = _scan(body[:split], body[split:])
        assert scanner.error is None, split
        assert scanner.done


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b"5\nhello\r\n0\r\n\r\n", _strict.CHUNK_LINE),
        (b"5;a=\rb\r\nhello\r\n0\r\n\r\n", _strict.CHUNK_LINE),
        (b"0\r\nA: 1\n\r\n", _strict.CHUNK_LINE),
        (b"8000000000000000\r\n", _strict.CHUNK_SIZE),
        (b"000000000000000000001\r\nx\r\n0\r\n\r\n", None),
        (b"5;a=\x07\r\nhello\r\n", _strict.CHUNK_EXT),
        (b"5;a=\x00\r\nhello\r\n", _strict.CHUNK_EXT),
        (b"5 \r\nhello\r\n", _strict.CHUNK_SYNTAX),
        (b"5;\r\nhello\r\n", _strict.CHUNK_SYNTAX),
        (b'5;a="b\r\nhello\r\n', _strict.CHUNK_SYNTAX),
        (b"5;a=b c\r\nhello\r\n", _strict.CHUNK_SYNTAX),
        (b'5; a = "b\\"c" ;d\r\nhello\r\n0\r\n\r\n', None),
        (b"0\r\nA: 1\r\n 2\r\n\r\n", _strict.OBS_FOLD),
        (b"0\r\nA: 1\x07\r\n\r\n", _strict.CONTROL),
        (b"0\r\n" + b"A: 1\r\n" * 20 + b"\r\n", _strict.TRAILERS_TOO_LARGE),
        (b"5;" + b"a" * 100 + b"\r\n", _strict.CHUNK_TOO_LARGE),
        (b"5;" + b"a" * 100, _strict.CHUNK_TOO_LARGE),
    ],
)
def test_chunk_scanner_refuses_what_h11_lets_through(
    body: bytes, rule: _strict.Rule | None
) -> None:
    assert _scan(body).error == rule


def test_chunk_scanner_obs_fold_in_trailers_can_be_relaxed() -> None:
    scanner = _strict.ChunkScanner(max_line=64, relaxed=frozenset({"allow_obs_fold"}))
    scanner.feed(b"0\r\nA: 1\r\n 2\r\n\r\n")
    assert scanner.error is None
    assert scanner.done
