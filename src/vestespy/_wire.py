"""A connection's writer: the only way to its protocol state and its queued output, from any
thread.

Theory of operation: the loop thread feeds the bytes it reads and takes the protocol events
out; listeners on any thread start responses, write their bodies and end them. Both go through
the :class:`Wire`, which owns the three things they share and the one lock that guards them:

* the sans-IO :class:`~vestespy._driver.Driver` (h11 is not thread-safe);
* the :class:`~vestespy._output.OutputBuffer`, into which the bytes the driver makes are queued
  in the order it made them;
* the high-water wait: a writer off the loop thread waits while more than the high-water mark
  is queued or unsent, until the loop reports progress or the output closes.

The direct send: a whole response ended on a pool thread when nothing is queued or unsent
(the common case: one ``res.end(body)`` per request) is sent by that thread at once, lock held,
with one non-blocking ``send`` (:attr:`Wire.direct_send`), instead of asking the loop thread
for a flush: no wake-up of the loop, no hand-over of the GIL, for the one thing the client
waits for. What the kernel does not take is queued for the loop as usual. The loop still has
to learn that the response is out (its phase, its deadlines): the response's marker waits in
the buffer with :attr:`Wire.sent_directly` set, and the loop takes it before it reads the
connection's next input (``Connection.on_ready``) or looks at its deadlines; a flush is
requested only when the loop waits for that response (the client closed its side, or the
connection must close). A response that a pipelined request waits for is not sent directly:
the loop starts that request first and holds the burst's responses for one ``send`` (see
``_sender``). Why the send is safe off the loop thread is in ``Transport.send_now``.

What a client's next request depends on must not wait for that report, nor for the sending
thread's next steps (the access log, ``"end"``, ``"close"``): the client may have the response
and answer before either. The admission slot of ``limit_concurrency`` is therefore given back
by the exchange before the response's end reaches this wire (see _exchange), and the loop,
which admits the next request, takes the report before it reads the connection again.

Rule: everything that touches the driver or the queued output lives here, and nothing here
touches a socket, a clock or the loop: the connection hands in ``request_flush`` (asks the loop
for one flush), ``in_loop_thread`` and ``on_failure`` (a response failed half-way: the
connection must close).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ._driver import Driver, DriverEvent, RequestRejected, Wait
from ._head import ResponseHead
from ._output import OutputBuffer, Piece, coalesce
from ._segment import FileSegment
from .errors import ClientDisconnected

__all__ = ["Wire"]

#: What marks the end of a response in the queue (the connection uses its exchanges).
Marker = TypeVar("Marker")
#: What a function run under the lock returns (the WebSocket's events).
Result = TypeVar("Result")

# Bodies up to this size, sent whole with their head, are copied into one piece with it.
_ONE_PIECE = 16 * 1024


class Wire(Generic[Marker]):
    """The driver and output buffer of one connection, behind one lock.

    Args:
        driver: The connection's protocol driver.
        high_water: Bytes queued or unsent above which writers off the loop thread wait.
        request_flush: Asks the loop for one flush; called with the lock held, at most once
            between two :meth:`take` calls.
        in_loop_thread: Whether the caller is the loop thread (which must never wait).
        on_failure: Called, lock held, when a response failed half-way (the driver refused
            it): the connection must close. Must not call back into the wire.
    """

    __slots__ = (
        "_driver",
        "_in_loop_thread",
        "_lock",
        "_on_failure",
        "_output",
        "_room",
        "_waiting",
        "direct_send",
        "high_water",
        "request_report",
        "sent_directly",
    )

    def __init__(
        self,
        driver: Driver,
        high_water: int,
        request_flush: Callable[[], None],
        in_loop_thread: Callable[[], bool],
        on_failure: Callable[[], None],
    ) -> None:
        # Guards the driver, the output buffer and _waiting.
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._driver = driver
        self._output: OutputBuffer[Marker] = OutputBuffer(request_flush)
        self._in_loop_thread = in_loop_thread
        self._on_failure = on_failure
        self._waiting = 0  # writers waiting for room
        self.high_water = high_water
        #: Sends bytes now off the loop thread (``Transport.send_now``), or None (TLS). Set
        #: once by the connection before any response can start.
        self.direct_send: Callable[[bytes], int] | None = None
        #: Asks the loop for a flush that only the loop's next step waits for (the report
        #: of a direct send after the client closed its side): the connection defers it to
        #: the end of the strand's tasks. Lock held. Set with direct_send.
        self.request_report: Callable[[], None] = request_flush
        #: A response was sent by a pool thread and its marker waits for :meth:`take` (set
        #: under the lock; the loop reads it without: see the module's direct send).
        self.sent_directly = False

    # == loop thread: input ===================================================================

    def receive(self, data: bytes) -> DriverEvent | Wait:
        """Feed bytes read from the client (``b""``: it closed its side) and return the first
        event they make, as :meth:`next_event` would (one lock for both)."""
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            driver = self._driver
            driver.receive(data)
            event = driver.next_event()
            if type(event) is RequestRejected:
                self._queue_rejection_locked(event)
            return event
        finally:
            lock.release()

    def next_event(self) -> DriverEvent | Wait:
        """The driver's next event; a rejection's answer is queued and the output closed."""
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            event = self._driver.next_event()
            if type(event) is RequestRejected:
                self._queue_rejection_locked(event)
            return event
        finally:
            lock.release()

    def time_out(self, reason: str) -> RequestRejected:
        """Give up on the request being received: a 408 queued if no response started."""
        with self._lock:
            event = self._driver.reject_timeout(reason)
            self._queue_rejection_locked(event)
            return event

    def refuse_keep_alive(self) -> None:
        """End the connection after the current response (the server drains)."""
        with self._lock:
            self._driver.refuse_keep_alive()

    def _queue_rejection_locked(self, event: RequestRejected) -> None:
        if event.response:
            self._output.append(event.response)
        self._close_locked()

    # == loop thread: output ==================================================================

    def take(self) -> tuple[bytes | list[Piece], Sequence[Marker], bool]:
        """Take everything queued for one ``send``, the markers of the responses it ends, and
        whether the connection must close once it is sent (read under the same lock)."""
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            pieces, joinable, ended = self._output.take()
            must_close = self._driver.must_close
            self.sent_directly = False
        finally:
            lock.release()
        if len(pieces) == 1:  # the common case, without a call
            piece = pieces[0]
            if type(piece) is bytes:
                return piece, ended, must_close
        return coalesce(pieces, joinable), ended, must_close  # joined without the lock

    def sent(self, count: int) -> None:
        """Record that the kernel took ``count`` bytes; wake writers once below the mark."""
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            output = self._output
            output.size -= count  # OutputBuffer.sent, without the call on this hot path
            if self._waiting and output.size < self.high_water:
                self._room.notify_all()
        finally:
            lock.release()

    def has_room(self) -> bool:
        """Whether less than the high-water mark is queued or unsent."""
        with self._lock:
            return self._output.size < self.high_water

    def has_pending(self) -> bool:
        """Whether bytes wait for the next :meth:`take`."""
        with self._lock:
            return self._output.has_pending()

    def discard(self) -> None:
        """Close and drop what is queued: the connection is gone."""
        with self._lock:
            self._output.discard()
            self._room.notify_all()

    # == any thread ===========================================================================

    @property
    def waiting_writers(self) -> int:
        """How many writers wait for room (for tests and diagnostics)."""
        with self._lock:
            return self._waiting

    @property
    def closed(self) -> bool:
        """Whether no more bytes may be queued (the connection is closing or closed)."""
        return self._output.closed  # one read of a flag that only ever turns True

    def close(self) -> None:
        """Refuse more bytes from now on and release waiting writers."""
        with self._lock:
            self._close_locked()

    def send_continue(self) -> None:
        """Queue ``100 Continue`` if the client waits for it."""
        with self._lock:
            if not self._output.closed:
                data = self._driver.send_continue()
                if data:
                    self._output.append(data)

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue an interim (1xx) response."""
        with self._lock:
            if not self._output.closed:
                self._output.append(self._driver.send_informational(status, headers))

    def start(self, head: ResponseHead, body: bytes, ended: Marker | None) -> None:
        """Queue a response head, its first body bytes and, if ``ended`` marks it, its end.

        Never waits; dropped if the output is closed (the connection is going).
        """
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            output = self._output
            if output.closed:
                return
            driver = self._driver
            try:
                data = driver.start_response(head.status, head.headers, head.reason)
                if body and ended is not None and len(body) <= _ONE_PIECE:
                    # A small whole response leaves as one piece: one append, nothing to
                    # join at the flush (a copy of a few KiB costs less).
                    data += driver.send_small_body(body)
                elif body:
                    output.append(data)
                    output.extend(driver.send_body(body))
                    data = b""
                if ended is not None:
                    data += driver.end_response()
            except Exception:
                self._fail_locked()
                raise
            send = self.direct_send
            if (
                send is not None
                and ended is not None
                and not output.size
                and not driver.holds_pipelined
                and not self._in_loop_thread()
            ):
                # Nothing queued or unsent before this whole response (size counts the
                # loop's taken but unsent bytes too): it may go out now, in order. Not when
                # a pipelined request waits: the loop holds the burst's responses for one
                # send (see _sender), and starts that request first anyway.
                self._send_directly_locked(send, data, ended)
                return
            output.append(data, ended)
        finally:
            lock.release()

    def write(self, data: bytes) -> None:
        """Queue body bytes; off the loop thread, wait while the output is over its mark.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._queue(data, False, None)

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue ``count`` bytes of the regular file ``fd`` from ``offset``, sent by the
        kernel; waits as :meth:`write` does. The segment holds its own descriptor, so the
        caller may close the file once this returns.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._queue(FileSegment(fd, offset, count), True, None)

    def end(self, ended: Marker) -> None:
        """Queue the end of the response that ``ended`` marks.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._queue(None, False, ended)

    def fail(self) -> None:
        """The response cannot be completed: the connection must close."""
        with self._lock:
            self._fail_locked()

    # -- after an upgrade: the WebSocket's frames ----------------------------------------------

    def switch_protocols(self, headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bool]:
        """Queue ``101 Switching Protocols`` (h11 moves to ``SWITCHED_PROTOCOL``) and return
        the bytes the client sent after its request, and whether it closed its side.

        Raises:
            ClientDisconnected: The connection closed.
        """
        with self._lock:
            if self._output.closed:
                raise ClientDisconnected("the client closed the connection during the handshake")
            driver = self._driver
            self._output.append(driver.send_informational(101, headers))
            return driver.trailing_data()

    def feed_frames(self, receive: Callable[[], tuple[Result, bytes]]) -> Result:
        """Run ``receive`` under the lock and queue the bytes it returns (loop thread)."""
        with self._lock:
            result, data = receive()
            if data and not self._output.closed:
                self._output.append(data)
            return result

    def queue_frames(self, make: Callable[[], bytes], wait: bool) -> None:
        """Queue what ``make`` frames, under the lock; if ``wait``, off the loop thread, first
        wait while the output is over its mark.

        Raises:
            ClientDisconnected: The connection closed.
        """
        with self._lock:
            output = self._output
            if wait and output.size >= self.high_water and not self._in_loop_thread():
                self._wait_for_room_locked()
            if output.closed:
                raise ClientDisconnected("the connection closed")
            data = make()
            if data:
                output.append(data)

    # -- internals, lock held --------------------------------------------------------------

    def _queue(self, data: bytes | FileSegment | None, is_file: bool, ended: Marker | None) -> None:
        """Queue a piece of body (``data``) or the end of a response (``ended``)."""
        with self._lock:
            output = self._output
            if data is not None and output.size >= self.high_water and not self._in_loop_thread():
                self._wait_for_room_locked()
            if output.closed:
                raise ClientDisconnected.closed_mid_response()
            driver = self._driver
            try:
                if data is not None:
                    output.extend(driver.send_body(data), is_file)
                else:
                    output.append(driver.end_response(), ended)
            except Exception:
                self._fail_locked()
                raise

    def _send_directly_locked(
        self, send: Callable[[bytes], int], data: bytes, ended: Marker
    ) -> None:
        """Send a whole response off the loop thread; queue what the kernel did not take."""
        # Set before the send: the client may answer the response (the next request, its
        # close) as soon as it has it, and the loop must then see the flag (the GIL orders
        # this write before what the client's bytes make the loop do). Before the report is
        # queued it only makes the loop take early, and wait at the lock.
        self.sent_directly = True
        sent = send(data)
        output = self._output
        if sent < len(data):
            output.append(data[sent:] if sent else data, ended)  # the loop sends the rest
            return
        driver = self._driver
        # The loop is woken only when it waits for this response, else not at all: a flush
        # at once when the connection must close (the client may wait for the close), at
        # the end of the listener's task when the client closed its side (a pipelined
        # request held back takes no direct send: see start).
        if driver.must_close:
            output.append_sent(ended, True)
        else:
            output.append_sent(ended, False)
            if driver.waits_for_response:
                self.request_report()

    def _wait_for_room_locked(self) -> None:
        # Only off the loop thread, which would wait for itself.
        output = self._output
        self._waiting += 1
        try:
            while output.size >= self.high_water and not output.closed:
                self._room.wait()
        finally:
            self._waiting -= 1

    def _close_locked(self) -> None:
        self._output.closed = True
        if self._waiting:
            self._room.notify_all()

    def _fail_locked(self) -> None:
        self._driver.fail()
        self._close_locked()
        self._on_failure()
