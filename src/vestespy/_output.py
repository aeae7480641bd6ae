"""Bytes on their way to one client: the queue between the threads that write a response and
the loop thread that sends it.

Theory of operation: response bytes are produced on any thread (a listener on a pool thread,
or the loop thread) and sent only by the loop thread. An :class:`OutputBuffer` holds what is
between them:

* the queued pieces and their total (:attr:`~OutputBuffer.size`, which also counts what the
  transport holds in its backlog until :meth:`~OutputBuffer.sent` says the kernel took it);
* whether a flush is scheduled: the first piece queued after a flush asks the loop for one
  flush (``request_flush``); the flush takes everything queued in one piece, so all responses
  made ready in one loop pass leave in one ``send``;
* which messages end among the queued pieces (a marker each), so the loop knows which
  responses are out.

It has no lock: its owner, the connection's writer (:class:`~vestespy._wire.Wire`), calls it
only under the writer's lock, the same lock that orders the driver calls producing the bytes
(h11 is not thread-safe, and bytes must be queued in the order it produced them). The
high-water wait lives in the writer too, with the lock it waits on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

from ._segment import FileSegment

__all__ = ["OutputBuffer", "Piece", "coalesce"]

# Queued pieces up to this size in all are joined into one send; past it they are sent one by
# one, so that a large body is never copied (a 10 MB send_all used to be copied whole here).
_JOIN_LIMIT = 64 * 1024

#: What may be queued: bytes, or a file range the kernel sends (``Response.send_file``).
Piece = bytes | FileSegment

#: What marks the end of a message in the queue (the connection uses its exchanges).
Marker = TypeVar("Marker")


class OutputBuffer(Generic[Marker]):
    """Bytes queued for one client (not thread-safe: its owner holds a lock around every call).

    Args:
        request_flush: Asks the loop for one flush; called at most once between two
            :meth:`take` calls.
    """

    __slots__ = (
        "_ended",
        "_flush_requested",
        "_has_file",
        "_pieces",
        "_request_flush",
        "closed",
        "size",
    )

    def __init__(self, request_flush: Callable[[], None]) -> None:
        self._request_flush = request_flush
        self._pieces: list[Piece] = []
        self._has_file = False  # a FileSegment is among the pieces: they must not be joined
        #: Bytes queued or in the transport's backlog, not yet taken by the kernel.
        self.size = 0
        #: Set once no more bytes may be queued (the connection is closing or closed).
        self.closed = False
        self._ended: list[Marker] = []  # markers of the messages that end in the queue
        self._flush_requested = False

    def append(self, data: bytes, ended: Marker | None = None) -> None:
        """Queue ``data`` (may be empty); ``ended`` marks the message it ends, if it does."""
        if data:
            self._pieces.append(data)
            self.size += len(data)
        if ended is not None:
            self._ended.append(ended)
        if not self._flush_requested:
            self._flush_requested = True
            self._request_flush()

    def append_sent(self, ended: Marker, flush: bool) -> None:
        """Record the end of a message whose bytes the kernel already took, sent by the owner
        itself with nothing queued or unsent before them; ask for a flush (to report it)
        only if ``flush``, else the next :meth:`take` reports it."""
        self._ended.append(ended)
        if flush and not self._flush_requested:
            self._flush_requested = True
            self._request_flush()

    def extend(self, pieces: Sequence[Piece], has_file: bool = False) -> None:
        """Queue several pieces, in order; ``has_file`` if a :class:`FileSegment` is among
        them (the pieces of that take are then never joined)."""
        if has_file:
            self._has_file = True
        out = self._pieces
        for piece in pieces:
            out.append(piece)
            self.size += len(piece)
        if not self._flush_requested:
            self._flush_requested = True
            self._request_flush()

    def discard(self) -> None:
        """Close and drop what is queued: the connection is gone."""
        self.closed = True
        self._pieces = []  # a FileSegment among them closes its descriptor when dropped
        self._has_file = False
        self.size = 0

    def take(self) -> tuple[list[Piece], bool, Sequence[Marker]]:
        """Take everything queued: the pieces, whether they may be joined (no file segment
        among them), and the markers of the messages they end. The bytes still count in
        :attr:`size` until :meth:`sent` reports them taken. See :func:`coalesce`."""
        self._flush_requested = False
        pieces = self._pieces
        ended: Sequence[Marker] = self._ended
        if ended:
            self._ended = []
        else:
            ended = ()
        if not pieces:
            return pieces, True, ended
        self._pieces = []
        if self._has_file:
            self._has_file = False
            return pieces, False, ended
        return pieces, True, ended

    def has_pending(self) -> bool:
        """Whether pieces wait for the next :meth:`take`."""
        return bool(self._pieces)

    def sent(self, count: int) -> None:
        """Record that the kernel took ``count`` bytes."""
        self.size -= count


def coalesce(pieces: list[Piece], joinable: bool) -> bytes | list[Piece]:
    """What one flush sends of ``pieces``: small pieces joined into one (one ``send`` for
    every response of a loop pass); a large piece (a big ``send_all`` body) or a file segment
    among them leaves the list as it is, so that nothing is copied. Called without the lock.
    """
    if not pieces:
        return b""
    if not joinable:
        return pieces
    data = cast("list[bytes]", pieces)  # no file segment was queued: bytes only
    if len(data) == 1:
        return data[0]
    size = 0
    for piece in data:
        size += len(piece)
    if size <= _JOIN_LIMIT:
        return b"".join(data)
    return pieces
