"""The socket side of one client connection (loop thread only).

Theory of operation: a :class:`Transport` is the only object that calls the socket. It reads
what the kernel has, sends what it is given, keeps what the kernel did not take (the
*backlog*) and asks the backend for write readiness only while a backlog exists. Read interest
is the owner's choice (:meth:`Transport.set_reading`); write interest follows the backlog.

Socket errors are mapped in one place, :meth:`Transport._failed`: ``BlockingIOError`` and
``InterruptedError`` mean "not now" and are retried when the backend says so; any other
``OSError`` (an ``ssl.SSLError`` too) means the connection is lost, which the transport
reports once, through :meth:`Transport._lose`, to the ``on_lost`` callback its owner gave it
(the owner closes the connection). Whether the client reset the connection (ECONNRESET,
EPIPE, ECONNABORTED: the client went away, not a failure here) is kept in
:attr:`Transport.peer_reset` for the owner to read as it closes, so that the callback and the
successful paths carry nothing for it. Every read of the socket goes through
:meth:`Transport.recv` (a :class:`TLSTransport` calls it for the records it decrypts, and to
discard input while lingering).

File ranges (:class:`~vestespy._segment.FileSegment`, from ``Response.send_file``) travel in
the same lists and backlog as bytes and are sent with ``os.sendfile``, one bounded step per
write readiness; only a plain TCP transport is given them.

Closing politely is *lingering*: after the last response the transport shuts down its write
side (FIN) and reads and discards until the client closes too, so that the client receives the
response instead of a reset caused by unread bytes.

TLS (:class:`TLSTransport`) is a layer inside the transport: an ``ssl.SSLObject`` over two
memory BIOs turns what the socket reads into plaintext and what the connection sends into
records, and the socket side (backlog, interest, lingering) stays as for plain TCP. With
memory BIOs OpenSSL never blocks and never asks to retry a write with the same buffer, so the
handshake is driven by readability like any read, and the loop never waits on a client.

Every method runs on the loop thread, but :meth:`Transport.send_now` (a pool thread's direct
send of a whole response, under the connection's writer lock: see its docstring).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

from ._backends import EVENT_READ, EVENT_WRITE, Backend
from ._segment import FileSegment, FileTruncated

__all__ = ["RECV_SIZE", "TLSTransport", "Transport"]

logger: logging.Logger = logging.getLogger("vestespy.error")

# The most one read takes. ``recv(n)`` allocates n bytes before it knows how many arrive, so n
# stays below glibc's mmap threshold (128 KiB): past it every read is an mmap/munmap pair,
# measured here at ~11 us per call, a fifth of a small request's whole cost. 124 KiB leaves
# room for the bytes object's header and halves the reads of a bulk upload against 64 KiB.
RECV_SIZE = 124 * 1024

# Backlog pieces smaller than this are joined (up to it) before a send, so that many small
# queued writes do not cost one system call each.
_COALESCE = 64 * 1024

# What a non-blocking socket call raises when it must simply be retried later.
_RETRY = (BlockingIOError, InterruptedError)
# What a socket call raises when the client reset the connection or is gone (ECONNRESET,
# EPIPE, ECONNABORTED): the peer's doing, not a local failure.
_PEER_RESET = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


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
        "handshaking",
        "lingering",
        "peer_reset",
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
        # What the kernel did not take yet: views of the bytes given, never copies of them,
        # and file segments. Made by the first send the kernel does not take whole, dropped
        # once sent: an empty deque is 760 bytes, and an idle connection has nothing to send.
        self._backlog: deque[memoryview | FileSegment] | None = None
        self._registered = 0  # the events the backend watches for
        self._reading = True
        self.lingering = False
        self.closed = False
        #: Whether the connection was lost to a reset by the client (see the module's
        #: docstring); set before ``on_lost`` is called.
        self.peer_reset = False
        #: Whether a TLS handshake is under way (never for plain TCP).
        self.handshaking = False
        self._set_interest(EVENT_READ)

    @property
    def has_backlog(self) -> bool:
        """Whether bytes wait for the kernel to take them."""
        return bool(self._backlog)

    def recv(self) -> bytes | None:
        """Return what the kernel has: ``b""`` once the client closed, None if nothing yet.

        None is also returned when the connection is lost (``on_lost`` has been called). The
        one read of the socket: :class:`TLSTransport` calls it for the raw records.
        """
        try:
            return self.sock.recv(RECV_SIZE)
        except OSError as exc:
            self._failed(exc)
            return None

    def send(self, data: bytes | list[bytes | FileSegment]) -> int:
        """Send ``data`` (bytes, or pieces in order) or keep what the kernel does not take;
        return the count taken now."""
        if isinstance(data, list):
            taken = 0
            for piece in data:
                if isinstance(piece, FileSegment):
                    taken += self._send_segment(piece)
                else:
                    taken += self.send(piece)
                if self.closed:
                    break
            return taken
        backlog = self._backlog
        if backlog:
            if data:
                backlog.append(memoryview(data))
            return 0
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            if self._failed(exc):
                return 0
            sent = 0
        if sent < len(data):
            self._backlog = deque((memoryview(data)[sent:],))
            self._update_interest()
        return sent

    def send_now(self, data: bytes) -> int:
        """Send ``data`` off the loop thread (the wire's direct send); return the count the
        kernel took, 0 if it took nothing or the socket failed.

        The one method of a transport that runs on another thread, and only as the
        connection's :class:`~vestespy._wire.Wire` calls it: its lock held, its output not
        closed, nothing queued or unsent (no backlog). Why that is safe with the loop thread
        using the same socket at the same time:

        * the descriptor is this connection's: the socket is closed only by :meth:`close`,
          which the connection calls only after closing the wire's output under the same
          lock, so it is still open (its number not reused by another client);
        * the loop sends nothing meanwhile: it sends only what it took from the wire, which
          counts as unsent until sent, and a direct send needs nothing unsent; reading the
          socket on the loop thread while this thread writes it is safe (a full-duplex
          socket);
        * nothing loop-owned changes: no backlog, no interest, no close. A failure is left to
          the loop, whose own send of the same connection finds it and closes.
        """
        # No look at ``closed`` (the loop's field): the wire's open output stands for it.
        try:
            return self.sock.send(data)
        except OSError:  # would block (left to the loop), or failed (found by the loop)
            return 0

    def send_backlog(self) -> int:
        """Send what the backlog holds, when the backend says the socket is writable."""
        backlog = self._backlog
        if not backlog:
            return 0  # a readiness report older than the send that emptied it
        first = backlog[0]
        if isinstance(first, FileSegment):
            return self._send_backlog_segment(first)
        if len(first) < _COALESCE and len(backlog) > 1:
            parts = []
            size = 0
            while backlog and size < _COALESCE:
                part = backlog[0]
                if isinstance(part, FileSegment):
                    break  # sent on its own, with sendfile
                backlog.popleft()
                parts.append(part)
                size += len(part)
            first = memoryview(b"".join(parts))
            backlog.appendleft(first)
        try:
            sent = self.sock.send(first)
        except OSError as exc:
            self._failed(exc)
            return 0
        if sent == len(first):
            backlog.popleft()
        else:
            backlog[0] = first[sent:]
        if not backlog:
            self._backlog = None
            self._update_interest()
        return sent

    def _send_segment(self, segment: FileSegment) -> int:
        """Send a file segment, or keep it in the backlog; return the count taken now."""
        if not len(segment):
            return 0
        if self._backlog:
            self._backlog.append(segment)
            return 0
        self._backlog = deque((segment,))
        sent = self._send_backlog_segment(segment)
        if self._backlog and not self.closed:
            self._update_interest()
        return sent

    def _send_backlog_segment(self, segment: FileSegment) -> int:
        """One sendfile step for the segment first in the backlog."""
        try:
            sent = segment.send_to(self.fd)
        except FileTruncated as exc:
            # The response cannot be completed: the client must see the connection close.
            logger.warning("connection %d: %s; closing it", self.fd, exc)
            self._lose()
            return 0
        except OSError as exc:
            self._failed(exc)
            return 0
        backlog = self._backlog
        if not segment.remaining and backlog:
            backlog.popleft()
            if not backlog:
                self._backlog = None
                self._update_interest()
        return sent

    def set_reading(self, reading: bool) -> None:
        """Watch for readability or stop (reading is on while lingering, whatever asked)."""
        if reading != self._reading:
            self._reading = reading
            self._update_interest()

    def discard_input(self) -> None:
        """While lingering: read and drop what the client sends; close once it closes."""
        # The raw bytes: a TLS client's records are dropped undecrypted.
        if Transport.recv(self) == b"":
            self._lose()

    def input_waiting(self) -> bool:
        """Whether the client has sent bytes the loop has not read yet (a peek).

        A draining server asks before closing an idle keep-alive connection: a request that
        reached the kernel after the loop's last look would otherwise be cut with no answer
        (a proxy retries no POST), so the race is down to the peek and the shutdown.
        """
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK))
        except OSError:  # nothing yet (the socket does not block), or gone
            return False

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
        self._backlog = None  # memory comes back at once, whoever still holds this object

    # -- internals ------------------------------------------------------------------------

    def _failed(self, exc: OSError) -> bool:
        """Map a socket exception: False to retry later, True if the connection is lost."""
        if isinstance(exc, _RETRY):
            return False
        logger.debug("connection %d lost: %s", self.fd, exc)
        if isinstance(exc, _PEER_RESET):
            self.peer_reset = True
        self._lose()
        return True

    def _lose(self) -> None:
        """Report the connection lost to the owner (once: the owner closes the transport)."""
        if not self.closed:
            self._on_lost()

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


# A TLS connection starts with a handshake record (content type 22); a plaintext HTTP request
# starts with a method and a space.
_PLAINTEXT_REQUEST = re.compile(rb"[A-Z]{3,10} ")

_PLAINTEXT_BODY = b"400 Bad Request: this port speaks HTTPS, and a plain HTTP request came\n"
#: The answer to a plaintext HTTP request on a TLS port (as nginx answers it, with 400).
#: The body bytes of PLAINTEXT_ANSWER (for the access log).
PLAINTEXT_BODY_SIZE = len(_PLAINTEXT_BODY)
PLAINTEXT_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PLAINTEXT_BODY), _PLAINTEXT_BODY)
)


class TLSTransport(Transport):
    """A :class:`Transport` that speaks TLS (server side) through memory BIOs.

    :meth:`recv` returns plaintext and :meth:`send` takes plaintext. What :meth:`send` and
    :meth:`send_backlog` return is the plaintext the kernel has taken, as near as records
    allow (never more than was given), so the output buffer's high-water mark still bounds
    what waits for a slow client.

    Args:
        sock: The connected socket (non-blocking).
        backend: The loop's selector backend.
        on_ready: The backend callback, ``on_ready(events)``.
        on_lost: Called once when the connection fails for good (a failed handshake too).
        context: The server's TLS context.
        call_soon: The loop's ``call_soon``, to deliver an end of input found with data.
    """

    __slots__ = (
        "_call_soon",
        "_eof_pending",
        "_first_read",
        "_given",
        "_incoming",
        "_outgoing",
        "_reported",
        "_tls",
        "plaintext_request",
    )

    def __init__(
        self,
        sock: socket.socket,
        backend: Backend,
        on_ready: Callable[[int], None],
        on_lost: Callable[[], None],
        context: ssl.SSLContext,
        call_soon: Callable[..., None],
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._call_soon = call_soon
        self._given = 0  # plaintext bytes handed to send()
        self._reported = 0  # of those, reported as taken by the kernel
        self._eof_pending = False
        self._first_read = True
        #: Set when the client spoke plaintext HTTP to this TLS port (see PLAINTEXT_ANSWER).
        self.plaintext_request = False
        super().__init__(sock, backend, on_ready, on_lost)
        self.handshaking = True

    def handshake(self) -> bool:
        """Take the handshake one step on readability; return True once it is complete.

        False while it goes on, when the client spoke plaintext HTTP
        (:attr:`plaintext_request`), and when it failed (``on_lost`` has been called).
        """
        raw = Transport.recv(self)
        if raw is None:
            return False
        if not raw:
            self._lose()  # the client left mid-handshake
            return False
        first, self._first_read = self._first_read, False
        if first and raw[:1] != b"\x16" and _PLAINTEXT_REQUEST.match(raw):
            self.plaintext_request = True
            self.handshaking = False
            return False
        self._incoming.write(raw)
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_records()
            return False
        except ssl.SSLError as exc:
            logger.debug("TLS handshake on connection %d failed: %s", self.fd, exc)
            self._flush_records()  # the alert, if the kernel takes it
            self._lose()
            return False
        self.handshaking = False
        self._flush_records()
        return not self.closed

    @property
    # Any: as getpeercert() types its dict (str, int or nested tuples, by key).
    def peer_certificate(self) -> dict[str, Any] | None:
        """The client's verified certificate as :meth:`ssl.SSLSocket.getpeercert` gives it.

        None when the client sent none, or when the server does not ask for one.
        """
        try:
            cert: dict[str, Any] | None = self._tls.getpeercert()  # Any: as above
        except ValueError:  # no handshake yet
            return None
        return cert or None

    def recv(self) -> bytes | None:
        """Return the plaintext that arrived, ``b""`` at the end, None if none yet."""
        if self._eof_pending:
            return b""
        raw = Transport.recv(self)
        if raw is None and self.closed:
            return None
        if raw:
            self._incoming.write(raw)
        pieces = []
        try:
            while True:
                piece = self._tls.read(RECV_SIZE)
                if not piece:
                    break
                pieces.append(piece)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            raw = b""  # close_notify: the client is done
        except ssl.SSLError as exc:
            self._failed(exc)
            return None
        if self._outgoing.pending:
            self._flush_records()  # session tickets, key updates
        if raw == b"":
            if pieces:
                # Hand over the data now and the end next (the socket may not signal again).
                self._eof_pending = True
                self._call_soon(self._on_ready, EVENT_READ)
            else:
                return b""
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def send(self, data: bytes | list[bytes | FileSegment]) -> int:
        """Encrypt ``data`` and send the records; return the plaintext count taken.

        Never given file segments: the kernel cannot encrypt, so ``Response.send_file``
        reads the file and sends bytes on a TLS connection (see ``sends_files``).
        """
        for piece in data if isinstance(data, list) else (data,):
            if isinstance(piece, FileSegment):
                raise TypeError("a TLS transport cannot send a file segment")
            if piece:
                self._tls.write(piece)
                self._given += len(piece)
        return self._report(Transport.send(self, self._outgoing.read()))

    def send_backlog(self) -> int:
        """Send what the backlog holds; return the plaintext count taken."""
        return self._report(Transport.send_backlog(self))

    def input_waiting(self) -> bool:
        """Whether records arrived that are not decrypted yet, or bytes wait in the kernel."""
        return self._incoming.pending > 0 or Transport.input_waiting(self)

    def send_plaintext_answer(self) -> None:
        """Answer a plaintext HTTP request with PLAINTEXT_ANSWER, unencrypted."""
        Transport.send(self, PLAINTEXT_ANSWER)

    def linger(self) -> bool:
        """Send close_notify, then shut down the write side and wait for the client."""
        if not self.plaintext_request and not self.handshaking:
            try:
                self._tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass  # our close_notify is written; the client's is not awaited
            if self._outgoing.pending:
                Transport.send(self, self._outgoing.read())
        return super().linger()

    # -- internals ------------------------------------------------------------------------

    def _flush_records(self) -> None:
        data = self._outgoing.read()
        if data:
            Transport.send(self, data)

    def _report(self, taken: int) -> int:
        count = min(taken, self._given - self._reported)
        self._reported += count
        return count
