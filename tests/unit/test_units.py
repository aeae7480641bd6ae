"""Sizes and durations with units, as the command's flags read them."""

from __future__ import annotations

import dataclasses

import pytest

from vestespy import ServerOptions
from vestespy._units import option_unit, parse_duration, parse_size, size_reader


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("10M", 10 * 1024**2),
        ("10m", 10 * 1024**2),
        ("64K", 64 * 1024),
        ("64KiB", 64 * 1024),
        ("64kib", 64 * 1024),
        ("1G", 1024**3),
        ("2GiB", 2 * 1024**3),
        ("1T", 1024**4),
        ("10MB", 10_000_000),
        ("64kB", 64_000),
        ("1.5K", 1536),
        (" 8 KiB ", 8192),
        ("100B", 100),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10X", "'10X' is not a size"),
        ("M", "'M' is not a size"),
        ("", "'' is not a size"),
        ("10 M B", "is not a size"),
        ("0.5", "not a whole number of bytes"),
        ("-1", "'-1': a size cannot be negative"),
        ("1e3", "is not a size"),
    ],
)
def test_bad_sizes(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("2.5", 2.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h 2m 3s", 3723.0),
        ("2M", 120.0),  # minutes in any case: a duration has no megabytes
        (".5s", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10x", "30 seconds", "1m30", "m30s", "1.2.3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_negative_duration() -> None:
    with pytest.raises(ValueError, match="a duration cannot be negative"):
        parse_duration("-1s")


def test_optional_reader_takes_none() -> None:
    assert size_reader(optional=True)("none") is None
    assert size_reader(optional=True)("off") is None
    assert size_reader(optional=True)("1K") == 1024
    with pytest.raises(ValueError, match="'none' is not a size"):
        size_reader()("none")


def test_every_server_option_is_classified_on_purpose() -> None:
    """A new ServerOptions field lands here: decide whether its flag takes units."""
    units = {field.name: option_unit(field.name) for field in dataclasses.fields(ServerOptions)}
    assert {name for name, unit in units.items() if unit == "size"} == {
        "max_header_size",
        "write_buffer_size",
        "max_body_size",
        "max_body_buffer",
        "max_drain",
        "max_request_line",
        "websocket_max_message_size",
    }
    assert {name for name, unit in units.items() if unit == "duration"} == {
        "keep_alive_timeout",
        "client_timeout",
        "header_timeout",
        "rate_grace_period",
        "linger_timeout",
        "unanswered_warning",
        "websocket_ping_interval",
        "websocket_ping_timeout",
        "websocket_close_timeout",
    }
    # Each size is an int field and each duration a float one, as the readers return.
    types = {field.name: str(field.type) for field in dataclasses.fields(ServerOptions)}
    for name, unit in units.items():
        if unit == "size":
            assert types[name] in ("int", "int | None"), name
        elif unit == "duration":
            assert types[name] in ("float", "float | None"), name
