"""One client connection: its socket, buffers, driver and current exchange.

Theory of operation:

* The loop thread owns the socket. It reads, feeds the driver, and turns each driver event
  into a task on the connection's strand (a serial queue on the worker pool, or inline), so
  listeners see a request's events in order, one at a time.
* Listeners answer through the thread-safe methods of :class:`Connection` (the
  :class:`~vestespy.response.ResponseChannel` protocol). They run the driver under
  ``self.lock`` (h11 is not thread-safe), append the bytes to ``self._out`` and schedule one
  flush on the loop; the flush joins everything queued and makes one ``send``.
* Output is bounded: ``_out_size`` counts bytes queued but not yet accepted by the kernel.
  Writers on worker threads wait on ``_drained`` while it is above ``write_buffer_size``;
  a stream answered on the loop thread is pulled by the loop only while it is below.
* Input is bounded: reading stops while the driver holds a pipelined request that waits for
  the current response, and while more than ``max_body_buffer`` body bytes wait for listeners.
* A connection that must close sends what it has, shuts down its write side, then reads and
  discards until the client closes or ``linger_timeout`` passes, so that the client receives
  the final response instead of a reset.

Methods are labelled *loop thread* or *any thread*.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._driver import (
    BodyReceived,
    Driver,
    PeerClosed,
    RequestEnded,
    RequestRejected,
    RequestStarted,
    Wait,
)
from .backends import EVENT_READ, EVENT_WRITE
from .errors import BadRequest, ClientDisconnected
from .headers import Headers
from .response import Response

if TYPE_CHECKING:
    from .options import ServerOptions
    from .request import Request
    from .server import Server

__all__ = ["Connection"]

logger: logging.Logger = logging.getLogger("vestespy")

# The most one read takes. ``recv(n)`` allocates n bytes before it knows how many arrive, so n
# stays below glibc's mmap threshold (128 KiB): past it every read is an mmap/munmap pair,
# measured here at ~11 us per call, a fifth of a small request's whole cost. 124 KiB leaves
# room for the bytes object's header and halves the reads of a bulk upload against 64 KiB.
_RECV_SIZE = 124 * 1024


class Exchange:
    """One request and its response, as the connection tracks them (loop thread)."""

    __slots__ = (
        "close_posted",
        "failed",
        "request",
        "request_ended",
        "response",
        "response_done",
    )

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        self.request_ended = False
        self.response_done = False
        self.close_posted = False  # guarded by the connection's lock
        # Set (on the strand) once a listener raised: later events of the request are dropped.
        self.failed = False


class Connection:
    """A client connection of a :class:`~vestespy.Server`."""

    def __init__(self, server: Server, sock: socket.socket, client_address: Any) -> None:
        options = server.options
        self._server = server
        self._loop = server._loop
        self._backend = server._loop.backend
        self.sock = sock
        self.fd = sock.fileno()
        self.client_address = client_address
        self.driver = Driver(
            max_header_size=options.max_header_size,
            max_request_line=options.max_request_line,
            relaxed=frozenset(
                name for name in ("allow_bare_lf", "allow_obs_fold") if getattr(options, name)
            ),
            max_body_size=options.max_body_size,
        )
        self.lock = threading.Lock()
        self._drained = threading.Condition(self.lock)
        self._strand = server._pool.strand()
        self._high_water = options.write_buffer_size
        # Inline, the loop hands each piece of body to the listeners before it reads more,
        # so none can pile up: the accounting (two lock rounds per piece) is skipped.
        self._max_body_buffer = options.max_body_buffer if server.max_workers else 0
        # Guarded by self.lock:
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._finished: list[Exchange] = []  # responses ended since the last flush
        self._output_closed = False  # no more response bytes may be queued
        self._waiting_writers = 0
        self._pending_body = 0  # body bytes posted to the strand, not yet delivered
        # Loop thread only:
        self.closed = False
        self._exchange: Exchange | None = None
        self._backlog = bytearray()  # bytes the kernel did not take yet
        self._registered = 0  # the events the backend watches for
        self._paused_for_response = False
        self._paused_for_body = False
        self._closing = False  # close once the output is sent
        self._lingering = False
        self._peer_closed = False
        self._producer: Iterator[bytes] | None = None
        self._drain_left = options.max_drain
        self.last_active = time.monotonic()
        self._set_interest(EVENT_READ)

    # == loop thread: input ====================================================================

    def on_ready(self, events: int) -> None:
        """Backend callback (loop thread)."""
        if events & EVENT_WRITE:
            self._on_writable()
        if events & EVENT_READ and not self.closed:
            self._on_readable()

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if self._lingering:
            if not data:
                self.close()
            return
        self.last_active = time.monotonic()
        with self.lock:
            self.driver.receive(data)
        self._process_events()

    def _process_events(self) -> None:
        """Turn the driver's events into strand tasks until it needs data or pauses."""
        driver = self.driver
        post = self._strand.post
        while not self.closed:
            with self.lock:
                event = driver.next_event()
                if type(event) is RequestRejected:
                    self._output_closed = True
                    if event.response:
                        self._queue_locked(event.response)
            kind = type(event)
            if kind is BodyReceived:
                self._on_body(event)  # type: ignore[arg-type]
            elif kind is RequestStarted:
                self._on_request_started(event)  # type: ignore[arg-type]
            elif kind is RequestEnded:
                exchange = self._exchange
                assert exchange is not None
                exchange.request_ended = True
                post(self._deliver_end, exchange, event.trailers)  # type: ignore[union-attr]
                if exchange.response_done:
                    self._end_exchange(exchange)
            elif event is Wait.NEED_DATA:
                if self._paused_for_response:
                    # Reading resumes; otherwise nothing changed that interest depends on.
                    self._paused_for_response = False
                    self._update_interest()
                return
            elif event is Wait.PAUSED:
                self._paused_for_response = True
                self._update_interest()
                return
            elif kind is RequestRejected:
                self._on_rejected(event)  # type: ignore[arg-type]
                return
            elif kind is PeerClosed:
                self._on_peer_closed(event)  # type: ignore[arg-type]
                return

    def _on_request_started(self, event: RequestStarted) -> None:
        server = self._server
        request = server.handler(
            method=event.method,
            target=event.target,
            http_version=event.http_version,
            headers=Headers._from_triples(event.headers),
            client_address=self.client_address,
            connection=self,
            expects_continue=event.expects_continue,
        )
        exchange = Exchange(request, Response(self, event.method))
        self._exchange = exchange
        self._drain_left = server.options.max_drain
        self._strand.post(self._deliver_request, exchange)

    def _on_body(self, event: BodyReceived) -> None:
        exchange = self._exchange
        assert exchange is not None
        size = len(event.data)
        if exchange.response_done:
            # The response went out before the body was read: discard, within a bound.
            self._drain_left -= size
            if self._drain_left < 0:
                self.close()
            return
        if self._max_body_buffer:
            with self.lock:
                self._pending_body += size
                pause = not self._paused_for_body and self._pending_body > self._max_body_buffer
                if pause:
                    self._paused_for_body = True
            if pause:
                self._update_interest()  # stop reading until the listeners catch up
        self._strand.post(self._deliver_data, exchange, event.data)

    def _on_rejected(self, event: RequestRejected) -> None:
        exchange = self._exchange
        if exchange is not None and not exchange.request_ended:
            error: Exception = (
                ClientDisconnected("the client closed the connection mid-request")
                if event.peer_closed
                else BadRequest(event.status, event.reason)
            )
            self._strand.post(self._deliver_error, exchange, error)
            exchange.request_ended = True  # no more request events; close() adds "close"
        if event.response:
            logger.info(
                "rejected request from %s: %d %s", self.client_address, event.status, event.reason
            )
            self._closing = True
            self._flush()
        else:
            self.close()

    def _on_peer_closed(self, event: PeerClosed) -> None:
        self._peer_closed = True
        exchange = self._exchange
        if exchange is None or exchange.response_done:
            self.close()
        else:
            # Half-closed after a complete request: answer it, then close.
            self._closing = True
            self._update_interest()

    # == strand: delivering events to listeners ===============================================

    def _deliver_request(self, exchange: Exchange) -> None:
        self._guard(exchange, self._server.emit, "request", exchange.request, exchange.response)

    def _deliver_data(self, exchange: Exchange, data: bytes) -> None:
        if self._max_body_buffer:
            with self.lock:
                self._pending_body -= len(data)
                resume = self._paused_for_body and self._pending_body <= self._max_body_buffer
                if resume:
                    self._paused_for_body = False
            if resume:
                self._loop.call_soon(self._update_interest)
        request = exchange.request
        self._guard(exchange, request.emit, "data", request, exchange.response, data)

    def _deliver_end(self, exchange: Exchange, trailers: list[tuple[str, str, str]]) -> None:
        request = exchange.request
        if trailers:
            request.trailers = Headers._from_triples(trailers)
        # Most requests have no "end" or "close" listener: skip the guard's frames for them.
        if request.has_listeners("end"):
            self._guard(exchange, request.emit, "end", request, exchange.response)

    def _deliver_error(self, exchange: Exchange, error: Exception) -> None:
        request = exchange.request
        self._guard(exchange, request.emit, "error", request, exchange.response, error)

    def _deliver_close(self, exchange: Exchange) -> None:
        request = exchange.request
        exchange.failed = False  # "close" is always delivered
        if request.has_listeners("close"):
            self._guard(exchange, request.emit, "close", request, exchange.response)

    def _guard(self, exchange: Exchange, emit: Any, *args: Any) -> None:
        """Call a listener; a listener that raises must not take the server down."""
        if exchange.failed:
            return
        try:
            emit(*args)
        except ClientDisconnected:
            exchange.failed = True
        except Exception as exc:
            exchange.failed = True
            request = exchange.request
            logger.error("listener for %s %s raised", request.method, request.target, exc_info=exc)
            if self._server.debug:
                body = "".join(traceback.format_exception(exc))
            else:
                body = "500 Internal Server Error\n"
            try:
                answered = exchange.response._send_error(500, body)
            except Exception:
                answered = False
            if not answered:
                self.abort()

    # == any thread: the ResponseChannel ======================================================

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread (any thread)."""
        return self._loop.in_loop_thread()

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client waits for it (any thread)."""
        with self.lock:
            if not self._output_closed:
                data = self.driver.send_continue()
                if data:
                    self._queue_locked(data)

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue an interim response (any thread)."""
        with self.lock:
            if not self._output_closed:
                self._queue_locked(self.driver.send_informational(status, headers))

    def start(
        self,
        status: int,
        reason: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        end: bool,
    ) -> None:
        """Queue a response head, the first body bytes and maybe the end (any thread)."""
        close_due = None
        with self.lock:
            if self._output_closed:
                return
            driver = self.driver
            try:
                data = driver.start_response(status, headers, reason)
                if body:
                    self._out.append(data)
                    self._out_size += len(data)
                    self._queue_pieces_locked(driver.send_body(body))
                    data = b""
                if end:
                    data += driver.end_response()
                    close_due = self._response_ended_locked()
            except Exception:
                self._fail_locked()
                raise
            self._queue_locked(data)
        if close_due is not None:
            self._strand.post(self._deliver_close, close_due)

    def write(self, data: bytes) -> None:
        """Queue body bytes; off the loop thread, wait while the buffer is full (any thread).

        Raises:
            ClientDisconnected: The connection closed.
        """
        with self.lock:
            if self._out_size >= self._high_water and not self._loop.in_loop_thread():
                self._waiting_writers += 1
                try:
                    while self._out_size >= self._high_water and not self._output_closed:
                        self._drained.wait()
                finally:
                    self._waiting_writers -= 1
            if self._output_closed:
                raise ClientDisconnected("the connection closed while the response was sent")
            try:
                pieces = self.driver.send_body(data)
            except Exception:
                self._fail_locked()
                raise
            self._queue_pieces_locked(pieces)

    def finish(self) -> None:
        """Queue the end of the response (any thread)."""
        with self.lock:
            if self._output_closed:
                raise ClientDisconnected("the connection closed while the response was sent")
            try:
                data = self.driver.end_response()
            except Exception:
                self._fail_locked()
                raise
            close_due = self._response_ended_locked()
            self._queue_locked(data)
        if close_due is not None:
            self._strand.post(self._deliver_close, close_due)

    def abort(self) -> None:
        """Close the connection without completing the response (any thread)."""
        with self.lock:
            self._output_closed = True
            self._drained.notify_all()
        if self._loop.in_loop_thread():
            self._abort_now()
        else:
            self._loop.call_soon(self._abort_now)

    def _abort_now(self) -> None:
        # Hand the kernel what is already queued (without waiting for a slow client), so that
        # the client sees the same truncated message whichever thread aborted, then close.
        self._producer = None
        self._flush()
        self.close()

    def stream_from_loop(self, chunks: Iterator[bytes]) -> None:
        """Pull ``chunks`` as the client reads, then end the response (loop thread)."""
        self._producer = chunks
        self._loop.at_end_of_pass(self._pull_producer)

    # -- helpers, with self.lock held ---------------------------------------------------------

    def _response_ended_locked(self) -> Exchange | None:
        """Record the end of the current response; return it if its "close" is due now.

        When the request has ended too, "close" is posted right away: from a listener this
        only appends to the strand that is already running, which is cheaper than a later
        post from the loop.
        """
        # Responses only start for the request being received (h11 runs one cycle at a time),
        # so the loop's current exchange is the one answered.
        exchange = self._exchange
        assert exchange is not None
        self._finished.append(exchange)
        if exchange.request_ended and not exchange.close_posted:
            exchange.close_posted = True
            return exchange
        return None

    def _queue_locked(self, data: bytes) -> None:
        if data:
            self._out.append(data)
            self._out_size += len(data)
        self._schedule_flush_locked()

    def _queue_pieces_locked(self, pieces: list[bytes]) -> None:
        out = self._out
        for piece in pieces:
            out.append(piece)
            self._out_size += len(piece)
        self._schedule_flush_locked()

    def _schedule_flush_locked(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop
            if loop.in_loop_thread():
                loop.at_end_of_pass(self._flush)
            else:
                loop.call_soon(self._flush)

    def _fail_locked(self) -> None:
        self.driver.fail()
        self._output_closed = True
        self._drained.notify_all()
        self._loop.call_soon(self.close)

    # == loop thread: output ==================================================================

    def _flush(self) -> None:
        """Send everything queued in one ``send`` and act on finished responses."""
        with self.lock:
            self._flush_scheduled = False
            out = self._out
            if out:
                self._out = []
            finished = self._finished
            if finished:
                self._finished = []
        if self.closed:
            return
        if out:
            self._send(out[0] if len(out) == 1 else b"".join(out))
        for exchange in finished:
            exchange.response_done = True
            if exchange.request_ended:
                self._end_exchange(exchange)
        if finished and not self.closed:
            if self.driver.must_close or self._peer_closed:
                self._closing = True
            elif self._paused_for_response:
                self._process_events()  # a pipelined request was waiting
        if self._closing and not self.closed:
            self._close_when_sent()

    def _end_exchange(self, exchange: Exchange) -> None:
        if self._exchange is exchange:
            self._exchange = None
        self._post_close(exchange)

    def _post_close(self, exchange: Exchange) -> None:
        with self.lock:
            if exchange.close_posted:
                return
            exchange.close_posted = True
        self._strand.post(self._deliver_close, exchange)

    def _send(self, data: bytes) -> None:
        if self._backlog:
            self._backlog += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self._backlog = bytearray(memoryview(data)[sent:])
            self._update_interest()
        self._sent(sent)

    def _sent(self, count: int) -> None:
        with self.lock:
            self._out_size -= count
            if self._waiting_writers and self._out_size < self._high_water:
                self._drained.notify_all()

    def _on_writable(self) -> None:
        backlog = self._backlog
        try:
            sent = self.sock.send(backlog)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del backlog[:sent]
        self.last_active = time.monotonic()
        self._sent(sent)
        if not backlog:
            self._update_interest()
            if self._producer is not None:
                self._pull_producer()
            if self._closing:
                self._close_when_sent()

    def _pull_producer(self) -> None:
        """Move stream pieces into the buffer until it is full or the stream ends."""
        chunks = self._producer
        if chunks is None or self.closed:
            return
        try:
            while self._out_size < self._high_water:
                try:
                    data = next(chunks)
                except StopIteration:
                    self._producer = None
                    self.finish()
                    break
                self.write(data)
        except ClientDisconnected:
            self._producer = None
        except Exception:
            self._producer = None
            logger.exception("response stream failed; closing the connection")
            self.abort()
            return
        self._flush()
        if self._producer is not None and not self._backlog and not self.closed:
            # The kernel took everything: pull more in the next pass (other connections get
            # their turn in between). Otherwise _on_writable pulls once the backlog drains.
            self._loop.at_end_of_pass(self._pull_producer)

    def _close_when_sent(self) -> None:
        if self._backlog or self._out or self._producer is not None or self._lingering:
            return
        # Send FIN, then read until the client closes, so it gets the response, not a reset.
        self._lingering = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        if self._peer_closed:
            self.close()
            return
        self.last_active = time.monotonic()
        self._update_interest()

    def _update_interest(self) -> None:
        if self.closed:
            return
        events = 0
        if self._backlog:
            events |= EVENT_WRITE
        if self._lingering or not (
            self._paused_for_response or self._paused_for_body or self._closing
        ):
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
            backend.register(self.fd, events, self.on_ready)
        else:
            backend.modify(self.fd, events, self.on_ready)
        self._registered = events

    # == loop thread: closing =================================================================

    def silence_limit(self, options: ServerOptions) -> float | None:
        """How long the client may stay silent now before the connection is closed.

        None while the application, not the client, owes the next move (loop thread).
        """
        if self._lingering:
            return options.linger_timeout
        exchange = self._exchange
        if exchange is None:
            return options.keep_alive_timeout
        if self._backlog:
            return options.client_timeout  # the client is not reading its response
        if self._paused_for_body or (exchange.request_ended and not exchange.response_done):
            return None  # listeners are behind, or still preparing the response
        return options.client_timeout  # the rest of the request is late

    def close(self) -> None:
        """Close the socket now and tell the current request's listeners (loop thread)."""
        if self.closed:
            return
        self.closed = True
        with self.lock:
            self._output_closed = True
            self._drained.notify_all()
        self._producer = None
        try:
            self._set_interest(0)
        except (KeyError, ValueError, OSError):
            pass
        self.sock.close()
        self._server._forget(self)
        exchange = self._exchange
        if exchange is not None:
            self._exchange = None
            if not exchange.request_ended:
                self._strand.post(
                    self._deliver_error,
                    exchange,
                    ClientDisconnected("the connection closed mid-request"),
                )
            self._post_close(exchange)
