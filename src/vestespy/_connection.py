"""One client connection: the glue between its transport, driver, output buffer and exchanges.

Theory of operation:

* The loop thread reads through the :class:`~vestespy._transport.Transport`, feeds the
  sans-IO :class:`~vestespy._driver.Driver`, and turns each driver event into a call on the
  current :class:`~vestespy._exchange.Exchange`, which posts it to the connection's strand.
* Responses are written from any thread through their exchange, which calls the *host*
  methods below. They run the driver under the output buffer's lock (h11 is not thread-safe,
  and bytes must be queued in the order h11 made them) and queue the bytes; the buffer asks
  the loop for one flush, which sends everything queued in one ``send``.
* Input is bounded: reading stops while the driver holds a pipelined request that waits for the
  current response, and while the listeners are more than ``max_body_buffer`` bytes of body
  behind. Output is bounded by the buffer's high-water mark.
* A connection that must close sends what it has, then lingers (see the transport).
* Fairness: one call of :meth:`Connection._process_events` starts at most
  ``_REQUESTS_PER_SLICE`` requests. A connection with more pipelined requests buffered stops
  reading and continues in a later step of the loop, after the other ready connections had
  their turn, so a pipelining flood delays other clients by a slice, not by its whole read.
* Deadlines are checked by the server's sweep (:meth:`Connection.check_deadlines`), on the
  loop, not by a thread or timer per connection: the head deadline (``header_timeout``), the
  silence timeouts, and the minimum data rates (see ``_rates.py``).

Every field is the loop thread's unless its comment says otherwise; each method is labelled.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._backends import EVENT_READ, EVENT_WRITE, Backend
from ._driver import (
    BodyReceived,
    Driver,
    PeerClosed,
    RequestEnded,
    RequestRejected,
    RequestStarted,
    Wait,
)
from ._exchange import Exchange, LoggedExchange
from ._output import OutputBuffer
from ._pool import SerialQueue
from ._rates import RateMeter
from ._segment import FileSegment
from ._transport import TLSTransport, Transport
from .access_log import AccessHook
from .errors import BadRequest, ClientDisconnected
from .headers import headers_from_triples
from .options import ServerOptions
from .proxies import TrustedProxies, resolve
from .request import Request
from .response import Response

if TYPE_CHECKING:
    from .request import SocketAddress

__all__ = ["Connection", "ConnectionContext"]

logger: logging.Logger = logging.getLogger("vestespy.error")

# Requests one connection may start per pass of the loop (see the theory of operation). 8
# keeps a slice inline near half a millisecond. With 20 connections flooding, a normal client
# waited up to 5.5 s without slices; with slices of 8, one per pass, its p99 was 47 ms inline
# and 35 ms on a pool on a loaded 2-core machine. A connection yields only when a ninth request
# is there, so a batch of 16 pipelined requests costs one extra pass, and a batch of 8 none.
_REQUESTS_PER_SLICE = 8


class Reactor(Protocol):
    """What a connection needs of its loop: :class:`~vestespy._loop.EventLoop`, or a fake.

    A protocol rather than the class: compiled by mypyc, a field typed with a compiled class
    refuses anything else at run time, and the tests hand connections a fake loop.
    """

    backend: Backend

    def in_loop_thread(self) -> bool: ...
    def call_soon(self, callback: Callable[..., object], *args: Any) -> None: ...
    def at_end_of_pass(self, callback: Callable[[], object]) -> None: ...


# Its field types are imported at run time, not only for type checking: compiled by mypyc,
# the dataclass reads the classes of its annotations when the module loads.
@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """What a server gives its connections: the loop, listener threads, options, bookkeeping.

    Made once per server and shared, read-only, by its connections.
    """

    loop: Reactor
    options: ServerOptions
    #: The request class to instantiate.
    handler: type[Request]
    #: Whether a 500 page carries the traceback.
    debug: bool
    #: Whether listeners run on the loop thread (``max_workers=0``).
    inline: bool
    #: Makes a connection's serial queue of listener calls.
    new_strand: Callable[[], SerialQueue]
    #: Calls the server's listeners: ``emit_request("request", req, res)``.
    emit_request: Callable[..., object]
    #: Called once a connection has closed.
    forget: Callable[[Connection], None]
    #: The TLS context, or None for plain TCP.
    ssl_context: ssl.SSLContext | None = None
    #: Called once per completed response, or None (then nothing is measured).
    access_log: AccessHook | None = None
    #: Peers whose forwarding fields are believed, or None (then none is read).
    trusted_proxies: TrustedProxies | None = None
    #: Prepares a request and posts it to the listeners, or refuses it: ``admit(connection,
    #: exchange)`` (see _admission.py); None: posted as it is.
    admit: Callable[[Connection, Exchange], None] | None = None


class Connection:
    """A client connection of a server."""

    def __init__(
        self, context: ConnectionContext, sock: socket.socket, client_address: SocketAddress
    ) -> None:
        options = context.options
        self.context = context
        self._loop = context.loop
        self.client_address = client_address
        # Any thread, under self.output.lock: the driver.
        self.driver = Driver(
            max_header_size=options.max_header_size,
            max_request_line=options.max_request_line,
            relaxed=frozenset(
                name for name in ("allow_bare_lf", "allow_obs_fold") if getattr(options, name)
            ),
            max_body_size=options.max_body_size,
            max_header_count=options.max_header_count,
            max_drain=options.max_drain,
        )
        # Thread-safe: owns its lock.
        self.output: OutputBuffer[Exchange] = OutputBuffer(
            options.write_buffer_size, self._request_flush
        )
        # Shared by this connection's exchanges, one after the other (see Exchange).
        self._exchange_lock = threading.Lock()
        # Read-only after construction (the exchange's host interface).
        self.strand = context.new_strand()
        self.emit_request = context.emit_request
        self.debug = context.debug
        self.access_log = context.access_log
        # With an access log, exchanges that measure; without, nothing more per request.
        self._exchange_class = Exchange if context.access_log is None else LoggedExchange
        # Inline, the loop hands each piece of body to the listeners before it reads more,
        # so none can pile up: the accounting is skipped.
        self._max_body_buffer = 0 if context.inline else options.max_body_buffer
        self.closed = False
        self._exchange: Exchange | None = None  # the request being received or answered
        self._paused_for_response = False
        self._paused_for_body = False
        self._closing = False  # close once the output is sent
        self._peer_closed = False
        self._producer: Iterator[bytes] | None = None
        self._producer_exchange: Exchange | None = None
        self._drain_left = options.max_drain
        self._yielded = False  # gave up its slice with requests still buffered
        # The request that would have gone past the slice: taken from the driver, started
        # when the connection's turn comes again.
        self._held: RequestStarted | None = None
        #: When the client last did something, or the last response went out.
        self.last_active = now = time.monotonic()
        # When the request head being received began (None between a head's end and the
        # next head's first byte), and whether any byte of it came. The first head's clock
        # starts at the accept, so a client that stalls before (or in) a TLS handshake meets
        # header_timeout too.
        self._head_since: float | None = now
        self._head_bytes = False
        self._body_meter = RateMeter()  # the request body being received
        self._response_meter = RateMeter()  # response bytes the kernel would not take
        self.transport: Transport
        if context.ssl_context is None:
            self.transport = Transport(sock, context.loop.backend, self.on_ready, self.close)
        else:
            self.transport = TLSTransport(
                sock,
                context.loop.backend,
                self.on_ready,
                self.close,
                context.ssl_context,
                context.loop.call_soon,
            )

    # == loop thread: input ====================================================================

    def on_ready(self, events: int) -> None:
        """Backend callback (loop thread)."""
        if events & EVENT_WRITE:
            self._on_writable()
        if events & EVENT_READ and not self.closed:
            transport = self.transport
            if transport.lingering:
                transport.discard_input()
                return
            if transport.handshaking and not self._handshake():
                return
            data = transport.recv()
            if data is None:
                return
            self.last_active = now = time.monotonic()
            if self._exchange is None:
                if self._head_since is None:
                    self._head_since = now
                self._head_bytes = True
            with self.output.lock:
                self.driver.receive(data)
            self._process_events()

    def _handshake(self) -> bool:
        """Take the TLS handshake a step; True once complete (its data may follow at once)."""
        transport = self.transport
        assert isinstance(transport, TLSTransport)
        if transport.handshake():
            return True
        if transport.plaintext_request and not self.closed:
            logger.info("plaintext HTTP request on the TLS port from %s", self.client_address)
            self.output.close()
            transport.send_plaintext_answer()
            self._closing = True
            self._close_when_sent()
        return False

    def _process_events(self, budget: int = _REQUESTS_PER_SLICE) -> None:
        """Hand the driver's events to the exchange until it needs data, pauses or has had
        its slice of the loop (``budget`` more requests started)."""
        driver = self.driver
        output = self.output
        while not self.closed:
            with output.lock:
                event = driver.next_event()
                if type(event) is RequestRejected:
                    if event.response:
                        output.append_locked(event.response)
                    output.close_locked()
            kind = type(event)
            if kind is BodyReceived:
                self._on_body(event)  # type: ignore[arg-type]
            elif kind is RequestStarted:
                if not budget:
                    # Yield only when a request beyond the slice is really there: a batch of
                    # 16 pipelined requests then costs one extra pass, not two.
                    self._held = event  # type: ignore[assignment]
                    self._yield_slice()
                    return
                budget -= 1
                self._on_request_started(event)  # type: ignore[arg-type]
            elif kind is RequestEnded:
                exchange = self._exchange
                assert exchange is not None
                exchange.post_end(event.trailers)  # type: ignore[union-attr]
                if exchange.response_sent:
                    self._exchange = None
            elif event is Wait.NEED_DATA:
                if self._paused_for_response:
                    self._paused_for_response = False
                    self._update_reading()
                return
            elif event is Wait.PAUSED:
                self._paused_for_response = True
                self._update_reading()
                return
            elif kind is RequestRejected:
                self._on_rejected(event)  # type: ignore[arg-type]
                return
            elif kind is PeerClosed:
                self._on_peer_closed()
                return

    def _yield_slice(self) -> None:
        """Stop here and go on in the next pass, after the other ready connections."""
        if not self._yielded:
            self._yielded = True
            self._update_reading()  # nothing more is read until the buffered requests are in
            # Queued at the end of this pass, the call runs in the next one: one slice per
            # pass, where a call queued now would give a second slice in this pass.
            self._loop.at_end_of_pass(self._queue_resume)

    def _queue_resume(self) -> None:
        self._loop.call_soon(self._resume_slice)

    def _resume_slice(self) -> None:
        self._yielded = False
        held, self._held = self._held, None
        if not self.closed:
            self._update_reading()
            if held is not None:
                self._on_request_started(held)
                self._process_events(_REQUESTS_PER_SLICE - 1)
            else:
                self._process_events()

    def _on_request_started(self, event: RequestStarted) -> None:
        context = self.context
        self._head_since = None
        self._head_bytes = False
        self._body_meter.reset()
        exchange = self._exchange_class(self, self._exchange_lock, self._max_body_buffer)
        headers = headers_from_triples(event.headers)
        exchange.request = request = context.handler(
            method=event.method,
            target=event.target,
            http_version=event.http_version,
            headers=headers,
            client_address=self.client_address,
            connection=exchange,
            expects_continue=event.expects_continue,
        )
        exchange.response = Response(exchange, event.method)
        if context.ssl_context is not None:
            request.scheme = "https"
        trusted = context.trusted_proxies
        if trusted is not None:
            forwarded = resolve(self.client_address, headers, trusted)
            if forwarded is not None:
                request._set_forwarded(forwarded.client, forwarded.scheme, forwarded.host)
        self._exchange = exchange
        self._drain_left = context.options.max_drain
        exchange.post_request() if context.admit is None else context.admit(self, exchange)

    def _on_body(self, event: BodyReceived) -> None:
        exchange = self._exchange
        assert exchange is not None
        meter = self._body_meter
        meter.add(len(event.data))
        if not meter.running and not self._paused_for_body:
            meter.start(self.last_active)  # from the first byte of the body
        if exchange.response_sent:
            # The response went out before the body was read: discard, within a bound.
            self._drain_left -= len(event.data)
            if self._drain_left < 0:
                self.close()
            return
        if exchange.post_data(event.data) and not self._paused_for_body:
            self._paused_for_body = True  # stop reading until the listeners catch up
            meter.stop(time.monotonic())  # the server, not the client, holds things up
            self._update_reading()

    def _on_body_resumed(self) -> None:
        if self._paused_for_body:
            self._paused_for_body = False
            if self._body_meter.bytes:
                self._body_meter.start(time.monotonic())
            self._update_reading()

    def _on_rejected(self, event: RequestRejected) -> None:
        exchange = self._exchange
        if exchange is not None:
            if not exchange.received:
                error: Exception = (
                    ClientDisconnected("the client closed the connection mid-request")
                    if event.peer_closed
                    else BadRequest(event.status, event.reason)
                )
                exchange.post_error(error)
            exchange.response_over()  # the output is closed: no response can complete now
        if event.response:
            logger.info(
                "rejected request from %s: %d %s", self.client_address, event.status, event.reason
            )
            self._closing = True
            self._flush()
        else:
            self.close()

    def _on_peer_closed(self) -> None:
        self._peer_closed = True
        exchange = self._exchange
        if exchange is None or exchange.response_sent:
            self.close()
        else:
            # Half-closed after a complete request: answer it, then close.
            self._closing = True
            self._update_reading()

    def _update_reading(self) -> None:
        if not self.closed:
            self.transport.set_reading(
                not (
                    self._paused_for_response
                    or self._paused_for_body
                    or self._closing
                    or self._yielded
                )
            )

    # == any thread: the exchange's host =========================================================

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread (any thread)."""
        return self._loop.in_loop_thread()

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client waits for it (any thread)."""
        output = self.output
        with output.lock:
            if not output.closed:
                data = self.driver.send_continue()
                if data:
                    output.append_locked(data)

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """Queue an interim response (any thread)."""
        output = self.output
        with output.lock:
            if not output.closed:
                output.append_locked(self.driver.send_informational(status, headers))

    def start_response(
        self,
        exchange: Exchange,
        status: int,
        reason: bytes | None,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        end: bool,
    ) -> None:
        """Queue a response head, its first body bytes and maybe its end (any thread)."""
        output = self.output
        with output.lock:
            if output.closed:
                return
            driver = self.driver
            try:
                data = driver.start_response(status, headers, reason)
                if body:
                    output.append_locked(data)
                    output.extend_locked(driver.send_body(body))
                    data = b""
                if end:
                    data += driver.end_response()
            except Exception:
                self._fail_locked()
                raise
            output.append_locked(data, exchange if end else None)

    def write_body(self, data: bytes) -> None:
        """Queue body bytes; off the loop thread, wait while the buffer is full (any thread).

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._queue_body(data, False)

    def sends_files(self) -> bool:
        """Whether file ranges go to the kernel's sendfile: plain TCP only (any thread)."""
        return self.context.ssl_context is None

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue a file range; off the loop thread, wait while the buffer is full (any
        thread). The segment holds its own descriptor, so the caller may close the file.

        Raises:
            ClientDisconnected: The connection closed.
        """
        self._queue_body(FileSegment(fd, offset, count), True)

    def _queue_body(self, data: bytes | FileSegment, is_file: bool) -> None:
        output = self.output
        with output.lock:
            if output.size >= output.high_water and not self._loop.in_loop_thread():
                output.wait_for_room_locked()
            if output.closed:
                raise ClientDisconnected("the connection closed while the response was sent")
            try:
                pieces = self.driver.send_body(data)
            except Exception:
                self._fail_locked()
                raise
            output.extend_locked(pieces, is_file)

    def end_response(self, exchange: Exchange) -> None:
        """Queue the end of the response (any thread).

        Raises:
            ClientDisconnected: The connection closed.
        """
        output = self.output
        with output.lock:
            if output.closed:
                raise ClientDisconnected("the connection closed while the response was sent")
            try:
                data = self.driver.end_response()
            except Exception:
                self._fail_locked()
                raise
            output.append_locked(data, exchange)

    def abort(self) -> None:
        """Close the connection without completing the response (any thread)."""
        self.output.close()
        if self._loop.in_loop_thread():
            self._abort_now()
        else:
            self._loop.call_soon(self._abort_now)

    def resume_body(self) -> None:
        """The listeners caught up with the request body: read again (any thread)."""
        self._loop.call_soon(self._on_body_resumed)

    def stream_from_loop(self, exchange: Exchange, chunks: Iterator[bytes]) -> None:
        """Pull ``chunks`` as the client reads, then end the response (loop thread)."""
        self._producer = chunks
        self._producer_exchange = exchange
        self._loop.at_end_of_pass(self._pull_producer)

    def _request_flush(self) -> None:
        # Called by the output buffer, lock held. On the loop thread the flush waits for the
        # end of the pass, so that every response made ready in the pass leaves in one send.
        loop = self._loop
        if loop.in_loop_thread():
            loop.at_end_of_pass(self._flush)
        else:
            loop.call_soon(self._flush)

    def _fail_locked(self) -> None:
        self.driver.fail()
        self.output.close_locked()
        self._loop.call_soon(self.close)

    # == loop thread: output ==================================================================

    def _flush(self) -> None:
        """Send everything queued in one ``send`` and act on the responses it ends."""
        data, finished = self.output.take()
        if self.closed:
            return
        if data:
            transport = self.transport
            sent = transport.send(data)
            if transport.closed:  # the send found the connection lost
                return
            if sent:
                self.output.sent(sent)
            if transport.has_backlog and not self._response_meter.running:
                self._response_meter.start(time.monotonic())
        if finished:
            self._on_responses_sent(finished)
        if self._closing and not self.closed:
            self._close_when_sent()

    def _on_responses_sent(self, finished: Sequence[Exchange]) -> None:
        for exchange in finished:
            exchange.response_sent = True
            if exchange is self._exchange and exchange.received:
                self._exchange = None
        # keep_alive_timeout counts from here, not from the request's last byte.
        self.last_active = time.monotonic()
        if self.driver.must_close or self._peer_closed:
            self._closing = True
        elif self._paused_for_response:
            self._process_events()  # a pipelined request was waiting

    def _on_writable(self) -> None:
        transport = self.transport
        sent = transport.send_backlog()
        if self.closed:
            return
        if sent:
            self.output.sent(sent)
            self.last_active = time.monotonic()
            self._response_meter.add(sent)
        if not transport.has_backlog:
            self._response_meter.reset()  # the client read everything: a new period
            if self._producer is not None:
                self._pull_producer()
            if self._closing and not self.closed:
                self._close_when_sent()

    def _pull_producer(self) -> None:
        """Move stream pieces into the buffer until it is full or the stream ends."""
        chunks = self._producer
        exchange = self._producer_exchange
        if chunks is None or exchange is None or self.closed:
            return
        try:
            while self.output.has_room():
                try:
                    data = next(chunks)
                except StopIteration:
                    self._producer = self._producer_exchange = None
                    exchange.finish()
                    break
                exchange.write(data)  # through the exchange: the access log counts it
        except ClientDisconnected:
            self._producer = self._producer_exchange = None
        except Exception:
            self._producer = self._producer_exchange = None
            logger.exception("response stream failed; closing the connection")
            self.abort()
            return
        self._flush()
        if self._producer is not None and not self.transport.has_backlog and not self.closed:
            # The kernel took everything: pull more in the next pass (other connections get
            # their turn in between). Otherwise _on_writable pulls once the backlog drains.
            self._loop.at_end_of_pass(self._pull_producer)

    def _abort_now(self) -> None:
        # Hand the kernel what is already queued (without waiting for a slow client), so that
        # the client sees the same truncated message whichever thread aborted, then close.
        self._producer = self._producer_exchange = None
        self._flush()
        self.close()

    # == loop thread: closing =================================================================

    def _close_when_sent(self) -> None:
        transport = self.transport
        if (
            transport.has_backlog
            or transport.lingering
            or self._producer is not None
            or self.output.has_pending()
        ):
            return
        # Send FIN, then read until the client closes, so it gets the response, not a reset.
        if not transport.linger():
            return
        if self._peer_closed:
            self.close()
            return
        self.last_active = time.monotonic()

    def check_deadlines(self, now: float) -> None:
        """Close the connection, or answer 408 and close, if the client is late (loop thread).

        Called by the server's sweep, about twice per shortest timeout and at least once a
        second.
        """
        options = self.context.options
        head_since = self._head_since
        if (
            head_since is not None
            and now - head_since > options.header_timeout
            and not self.transport.lingering
        ):
            if self._head_bytes:
                self._time_out("request head not received within header_timeout")
            else:
                self.close()  # not one byte came: nobody is waiting for an answer
            return
        exchange = self._exchange
        if (
            exchange is not None
            and not exchange.received
            and options.min_body_rate
            and self._body_meter.too_slow(now, options.min_body_rate, options.rate_grace_period)
        ):
            self._time_out("request body slower than min_body_rate")
            return
        if (
            options.min_response_rate
            and self._response_meter.running
            and self._response_meter.too_slow(
                now, options.min_response_rate, options.rate_grace_period
            )
        ):
            logger.info(
                "closing %s: response read slower than min_response_rate", self.client_address
            )
            self.close()
            return
        limit = self.silence_limit()
        if limit is not None and now - self.last_active > limit:
            self.close()

    def _time_out(self, reason: str) -> None:
        """Answer 408 (if no response has started) and close."""
        output = self.output
        with output.lock:
            event = self.driver.reject_timeout(reason)
            if event.response:
                output.append_locked(event.response)
            output.close_locked()
        self._head_since = None
        self._on_rejected(event)

    def drain(self) -> None:
        """The server drains: the next response is the last one (loop thread).

        A response not started yet carries ``Connection: close``; one started already ends
        the connection when it ends. An idle connection stays open until
        :meth:`close_if_idle` closes it, so that a request sent on it meanwhile is answered
        rather than cut off.
        """
        with self.output.lock:
            self.driver.refuse_keep_alive()

    def close_if_idle(self, now: float, idle_for: float) -> bool:
        """Close (FIN, then linger) if no request is under way and the client has been
        silent for ``idle_for`` seconds; return whether it is closing (loop thread)."""
        if self._closing:
            return True
        if self._exchange is not None or now - self.last_active < idle_for:
            return False
        self._closing = True
        self._update_reading()
        self._close_when_sent()
        return True

    def silence_limit(self) -> float | None:
        """How long the client may stay silent now before the connection is closed.

        None while the application, not the client, owes the next move (loop thread).
        """
        options = self.context.options
        transport = self.transport
        if transport.lingering:
            return options.linger_timeout
        if transport.has_backlog:
            return options.client_timeout  # the client is not reading its response
        exchange = self._exchange
        if exchange is None:
            return options.keep_alive_timeout
        if self._paused_for_body or (exchange.received and not exchange.response_sent):
            return None  # listeners are behind, or still preparing the response
        return options.client_timeout  # the rest of the request is late

    def close(self) -> None:
        """Close the socket now and tell the current request's listeners (loop thread)."""
        if self.closed:
            return
        self.closed = True
        self.output.discard()
        self._producer = self._producer_exchange = None
        self.transport.close()
        self.context.forget(self)
        exchange = self._exchange
        if exchange is not None:
            self._exchange = None
            exchange.connection_closed()
