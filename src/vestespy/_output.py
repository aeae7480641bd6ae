"""Bytes on their way to one client: a thread-safe, bounded output buffer.

Theory of operation: response bytes are produced on any thread (a listener on a pool thread,
or the loop thread) and sent only by the loop thread. An :class:`OutputBuffer` sits between
them and owns everything they share, under its :attr:`~OutputBuffer.lock`:

* the queued pieces and their total (:attr:`~OutputBuffer.size`, which also counts what the
  transport holds in its backlog until :meth:`~OutputBuffer.sent` says the kernel took it);
* whether a flush is scheduled: the first piece queued after a flush asks the loop for one
  flush (``request_flush``); the flush takes everything queued in one piece, so all responses
  made ready in one loop pass leave in one ``send``;
* which messages end among the queued pieces (a marker each), so the loop knows which
  responses are out;
* the high-water wait: a writer off the loop thread waits while :attr:`~OutputBuffer.size` is at
  or above the high-water mark, until the loop reports progress or the buffer closes.

The connection also holds :attr:`~OutputBuffer.lock` around the driver calls that produce the
bytes it queues: h11 is not thread-safe, and bytes must be queued in the order it produced them.
Methods named ``*_locked`` expect the caller to hold it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

from ._segment import FileSegment

__all__ = ["OutputBuffer"]

# Queued pieces up to this size in all are joined into one send; past it they are sent one by
# one, so that a large body is never copied (a 10 MB send_all used to be copied whole here).
_JOIN_LIMIT = 64 * 1024

#: What may be queued: bytes, or a file range the kernel sends (``Response.send_file``).
Piece = bytes | FileSegment

#: What marks the end of a message in the queue (the connection uses its exchanges).
Marker = TypeVar("Marker")


class OutputBuffer(Generic[Marker]):
    """Bytes queued for one client, bounded by a high-water mark (thread-safe).

    Args:
        high_water: Bytes buffered before writers off the loop thread wait.
        request_flush: Asks the loop for one flush; called with the lock held, at most once
            between two :meth:`take` calls.
    """

    __slots__ = (
        "_drained",
        "_ended",
        "_flush_requested",
        "_has_file",
        "_pieces",
        "_request_flush",
        "_waiting",
        "closed",
        "high_water",
        "lock",
        "size",
    )

    def __init__(self, high_water: int, request_flush: Callable[[], None]) -> None:
        #: Guards every field, and orders the driver calls that produce queued bytes.
        self.lock = threading.Lock()
        self._drained = threading.Condition(self.lock)
        self.high_water = high_water
        self._request_flush = request_flush
        self._pieces: list[Piece] = []
        self._has_file = False  # a FileSegment is among the pieces: they must not be joined
        #: Bytes queued or in the transport's backlog, not yet taken by the kernel.
        self.size = 0
        #: Set once no more bytes may be queued (the connection is closing or closed).
        self.closed = False
        self._ended: list[Marker] = []  # markers of the messages that end in the queue
        self._flush_requested = False
        self._waiting = 0  # writers waiting for room

    # -- any thread, lock held -----------------------------------------------------------------

    def append_locked(self, data: bytes, ended: Marker | None = None) -> None:
        """Queue ``data`` (may be empty); ``ended`` marks the message it ends, if it does."""
        if data:
            self._pieces.append(data)
            self.size += len(data)
        if ended is not None:
            self._ended.append(ended)
        if not self._flush_requested:
            self._flush_requested = True
            self._request_flush()

    def extend_locked(self, pieces: Sequence[Piece], has_file: bool = False) -> None:
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

    def wait_for_room_locked(self) -> None:
        """Wait while the buffer is at or above its high-water mark and open.

        Only for threads other than the loop's, which would wait for itself.
        """
        if self.size < self.high_water or self.closed:
            return
        self._waiting += 1
        try:
            while self.size >= self.high_water and not self.closed:
                self._drained.wait()
        finally:
            self._waiting -= 1

    def close_locked(self) -> None:
        """Refuse more bytes from now on and release waiting writers."""
        self.closed = True
        if self._waiting:
            self._drained.notify_all()

    # -- any thread ------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse more bytes from now on and release waiting writers."""
        with self.lock:
            self.close_locked()

    def discard(self) -> None:
        """Close and drop what is queued: the connection is gone."""
        with self.lock:
            self.close_locked()
            self._pieces = []  # a FileSegment among them closes its descriptor when dropped
            self._has_file = False
            self.size = 0

    # -- loop thread ---------------------------------------------------------------------

    def take(self) -> tuple[bytes | list[Piece], Sequence[Marker]]:
        """Take everything queued, and the markers of the messages it ends.

        Small pieces are joined into one (one ``send`` for every response of a loop pass);
        when a large piece is queued (a big ``send_all`` body) or a file segment, the pieces
        are returned as a list so that nothing is copied. The bytes still count in
        :attr:`size` until :meth:`sent` reports them taken.
        """
        with self.lock:
            self._flush_requested = False
            pieces = self._pieces
            ended: Sequence[Marker] = self._ended
            if ended:
                self._ended = []
            else:
                ended = ()
            if not pieces:
                return b"", ended
            self._pieces = []
            if self._has_file:
                self._has_file = False
                return pieces, ended
            size = self._taken_size(pieces)
        data = cast("list[bytes]", pieces)  # no file segment was queued: bytes only
        if len(data) == 1:
            return data[0], ended
        if size <= _JOIN_LIMIT:
            return b"".join(data), ended
        return pieces, ended

    @staticmethod
    def _taken_size(pieces: list[Piece]) -> int:
        total = 0
        for piece in pieces:
            total += len(piece)
        return total

    def has_room(self) -> bool:
        """Whether less than the high-water mark is buffered."""
        with self.lock:
            return self.size < self.high_water

    def has_pending(self) -> bool:
        """Whether pieces wait for the next :meth:`take`."""
        with self.lock:
            return bool(self._pieces)

    def sent(self, count: int) -> None:
        """Record that the kernel took ``count`` bytes; wake writers once below the mark."""
        with self.lock:
            self.size -= count
            if self._waiting and self.size < self.high_water:
                self._drained.notify_all()
