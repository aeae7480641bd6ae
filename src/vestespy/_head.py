"""A response head as one value: what a response hands its connection to start.

It travels from :class:`~vestespy.Response` through the exchange to the writer
(:class:`~vestespy._wire.Wire`), which gives it to h11; nobody along the way looks inside.
"""

from __future__ import annotations

__all__ = ["ResponseHead"]


# A plain slotted class: compiled by mypyc, a dataclass's generated __init__ stays interpreted
# (and a frozen one sets each field through object.__setattr__), about 4,800 instructions for a
# value made per response. Nobody changes it once made.
class ResponseHead:
    """The status line and header fields of a final response, encoded."""

    __slots__ = ("headers", "reason", "status")

    def __init__(
        self, status: int, reason: bytes | None, headers: list[tuple[bytes, bytes]]
    ) -> None:
        #: The status code, 200-999.
        self.status: int = status
        #: The reason phrase, or None for the standard one.
        self.reason: bytes | None = reason
        #: The header fields as ``(name, value)`` byte pairs, checked and in order.
        self.headers: list[tuple[bytes, bytes]] = headers
