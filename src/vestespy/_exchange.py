"""One request and its response: the order of their events, whatever the threads.

Theory of operation: the loop thread parses a request and *posts* its events to the
connection's strand (a serial queue on the worker pool, or inline on the loop), where an
:class:`Exchange` delivers them to listeners: ``"request"``, then ``"data"`` for each piece of
body, then ``"end"`` or ``"error"``. The response is written from any thread (the listener's,
or one the application started) through the exchange, which is the response's channel.

``"close"`` comes last and once, after both sides are over:

* the *request side* is over when ``"end"`` or ``"error"`` has been **delivered** (on the
  strand), not when the loop parsed the end: a listener that answers while ``"end"`` is still
  queued must not see ``"close"`` before it;
* the *response side* is over when the response ended, or can no longer be sent because the
  connection closed or failed.

Whichever side finishes second claims ``"close"`` under the exchange's lock, so exactly one
claim succeeds: on the strand it is delivered at once (after the ``"end"`` just delivered),
from any other thread it is posted to the strand (behind everything already queued there).

A server with ``limit_concurrency`` gives each admitted exchange a *release* (see
:meth:`Exchange.hold_slot`), called once when the request is read to its end **and** its
response is complete, whichever comes second, by that side's thread:

* the request side when the loop parsed the end (or gave up on the request), not when
  ``"end"`` is delivered;
* the response side when the response is about to be completed, *before* its last bytes are
  queued, let alone sent (or when it never will be).

So a client that has its whole response, and the request it sends next, find the slot free:
either the thread that completed the response gave it back before the bytes could leave,
or the loop did, before it read anything else. (``"close"`` is too late for this: it waits for
the strand, which may deliver ``"end"`` only after a pool thread sent the response itself, or
after the loop flushed it; a client that was quick enough got 503.)

A listener that raises is logged; the client gets a 500 if no response head was sent, else the
connection closes. Later events of that request, but ``"close"``, are not delivered.

Fields are labelled with the thread that may touch them.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._detach import detach
from ._emitter import drop_listeners
from ._errorpage import answer_with_error
from ._header_fields import headers_from_triples
from .errors import BadRequest, ClientDisconnected

if TYPE_CHECKING:
    from ._head import ResponseHead
    from ._pool import SerialQueue
    from ._wire import Wire
    from .access_log import AccessHook
    from .request import Request
    from .response import Response

__all__ = ["Exchange", "ExchangeHost", "LoggedExchange"]

logger: logging.Logger = logging.getLogger("vestespy.error")

# The sides of an exchange over for its admission slot (Exchange._release_sides).
_PARSED: Final = 1  # the loop read the request to its end, or gave up on it
_RESPONDED: Final = 2  # the response is complete (its end about to be queued), or never will be
_BOTH_SIDES: Final = _PARSED | _RESPONDED


class ExchangeHost(Protocol):
    """What an exchange needs from its connection (every method: any thread).

    Response bytes do not go through the host: the exchange writes to the connection's
    :attr:`wire` directly.
    """

    #: The connection's serial queue of listener calls.
    strand: SerialQueue
    #: Calls the server's ``"request"`` listeners: ``emit("request", req, res)``.
    emit_request: Callable[..., object]
    #: Whether a 500 page carries the traceback.
    debug: bool
    #: The access log hook (read by :class:`LoggedExchange` only).
    access_log: AccessHook | None

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread."""

    def sends_files(self) -> bool:
        """Whether :meth:`Wire.write_file` may be used (plain TCP: the kernel sends files)."""

    def stream_from_loop(self, exchange: Exchange, chunks: Iterator[bytes]) -> None:
        """Let the loop pull ``chunks`` as the client reads, then end the response."""

    def abort(self) -> None:
        """Close the connection without completing the response."""

    def resume_body(self) -> None:
        """Tell the loop that the listeners caught up with the request body."""


class Exchange:
    """One request and its response on a connection.

    The exchange is the request's :class:`~vestespy._channel.ContinueSender` and the
    response's :class:`~vestespy._channel.ResponseChannel`.

    Args:
        host: The connection.
        wire: The connection's writer, where the response's bytes are queued.
        lock: Guards the exchange's shared fields. The connection's exchanges share one (they
            follow each other), which saves making a lock per request.
        max_body_buffer: Body bytes posted but not yet delivered above which the loop stops
            reading (0: no accounting, for inline listeners, which cannot fall behind).
    """

    __slots__ = (
        "_close_claimed",
        "_host",
        "_lock",
        "_max_body_buffer",
        "_pending_body",
        "_release",
        "_release_sides",
        "_request_over",
        "_response_over",
        "_wire",
        "body_sent",
        "ends_with_head",
        "failed",
        "received",
        "request",
        "response",
        "response_sent",
        "started_at",
    )

    request: Request
    response: Response

    def __init__(
        self, host: ExchangeHost, wire: Wire[Exchange], lock: threading.Lock, max_body_buffer: int
    ) -> None:
        self._host = host
        self._wire = wire
        # Guards the four fields below it and the two of the admission slot. Never held while
        # another lock is taken (nor while the slot's release runs).
        self._lock = lock
        self._request_over = False  # "end" or "error" delivered
        self._response_over = False  # the response ended, or never will
        self._close_claimed = False
        self._pending_body = 0  # body bytes posted, not yet delivered
        self._max_body_buffer = max_body_buffer
        # The admission slot's release (see hold_slot), and which sides are over for it
        # (_PARSED, _RESPONDED). Set on the loop thread before "request" is posted; cleared
        # under the lock by the one call that claims it (read without it: a stale value only
        # costs taking the lock to find it cleared).
        self._release: Callable[[], object] | None = None
        self._release_sides = 0
        # Loop thread only:
        self.received = False  # the request is parsed to its end (or rejected)
        # The request's end was parsed with its head (no body), before post_request: "end"
        # goes with "request", in the same strand task, and post_end does nothing.
        self.ends_with_head = False
        self.response_sent = False  # the response's end was handed to the transport
        # Strand only: a listener raised, so later events (but "close") are dropped.
        self.failed = False
        # The server's counters (_stats): when the head was read (loop thread), and the body
        # bytes queued (the writing thread; read by the loop once the response is sent).
        self.started_at = 0.0
        self.body_sent = 0

    # == loop thread: posting the request's events ================================================

    def hold_slot(self, release: Callable[[], object]) -> None:
        """Call ``release()`` once, when the request is read to its end and its response is
        complete (or either never will be), before the response's last bytes are queued. Only
        before :meth:`post_request`."""
        self._release = release

    def post_request(self) -> None:
        """Queue ``"request"`` for the listeners, with ``"end"`` in the same task when the
        request's end was parsed with its head (:attr:`ends_with_head`): on a pool, one task
        (a post and a run under the strand's lock) less per request without a body."""
        if self.ends_with_head:
            self._parsed()
            self._host.strand.post(self._deliver_request_and_end)
        else:
            self._host.strand.post(self._deliver_request)

    def post_data(self, data: bytes) -> bool:
        """Queue a piece of body; return whether the loop should stop reading for now."""
        pause = False
        if self._max_body_buffer:
            with self._lock:
                self._pending_body += len(data)
                pause = self._pending_body > self._max_body_buffer
        self._host.strand.post(self._deliver_data, data)
        return pause

    def post_end(self, trailers: list[tuple[str, str, str]]) -> None:
        """Queue ``"end"``: the request is complete (nothing to do if ``"end"`` went with
        ``"request"``: see :meth:`post_request`)."""
        if self.received:
            return
        self._parsed()
        self._host.strand.post(self._deliver_end, trailers)

    def _parsed(self) -> None:
        self.received = True
        if self._release is not None:
            self._side_over(_PARSED)

    def post_error(self, error: Exception) -> None:
        """Queue ``"error"``: the request cannot complete; no more of its events follow."""
        self.received = True
        if self._release is not None:
            self._side_over(_PARSED)
        self._host.strand.post(self._deliver_error, error)

    def rejected(self, status: int, reason: str, peer_closed: bool) -> None:
        """The driver gave up on the request (a protocol error, a deadline, a reset): end it
        with an error if it was not over; no response can complete now."""
        if not self.received:
            if peer_closed:
                self.post_error(ClientDisconnected("the client closed the connection mid-request"))
            else:
                self.post_error(BadRequest(status, reason))
        self.response_over()

    def connection_closed(self) -> None:
        """The connection closed: end the request with an error if it was not over."""
        if not self.received:
            self.post_error(ClientDisconnected("the connection closed mid-request"))
        self.response_over()

    # == any thread: the response side ========================================================

    def response_over(self) -> None:
        """Record that the response ended, or never will; post ``"close"`` if it is due."""
        if self._release is not None:
            self._side_over(_RESPONDED)
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            if self._response_over:
                return
            self._response_over = True
            due = self._request_over and not self._close_claimed
            if due:
                self._close_claimed = True
        finally:
            lock.release()
        if due:
            self._host.strand.post(self._deliver_close)

    # -- the request's ContinueSender and the response's ResponseChannel --------------------

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread."""
        return self._host.in_loop_thread()

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client waits for it."""
        self._wire.send_continue()

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue an interim response."""
        self._wire.send_informational(status, headers)

    def start(self, head: ResponseHead, body: bytes, end: bool) -> None:
        """Queue the head, ``body`` and, if ``end``, the end of the response."""
        self.body_sent += len(body)
        if end and self._release is not None:
            self._side_over(_RESPONDED)  # before the bytes can leave (see hold_slot)
        self._wire.start(head, body, self if end else None)
        if end:
            self.response_over()

    def write(self, data: bytes) -> None:
        """Queue body bytes; off the loop thread, wait while the output buffer is full.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._wire.write(data)
        self.body_sent += len(data)

    def sends_files(self) -> bool:
        """Whether :meth:`write_file` may be used: plain TCP, where the kernel sends files."""
        return self._host.sends_files()

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue ``count`` bytes of the regular file ``fd`` from ``offset``, sent by the
        kernel; off the loop thread, wait while the output buffer is full.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._wire.write_file(fd, offset, count)
        self.body_sent += count

    def finish(self) -> None:
        """Queue the end of the response.

        Raises:
            ClientDisconnected: The connection closed.
        """
        if self._release is not None:
            self._side_over(_RESPONDED)  # before the bytes can leave (see hold_slot)
        self._wire.end(self)
        self.response_over()

    def stream_from_loop(self, chunks: Iterator[bytes]) -> None:
        """Let the loop pull ``chunks`` as the client reads, then end the response."""
        self._host.stream_from_loop(self, chunks)

    def abort(self) -> None:
        """Close the connection without completing the response."""
        self._host.abort()
        self.response_over()

    def _side_over(self, side: int) -> None:
        """One side of the request is over for its admission slot; release the slot if both
        are (any thread; the caller checked that a release is set)."""
        with self._lock:
            sides = self._release_sides | side
            self._release_sides = sides
            release = self._release
            if sides != _BOTH_SIDES or release is None:
                return
            self._release = None  # claimed: exactly one call releases
        release()

    # == strand: delivering events to listeners ===============================================

    def _deliver_request(self) -> None:
        self._guard(self._host.emit_request, "request", self.request, self.response)

    def _deliver_request_and_end(self) -> None:
        self._deliver_request()
        self._deliver_end([])

    def _deliver_data(self, data: bytes) -> None:
        if self._max_body_buffer:
            with self._lock:
                before = self._pending_body
                self._pending_body = before - len(data)
                resume = before > self._max_body_buffer >= self._pending_body
            if resume:
                self._host.resume_body()
        request = self.request
        self._guard(request.emit, "data", request, self.response, data)

    def _deliver_end(self, trailers: list[tuple[str, str, str]]) -> None:
        request = self.request
        if trailers:
            request.trailers = headers_from_triples(trailers)
        # Most requests have no "end" or "close" listener: skip the guard's frames for them.
        if request.has_listeners("end"):
            self._guard(request.emit, "end", request, self.response)
        self._request_done()

    def _deliver_error(self, error: Exception) -> None:
        request = self.request
        self._guard(request.emit, "error", request, self.response, error)
        self._request_done()

    def _request_done(self) -> None:
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in _pool's docstring
        try:
            self._request_over = True
            due = self._response_over and not self._close_claimed
            if due:
                self._close_claimed = True
        finally:
            lock.release()
        if due:
            self._deliver_close()

    def _deliver_close(self) -> None:
        request = self.request
        self.failed = False  # "close" is always delivered
        if request.has_listeners("close"):
            self._guard(request.emit, "close", request, self.response)
        # Nothing more is emitted: what the listeners hold goes now, and the request and the
        # response let go of this exchange, so that refcounting frees all of them at once
        # instead of the cyclic collector, later.
        drop_listeners(request)
        detach(request, self.response)

    # Any: the emitted event's arguments are whatever its listeners take.
    def _guard(self, emit: Callable[..., object], *args: Any) -> None:
        """Call listeners; one that raises must not take the server down."""
        if self.failed:
            return
        try:
            emit(*args)
        except ClientDisconnected:
            self.failed = True
        except Exception as exc:
            self.failed = True
            request = self.request
            logger.error("listener for %s %s raised", request.method, request.target, exc_info=exc)
            if self._host.debug:
                body = "".join(traceback.format_exception(exc))
            else:
                body = "500 Internal Server Error\n"
            try:
                answered = answer_with_error(self.response, 500, body)
            except Exception:
                answered = False
            if not answered:
                self.abort()


class LoggedExchange(Exchange):
    """An exchange that reports its response to the access log hook.

    The connection makes these instead of :class:`Exchange` only when the server has a hook,
    so that a server without one measures nothing at all. Counted: the body bytes handed to
    the connection, and the time from the request head to the response's end being queued.
    A response that never completes (the connection closed first) is not reported, nor one
    of a request the server rejected (its own line is the request's: see ``_rejections``).
    """

    __slots__ = ("_silenced", "_started")

    def __init__(
        self, host: ExchangeHost, wire: Wire[Exchange], lock: threading.Lock, max_body_buffer: int
    ) -> None:
        super().__init__(host, wire, lock, max_body_buffer)
        self._started = time.perf_counter()
        self._silenced = False  # the server rejected the request (any thread reads it)

    def rejected(self, status: int, reason: str, peer_closed: bool) -> None:
        """The driver gave up on the request (see :meth:`Exchange.rejected`): a response the
        listeners still make is dropped unsent, so it is not reported."""
        self._silenced = True
        super().rejected(status, reason, peer_closed)

    def start(self, head: ResponseHead, body: bytes, end: bool) -> None:
        """Queue the head, ``body`` and, if ``end``, the end of the response; report it."""
        super().start(head, body, end)
        if end:
            self._report(head.status)

    def finish(self) -> None:
        """Queue the end of the response (see :meth:`Exchange.finish`); report it."""
        super().finish()
        self._report(self.response.status)

    def _report(self, status: int) -> None:
        hook = self._host.access_log
        if hook is None or self._silenced:
            return
        duration = time.perf_counter() - self._started
        try:
            hook(self.request, status, self.body_sent, duration)
        except Exception:
            logger.exception("the access log hook raised")
