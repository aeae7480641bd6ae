"""The socket side of one client connection (loop thread only).

Theory of operation: a :class:`Transport` is the only object that calls the socket. It reads
what the kernel has, sends what it is given, keeps what the kernel did not take (the
*backlog*) and asks the backend for write readiness only while a backlog exists. Read interest
is the owner's choice (:meth:`Transport.set_reading`); write interest follows the backlog.

Socket errors are mapped in one place, :meth:`Transport._failed`: ``BlockingIOError`` and
``InterruptedError`` mean "not now" and are retried when the backend says so; any other
``OSError`` means the connection is lost, which the transport reports once through the
``on_lost`` callback its owner gave it (the owner closes the connection).

Closing politely is *lingering*: after the last response the transport shuts down its write
side (FIN) and reads and discards until the client closes too, so that the client receives the
response instead of a reset caused by unread bytes.

Every method runs on the loop thread.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from ._backends import EVENT_READ, EVENT_WRITE, Backend

__all__ = ["RECV_SIZE", "Transport"]

logger: logging.Logger = logging.getLogger("vestespy")

# The most one read takes. ``recv(n)`` allocates n bytes before it knows how many arrive, so n
# stays below glibc's mmap threshold (128 KiB): past it every read is an mmap/munmap pair,
# measured here at ~11 us per call, a fifth of a small request's whole cost. 124 KiB leaves
# room for the bytes object's header and halves the reads of a bulk upload against 64 KiB.
RECV_SIZE = 124 * 1024

# What a non-blocking socket call raises when it must simply be retried later.
_RETRY = (BlockingIOError, InterruptedError)


class Transport:
    """A connected, non-blocking socket registered with the loop's backend.

    Args:
        sock: The connected socket (non-blocking).
        backend: The loop's selector backend.
        on_ready: The backend callback, ``on_ready(events)``.
        on_lost: Called once when a socket call fails for good.
    """

    __slots__ = (
        "_backend",
        "_backlog",
        "_on_lost",
        "_on_ready",
        "_reading",
        "_registered",
        "closed",
        "fd",
        "lingering",
        "sock",
    )

    def __init__(
        self,
        sock: socket.socket,
        backend: Backend,
        on_ready: Callable[[int], None],
        on_lost: Callable[[], None],
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self._backend = backend
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._backlog = bytearray()  # bytes the kernel did not take yet
        self._registered = 0  # the events the backend watches for
        self._reading = True
        self.lingering = False
        self.closed = False
        self._set_interest(EVENT_READ)

    @property
    def has_backlog(self) -> bool:
        """Whether bytes wait for the kernel to take them."""
        return bool(self._backlog)

    def recv(self) -> bytes | None:
        """Return what the kernel has: ``b""`` once the client closed, None if nothing yet.

        None is also returned when the connection is lost (``on_lost`` has been called).
        """
        try:
            return self.sock.recv(RECV_SIZE)
        except OSError as exc:
            self._failed(exc)
            return None

    def send(self, data: bytes) -> int:
        """Send ``data`` or keep what the kernel does not take; return the count taken now."""
        if self._backlog:
            self._backlog += data
            return 0
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            if self._failed(exc):
                return 0
            sent = 0
        if sent < len(data):
            self._backlog = bytearray(memoryview(data)[sent:])
            self._update_interest()
        return sent

    def send_backlog(self) -> int:
        """Send what the backlog holds, when the backend says the socket is writable."""
        backlog = self._backlog
        try:
            sent = self.sock.send(backlog)
        except OSError as exc:
            self._failed(exc)
            return 0
        del backlog[:sent]
        if not backlog:
            self._update_interest()
        return sent

    def set_reading(self, reading: bool) -> None:
        """Watch for readability or stop (reading is on while lingering, whatever asked)."""
        if reading != self._reading:
            self._reading = reading
            self._update_interest()

    def discard_input(self) -> None:
        """While lingering: read and drop what the client sends; close once it closes."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except OSError as exc:
            self._failed(exc)
            return
        if not data:
            self._on_lost()

    def linger(self) -> bool:
        """Shut down the write side and wait for the client to close.

        Returns:
            False if the socket failed (``on_lost`` has been called).
        """
        self.lingering = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._failed(exc)
            return False
        self._update_interest()
        return True

    def close(self) -> None:
        """Unregister and close the socket (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._set_interest(0)
        except (KeyError, ValueError, OSError):
            pass
        self.sock.close()

    # -- internals ------------------------------------------------------------------------

    def _failed(self, exc: OSError) -> bool:
        """Map a socket exception: False to retry later, True if the connection is lost."""
        if isinstance(exc, _RETRY):
            return False
        logger.debug("connection %d lost: %s", self.fd, exc)
        if not self.closed:
            self._on_lost()
        return True

    def _update_interest(self) -> None:
        if self.closed:
            return
        events = EVENT_WRITE if self._backlog else 0
        if self._reading or self.lingering:
            events |= EVENT_READ
        self._set_interest(events)

    def _set_interest(self, events: int) -> None:
        registered = self._registered
        if events == registered:
            return
        backend = self._backend
        if not events:
            backend.unregister(self.fd)
        elif not registered:
            backend.register(self.fd, events, self._on_ready)
        else:
            backend.modify(self.fd, events, self._on_ready)
        self._registered = events
