"""The server's view of a :class:`~vestespy.Headers`: its ``(lower, name, value)`` triples.

The connection builds a request's headers from the triples h11 parsed, and the response reads
the application's headers back as triples, both without copying. Module functions in a private
module rather than methods, so that they stay out of the public surface of ``Headers`` and of
:mod:`vestespy.headers`.
"""

from __future__ import annotations

from .headers import Headers

__all__ = ["header_triples", "headers_from_triples", "parse_header_line"]


def headers_from_triples(triples: list[tuple[str, str, str]]) -> Headers:
    """Adopt a list of ``(lower, name, value)`` triples without copying."""
    headers = Headers()
    headers._fields = triples
    return headers


def header_triples(headers: Headers) -> list[tuple[str, str, str]]:
    """Return the ``(lower, name, value)`` triples themselves, not a copy."""
    return headers._fields


def parse_header_line(line: str) -> tuple[str, str]:
    """Split ``"Name: value"`` into a checked ``(name, value)`` pair.

    Raises:
        ValueError: No colon, an empty or invalid name, or a value with CR, LF or NUL.
    """
    from .response import _checked_field

    name, colon, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise ValueError(f"header {line!r}: write it as 'Name: value'")
    try:
        _checked_field(name, value)
    except ValueError as exc:
        raise ValueError(f"header {line!r}: {exc}") from None
    return name, value
