"""A response head as one value: what a response hands its connection to start.

It travels from :class:`~vestespy.Response` through the exchange to the writer
(:class:`~vestespy._wire.Wire`), which gives it to h11; nobody along the way looks inside.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ResponseHead"]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, measurably slower
# for a value made per response. Nobody changes it once made.
@dataclass(slots=True)
class ResponseHead:
    """The status line and header fields of a final response, encoded."""

    #: The status code, 200-999.
    status: int
    #: The reason phrase, or None for the standard one.
    reason: bytes | None
    #: The header fields as ``(name, value)`` byte pairs, checked and in order.
    headers: list[tuple[bytes, bytes]]
