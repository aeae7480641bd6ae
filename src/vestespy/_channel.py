"""What the public :class:`~vestespy.Request` and :class:`~vestespy.Response` need from the
server: the interfaces an exchange implements for them (see ``_exchange.py``).

They are protocols so that a request or response can be built on anything that provides
these methods (the tests build them on fakes), and so that the public modules import nothing
of the connection machinery.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._head import ResponseHead

__all__ = ["ContinueSender", "ResponseChannel"]


class ContinueSender(Protocol):
    """What a request needs: a way to answer ``Expect: 100-continue``."""

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client is waiting for it (thread-safe)."""


class ResponseChannel(Protocol):
    """What a response needs: where its bytes go."""

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread."""

    def start(self, head: ResponseHead, body: bytes, end: bool) -> None:
        """Queue the head, ``body`` and, if ``end``, the end of the message (never blocks)."""

    def write(self, data: bytes) -> None:
        """Queue body bytes; off the loop thread, wait while the output buffer is full."""

    def sends_files(self) -> bool:
        """Whether :meth:`write_file` may be used (plain TCP: the kernel sends the file)."""

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue ``count`` bytes of the regular file ``fd`` from ``offset``; off the loop
        thread, wait while the output buffer is full. ``fd`` is duplicated: the caller may
        close its file once this returns."""

    def finish(self) -> None:
        """Queue the end of the message."""

    def stream_from_loop(self, chunks: Iterator[bytes]) -> None:
        """Let the loop pull ``chunks`` as the client reads, then end the message."""

    def abort(self) -> None:
        """Close the connection without completing the message."""

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue an interim (1xx) response."""
