"""The server's view of a :class:`~vestespy.Headers`: its ``(lower, name, value)`` triples.

The connection builds a request's headers from the triples h11 parsed, and the response reads
the application's headers back as triples, both without copying. Module functions in a private
module rather than methods, so that they stay out of the public surface of ``Headers`` and of
:mod:`vestespy.headers`.
"""

from __future__ import annotations

from .headers import Headers

__all__ = ["header_triples", "headers_from_triples"]


def headers_from_triples(triples: list[tuple[str, str, str]]) -> Headers:
    """Adopt a list of ``(lower, name, value)`` triples without copying."""
    headers = Headers()
    headers._fields = triples
    return headers


def header_triples(headers: Headers) -> list[tuple[str, str, str]]:
    """Return the ``(lower, name, value)`` triples themselves, not a copy."""
    return headers._fields
