"""The access log formatter: fields, escaping, the logger hook."""

from __future__ import annotations

import logging
import re

import pytest

from vestespy import Headers, Request
from vestespy.access_log import COMBINED_FORMAT, FIELDS, AccessLogFormatter, AccessLogger, escape


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
