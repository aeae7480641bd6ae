"""The access log formatter: fields, escaping, the logger hook."""

from __future__ import annotations

import json
import logging
import os
import re

import pytest

from vestespy import Headers, Request
from vestespy.access_log import (
    COMBINED_FORMAT,
    FIELDS,
    JSON_FIELDS,
    JSON_FORMAT,
    AccessLogFormatter,
    AccessLogger,
    _combined_line,
    _compile,
    escape,
)


def make_request(**headers: str) -> Request:
    request = Request(
        method="GET",
        target="/a%20b?x=1",
        http_version="1.1",
        headers=Headers([(k.replace("_", "-"), v) for k, v in headers.items()]),
        client_address=("127.0.0.1", 5000),
    )
    request._set_forwarded(("198.51.100.7", 0), "https", "shop.example")  # as the server does
    return request


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("plain value", "plain value"),
        ('say "hi"', "say \\x22hi\\x22"),
        ("back\\slash", "back\\x5cslash"),
        ("tab\there", "tab\\x09here"),
        ("new\nline\r", "new\\x0aline\\x0d"),
        ("caf\xe9", "caf\\xe9"),
        ("\x7f\x00", "\\x7f\\x00"),
        ("snow \u2603", "snow \\u2603"),
    ],
)
def test_escape(raw: str, logged: str) -> None:
    assert escape(raw) == logged
    assert logged.isascii()
    assert logged.isprintable()


def test_combined_format() -> None:
    line = AccessLogFormatter()(make_request(User_Agent='curl "x"', Referer="r"), 200, 13, 0.0015)
    assert re.fullmatch(
        r"198\.51\.100\.7 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /a%20b\?x=1 HTTP/1\.1" 200 13 "r" "curl \\x22x\\x22" 1\.500',
        line,
    ), line
    assert AccessLogFormatter(COMBINED_FORMAT).format == COMBINED_FORMAT


@pytest.mark.parametrize(
    ("headers", "rejection", "sent"),
    [
        ({}, None, 13),
        ({"User_Agent": "curl/8", "Referer": "http://a/"}, None, 0),
        ({"User_Agent": 'ev"il\n\u2603', "Referer": "caf\xe9\\"}, None, 5),
        ({"Referer": "r"}, 'too "many"\n', 0),
    ],
)
def test_the_combined_format_is_written_out_as_compile_makes_it(
    headers: dict[str, str], rejection: str | None, sent: int
) -> None:
    """The default format's own function (compiled by mypyc) writes the generated one's line."""
    generated = _compile(COMBINED_FORMAT)
    assert generated is not None
    assert AccessLogFormatter().line is _combined_line
    requests = [make_request(**headers)]
    requests.append(
        Request(method="-", target="-", http_version="", headers=Headers(), client_address="")
    )  # a head never parsed, no client
    for request in requests:
        request.rejection = rejection
        assert _combined_line(request, 200, sent, 0.0125) == generated(request, 200, sent, 0.0125)


def test_every_field_formats() -> None:
    fields = " ".join(f"{{{name}}}" for name in FIELDS if name != "header")
    request = make_request(X_Request_ID="client-id", X_Thing="t")
    request._request_id = "id-1"  # as the server does for a trusted proxy's X-Request-ID
    line = AccessLogFormatter(fields + " {header[X-Thing]} {header[Missing]}")(request, 404, 0, 2.5)
    assert "198.51.100.7 127.0.0.1 GET /a%20b?x=1 /a b x=1 HTTP/1.1" in line
    assert "404 - 0 2500.000 2500000 2.500000" in line
    assert "id-1 - shop.example https" in line  # request_id, rejection, host, scheme
    assert line.endswith(" t -")


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{nope}", "unknown access log field"),
        ("{header}", "header[Name]"),
        ("{status", "bad access log format"),
    ],
)
def test_bad_formats(fmt: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        AccessLogFormatter(fmt)


def test_logger_hook(caplog: pytest.LogCaptureFixture) -> None:
    hook = AccessLogger("{method} {status}")
    with caplog.at_level(logging.INFO, logger="vestespy.access"):
        hook(make_request(), 201, 0, 0.1)
    assert [r.getMessage() for r in caplog.records] == ["GET 201"]
    assert caplog.records[0].name == "vestespy.access"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vestespy.access"):
        hook(make_request(), 201, 0, 0.1)  # disabled: not even formatted
    assert not caplog.records


# -- the server's own answers, JSON lines, request ids ------------------------------------------


def test_a_rejection_is_marked_whatever_the_format() -> None:
    request = make_request()
    request.rejection = 'too "many" header fields\n'
    for fmt in ("{status}", "{status} {method!r:>8}"):  # compiled, and through format_map
        line = AccessLogFormatter(fmt)(request, 431, 10, 0.0)
        assert line.endswith(' rejected="too \\x22many\\x22 header fields\\x0a"'), line
    # A format that places {rejection} itself is not marked again.
    assert AccessLogFormatter("{status} [{rejection}]")(request, 431, 10, 0.0) == (
        "431 [too \\x22many\\x22 header fields\\x0a]"
    )
    request.rejection = None
    assert AccessLogFormatter("{status} {rejection}")(request, 200, 0, 0.0) == "200 -"
    assert AccessLogFormatter("{status}")(request, 200, 0, 0.0) == "200"


def test_a_head_never_parsed_has_no_request_line() -> None:
    request = Request(
        method="-", target="-", http_version="", headers=Headers(), client_address=("::1", 1, 0, 0)
    )
    request.rejection = "request head not received within header_timeout"
    line = AccessLogFormatter()(request, 408, 71, 0.5)
    assert '"-" 408 71 "-" "-" 500.000 rejected="request head not' in line
    assert AccessLogFormatter("{version} {request_line!s}")(request, 408, 0, 0.0).startswith("- -")
    record = json.loads(AccessLogFormatter(JSON_FORMAT)(request, 408, 71, 0.5))
    assert (record["method"], record["target"], record["version"]) == (None, None, None)
    assert record["client"] == "::1"


def test_json_lines_carry_every_field_escaped() -> None:
    request = make_request(User_Agent='ev"il\n{"x":1}\u2603', Referer="caf\xe9")
    request._request_id = "lb-1"
    formatter = AccessLogFormatter(JSON_FORMAT)
    assert formatter.fields == tuple(JSON_FIELDS)
    line = formatter(request, 200, 13, 0.0015)
    assert "\n" not in line
    assert line.isascii()
    record = json.loads(line)
    assert list(record) == list(JSON_FIELDS)
    assert record["user_agent"] == 'ev"il\n{"x":1}\u2603'
    assert record["referer"] == "caf\xe9"
    assert record["client"] == "198.51.100.7"
    assert record["peer"] == "127.0.0.1"
    assert (record["method"], record["target"], record["version"]) == (
        "GET",
        "/a%20b?x=1",
        "HTTP/1.1",
    )
    assert (record["status"], record["bytes_sent"], record["duration_ms"]) == (200, 13, 1.5)
    assert (record["host"], record["scheme"], record["request_id"]) == (
        "shop.example",
        "https",
        "lb-1",
    )
    assert (record["rejected"], record["reason"]) == (False, None)
    assert record["pid"] == os.getpid()
    request.rejection = "concurrency limit"
    record = json.loads(formatter(request, 503, 65, 0.0))
    assert (record["rejected"], record["reason"]) == (True, "concurrency limit")


def test_the_request_id_is_made_once_on_first_read() -> None:
    request = make_request(X_Request_ID="from-client")
    first = request.request_id
    assert first == request.request_id
    assert first != "from-client"
    assert AccessLogFormatter("{request_id}")(request, 200, 0, 0.0) == first
    assert first != make_request().request_id


def test_the_public_classes_can_be_subclassed() -> None:
    """Also compiled by mypyc (allow_interpreted_subclasses): an application may extend them."""

    class Upper(AccessLogFormatter):
        def __call__(self, request: Request, status: int, bytes_sent: int, duration: float) -> str:
            return super().__call__(request, status, bytes_sent, duration).upper()

    class Quiet(AccessLogger):
        pass

    assert Upper("{method} {status}")(make_request(), 200, 0, 0.0) == "GET 200"
    assert isinstance(Quiet(), AccessLogger)
