"""One client connection: glue between its transport, its writer, its deadlines and its exchanges.

Theory of operation:

* The loop thread reads through the :class:`~vestespy._transport.Transport`, feeds the bytes to
  the connection's writer (:class:`~vestespy._wire.Wire`: the driver, the output buffer and the
  one lock between them), and turns each protocol event into a call on the current
  :class:`~vestespy._exchange.Exchange`, which posts it to the connection's strand.
* Responses are written from any thread through their exchange straight into the wire, which
  asks for one flush; the :class:`~vestespy._sender.Sender` sends everything queued in one
  ``send``, then reports the responses that are out, and lingers once the connection closes.
* The :class:`~vestespy._phase.Phase` says where the connection is; the
  :class:`~vestespy._flow.Flow` decides whether it reads (paused for a response or for the
  listeners, yielded its slice of the loop, closing); the
  :class:`~vestespy._deadlines.Deadlines` are told of progress and asked by the server's sweep.

Rule: nothing here parses, frames or times anything itself; this module only connects the
objects that do. Every field is the loop thread's unless its comment says otherwise; each
method is labelled.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from ._backends import EVENT_READ, EVENT_WRITE
from ._context import ConnectionContext
from ._deadlines import TIME_OUT, Deadlines
from ._driver import (
    BodyReceived,
    DriverEvent,
    PeerClosed,
    RequestEnded,
    RequestRejected,
    RequestStarted,
    Wait,
)
from ._exchange import Exchange
from ._flow import REQUESTS_PER_SLICE, Flow
from ._phase import (
    AWAITING_RESPONSE,
    CLOSED,
    HANDSHAKING,
    IDLE,
    LINGERING,
    NO_REQUEST,
    READING_BODY,
    READING_HEAD,
    WEBSOCKET,
)
from ._pool import Strand
from ._rejections import plaintext_refused, server_rejected
from ._sender import Sender
from ._transport import TLSTransport
from ._wire import Wire
from ._ws_handshake import Offer, check_handshake, is_upgrade

if TYPE_CHECKING:
    from .request import SocketAddress

__all__ = ["Connection"]

logger: logging.Logger = logging.getLogger("vestespy.error")

_NEED_DATA: Final = Wait.NEED_DATA  # enum members as constants: see _phase
_PAUSED: Final = Wait.PAUSED


class _Link(Protocol):
    """The connection's WebSocket (``_ws_link.WebSocketLink``, imported only when needed; a
    protocol so that the compiled connection takes the interpreted class)."""

    def run_handshake(self) -> None: ...
    def start(self, trailing: bytes, eof: bool) -> None: ...
    def on_data(self, data: bytes) -> None: ...
    def check(self, now: float) -> None: ...
    def going_away(self) -> None: ...
    def connection_closed(self) -> None: ...


class Connection:
    """A client connection of a server."""

    def __init__(
        self, context: ConnectionContext, sock: socket.socket, client_address: SocketAddress
    ) -> None:
        self.context = context
        self._loop = loop = context.loop
        self.client_address = client_address
        # Read-only after construction (the exchange's host interface); the wire is
        # thread-safe and owns its lock.
        self.wire: Wire[Exchange] = context.new_wire(self._request_flush, self._on_wire_failure)
        self.strand = context.new_strand()
        self.emit_request = context.emit_request
        self.debug = context.debug
        self.access_log = context.access_log
        # Shared by this connection's exchanges, one after the other (see Exchange).
        self._exchange_lock = threading.Lock()
        self.phase = IDLE if context.ssl_context is None else HANDSHAKING
        self._exchange: Exchange | None = None  # the request being received or answered
        self._upgrade: Exchange | None = None  # a WebSocket handshake being received
        self._link: _Link | None = None  # the WebSocket, once the handshake is answered
        self._going_away = False  # the server drains: a WebSocket that opens closes (1001)
        self._peer_closed = False
        self._discard_left = context.options.max_drain  # unread body discarded after a response
        self.deadlines = Deadlines(context.options, time.monotonic())  # head clock from accept
        self.meter = context.counters.connection_opened()  # the server's counters (_stats)
        self.transport = context.new_transport(sock, self.on_ready, self.close)
        self.flow = Flow(loop, self.transport.set_reading, self._resume_slice)
        self.sender = Sender(loop, self.wire, self.transport, self.deadlines, self.flow, self)
        if context.ssl_context is None and not context.inline:
            # Whole responses ended on a pool thread go out from there (see _wire). Not with
            # TLS: the TLS object is the loop thread's; not inline, where responses are
            # ended on the loop thread (the check would cost each of them a call).
            self.wire.direct_send = self.transport.send_now
            self.wire.request_report = self._request_report

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (loop thread)."""
        return self.phase is CLOSED

    # == loop thread: input ====================================================================

    def on_ready(self, events: int) -> None:
        """Backend callback (loop thread)."""
        if events & EVENT_WRITE:
            self.sender.on_writable()
        if not events & EVENT_READ or self.phase is CLOSED:
            return
        if self.wire.sent_directly:
            # A pool thread sent a response itself and did not wake the loop (see _wire): its
            # report first, as the input may follow from it (the next request, the client's
            # close). The flag is set before that send, so the client cannot have answered
            # it unseen; a response ended meanwhile is reported as before, by a flush.
            self.sender.flush()
            if self.closed:
                return
        transport = self.transport
        if self.phase is LINGERING:
            transport.discard_input()
            return
        if self.phase is HANDSHAKING and not self._handshake():
            return
        data = transport.recv()
        if data is None:
            return
        if self.phase is WEBSOCKET:
            link = self._link
            assert link is not None
            link.on_data(data)
            return
        self.deadlines.input_received(time.monotonic(), self.phase)
        if self.phase is IDLE:
            self.phase = READING_HEAD
        self._process_events(REQUESTS_PER_SLICE, self.wire.receive(data))

    def _handshake(self) -> bool:
        """Take the TLS handshake a step; True once complete (its data may follow at once)."""
        transport = self.transport
        assert isinstance(transport, TLSTransport)
        if transport.handshake():
            self.phase = IDLE
            return True
        if transport.plaintext_request and self.phase is not CLOSED:
            logger.info("plaintext HTTP request on the TLS port from %s", self.client_address)
            self.wire.close()
            plaintext_refused(self)  # logged before the client can read the answer
            transport.send_plaintext_answer()
            self.sender.close_when_sent()
        return False

    def _process_events(
        self, budget: int = REQUESTS_PER_SLICE, event: DriverEvent | Wait | None = None
    ) -> None:
        """Hand the wire's events (``event`` first) to the exchange until it needs data,
        pauses, or has started ``budget`` requests (its slice of the loop)."""
        wire = self.wire
        if event is None:
            event = wire.next_event()
        while self.phase is not CLOSED:
            if type(event) is BodyReceived:
                self._on_body(event)
            elif type(event) is RequestStarted:
                if not budget:
                    # Yield only when a request beyond the slice is really there: a batch of
                    # 16 pipelined requests then costs one extra pass, not two.
                    self.flow.yield_slice(event)
                    return
                budget -= 1
                event = self._start_request(event)
                continue
            elif type(event) is RequestEnded:
                exchange = self._exchange
                assert exchange is not None
                exchange.post_end(event.trailers)
                if exchange is self._upgrade:
                    self._upgrade = None
                    self._on_upgrade(exchange)
                if exchange.response_sent:  # answered before the body's end came
                    self._exchange = None
                    self.phase = IDLE
                else:
                    self.phase = AWAITING_RESPONSE
            elif event is _NEED_DATA or event is _PAUSED:
                if (event is _PAUSED) is not self.flow.for_response:
                    self.flow.pause_for_response(event is _PAUSED)
                return
            elif type(event) is RequestRejected:
                self._on_rejected(event)
                return
            elif type(event) is PeerClosed:
                self._on_peer_closed()
                return
            else:
                return  # Wait.STOPPED: nothing more is parsed on this connection
            event = wire.next_event()

    def _resume_slice(self, held: RequestStarted | None) -> None:
        if self.phase is CLOSED:
            return
        if held is None:
            self._process_events()
        else:
            self._process_events(REQUESTS_PER_SLICE - 1, self._start_request(held))

    def _start_request(self, event: RequestStarted) -> DriverEvent | Wait:
        """Start the request that ``event`` heads; return the wire's next event.

        On a pool, that event is read first: when it is the request's end (no body, no
        trailers), ``"end"`` reaches the listeners with ``"request"``, in one strand task (see
        ``Exchange.post_request``). Inline, the listeners run as the request is posted and
        may end the connection, so the next event is read after.
        """
        if self.context.inline:
            self._on_request_started(event, False)
            return self.wire.next_event()
        following = self.wire.next_event()
        ended = type(following) is RequestEnded and not following.trailers
        self._on_request_started(event, ended)
        return following

    def _on_request_started(self, event: RequestStarted, ended: bool) -> None:
        context = self.context
        self.phase = READING_BODY
        self.deadlines.request_started()
        lock, address = self._exchange_lock, self.client_address
        exchange = context.open_exchange(self, self.wire, lock, event, address)
        exchange.ends_with_head = ended
        self._exchange = exchange
        self.meter.request_started(exchange, self.deadlines.last_active)  # the head's read
        self._discard_left = context.options.max_drain
        wants = context.wants_websocket
        if wants is not None and is_upgrade(event.headers) and wants():
            # Answered once the request is parsed (_on_upgrade); not admitted: a WebSocket is
            # not a request in flight for limit_concurrency, and its 101 carries no
            # response_headers. A client certificate is the handshake's, as for requests.
            self._upgrade = exchange
            transport = self.transport
            if isinstance(transport, TLSTransport):
                exchange.request.peer_certificate = transport.peer_certificate
            return
        if context.admit is None:
            exchange.post_request()
        else:
            context.admit(self, exchange)  # default headers, limit_concurrency (_admission)

    def _on_upgrade(self, exchange: Exchange) -> None:
        """A WebSocket handshake is parsed: refuse it, or hand it to the listeners."""
        request = exchange.request
        options = self.context.options
        triples = [(name.lower(), name, value) for name, value in request.headers.items()]
        offer = check_handshake(
            request.method, request.http_version, triples, options.websocket_allowed_origins
        )
        if not isinstance(offer, Offer):
            response = exchange.response
            response.status = offer.status
            for name, value in offer.headers:
                response.set_header(name, value)
            response.set_header("Connection", "close")
            response.send_all(f"{offer.status} {offer.reason}\n")
            return
        from ._ws_link import WebSocketLink  # wsproto's side, only when a handshake comes

        link = WebSocketLink(self, exchange, offer)
        self.strand.post(link.run_handshake)

    def start_websocket(self, link: _Link, trailing: bytes, eof: bool) -> None:
        """The handshake was accepted: the connection now carries the WebSocket (loop
        thread)."""
        if self.phase is CLOSED:
            link.connection_closed()
            return
        self.phase = WEBSOCKET
        exchange = self._exchange
        if exchange is not None:
            self.meter.protocol_switched(exchange, time.monotonic())  # the 101 went out
        self._exchange = None
        self._link = link
        self.flow.pause_for_response(False)
        link.start(trailing, eof)
        if self._going_away:
            link.going_away()

    def _on_body(self, event: BodyReceived) -> None:
        exchange = self._exchange
        assert exchange is not None
        size = len(event.data)
        self.meter.counters.request_body_bytes += size
        self.deadlines.body_received(size, self.flow.for_body)
        if exchange.response_sent:
            # The response went out before the body was read: discard, within a bound.
            self._discard_left -= size
            if self._discard_left < 0:
                self.meter.closing("limit")  # max_drain
                self.close()
            return
        if exchange.post_data(event.data) and self.flow.pause_for_body():
            self.deadlines.body_paused(time.monotonic())  # the listeners hold things up

    def _on_body_resumed(self) -> None:
        if self.flow.resume_for_body():
            self.deadlines.body_resumed(time.monotonic())

    def _on_rejected(self, event: RequestRejected) -> None:
        """The driver gave up on the request; its answer, if any, is queued (a flush is due)."""
        self.meter.rejected(event.status, event.reason, event.peer_closed)
        exchange = self._exchange
        # The exchange of a request received whole is one whose response is still going out
        # (inline, a pipelined request can be parsed before it is): the refused one is later.
        receiving = exchange if exchange is not None and not exchange.received else None
        if exchange is not None:
            exchange.rejected(event.status, event.reason, event.peer_closed)
        server_rejected(self, event, receiving)
        if event.response:
            logger.info(
                "rejected request from %s: %d %s", self.client_address, event.status, event.reason
            )
            self.flow.close()  # the flush of the answer lingers
        else:
            self.close()

    def _on_peer_closed(self) -> None:
        self._peer_closed = True
        self.meter.closing("client")
        exchange = self._exchange
        if exchange is None or exchange.response_sent:
            self.close()
        else:
            self.flow.close()  # half-closed after a complete request: answer, then close

    # == any thread: the exchange's host =========================================================

    def in_loop_thread(self) -> bool:
        """Whether the caller is the loop thread (any thread)."""
        return self._loop.in_loop_thread()

    def sends_files(self) -> bool:
        """Whether file ranges go to the kernel's sendfile: plain TCP only (any thread)."""
        return self.context.ssl_context is None

    def abort(self) -> None:
        """Close the connection without completing the response (any thread)."""
        self.wire.close()
        if self._loop.in_loop_thread():
            self._abort_now()
        else:
            self._loop.call_soon(self._abort_now)

    def resume_body(self) -> None:
        """The listeners caught up with the request body: read again (any thread)."""
        self._loop.call_soon(self._on_body_resumed)

    def stream_from_loop(self, exchange: Exchange, chunks: Iterator[bytes]) -> None:
        """Pull ``chunks`` as the client reads, then end the response (loop thread)."""
        self.sender.stream(exchange, chunks)

    def _request_flush(self) -> None:
        # Called by the wire, its lock held. On the loop thread the flush waits for the end
        # of the pass, so that every response made ready in the pass leaves in one send.
        loop = self._loop
        if loop.in_loop_thread():
            loop.at_end_of_pass(self.sender.flush)
        else:
            loop.call_soon(self.sender.flush)

    def _request_report(self) -> None:
        # Called by the wire, its lock held, on the thread that sent a response directly:
        # the flush that reports it is asked for once the strand has no task left (see
        # Strand.defer), or now if it runs none.
        strand = self.strand
        if type(strand) is Strand and strand.defer(self._queue_flush):
            return
        self._loop.call_soon(self.sender.flush)

    def _queue_flush(self) -> None:
        self._loop.call_soon(self.sender.flush)

    def _abort_now(self) -> None:
        self.meter.closing("error")  # the response could not be completed
        self.sender.abort()
        self.close()

    def _on_wire_failure(self) -> None:
        # Called by the wire, its lock held: a response failed half-way.
        self._loop.call_soon(self.close)

    # == loop thread: output (the sender's reports) ============================================

    def on_lingering(self) -> None:
        """The sender shut down the write side: linger (loop thread)."""
        if self._peer_closed:
            self.close()
        else:
            self.phase = LINGERING
            self.deadlines.lingering_started(time.monotonic())

    def request_in_flight(self) -> bool:
        """Whether a request started waits for its response (loop thread)."""
        exchange = self._exchange
        return exchange is not None and not exchange.response_sent

    def on_responses_sent(self, finished: Sequence[Exchange], must_close: bool) -> None:
        """The sender handed these responses to the kernel (loop thread)."""
        now = time.monotonic()
        for exchange in finished:
            exchange.response_sent = True
            self.meter.response_sent(exchange, now)
            if exchange is self._exchange and exchange.received:
                self._exchange = None
                self.phase = IDLE
        self.deadlines.responses_sent(now)  # keep_alive_timeout counts from here
        if must_close or self._peer_closed:
            self.flow.close()
        elif self.flow.for_response:
            self._process_events()  # a pipelined request was waiting

    # == loop thread: deadlines and closing ===================================================

    def check_deadlines(self, now: float) -> None:
        """Close, or answer 408 and close, if the client is late (loop thread; the server's
        sweep calls it about twice per shortest timeout, at least once a second)."""
        if self.wire.sent_directly:
            self.sender.flush()  # a response a pool thread sent: the phase is then current
        if self.phase is WEBSOCKET:
            link = self._link
            assert link is not None
            link.check(now)
            return
        expiry = self.deadlines.check(
            now, self.phase, self.flow.for_body, self.transport.has_backlog
        )
        if expiry is None:
            return
        self.meter.expired(expiry)
        if expiry.action is TIME_OUT:
            self._on_rejected(self.wire.time_out(expiry.reason))
        else:
            if expiry.logged:
                logger.info("closing %s: %s", self.client_address, expiry.reason)
            self.close()

    def stop_keep_alive(self) -> None:
        """The server drains: the next response is the last (``Connection: close``); an idle
        connection stays open until :meth:`close_if_idle`; a WebSocket is closed with 1001
        (loop thread)."""
        if self.wire.sent_directly:
            # The report of a response a pool thread sent, before the refusal: that response
            # let the connection go on (the report reads the driver's must_close).
            self.sender.flush()
        self.wire.refuse_keep_alive()
        self._going_away = True
        if self._link is not None:
            self._link.going_away()

    def close_if_idle(self, now: float, idle_for: float) -> bool:
        """Close (FIN, then linger) if no request is under way and the client has been
        silent for ``idle_for`` seconds; return whether it is closing (loop thread)."""
        if self.wire.sent_directly:
            self.sender.flush()  # a response a pool thread sent: the phase is then current
        if self.flow.closing:
            return True
        if self.phase not in NO_REQUEST or self.deadlines.silent_for(now) < idle_for:
            return False
        if self.transport.input_waiting():
            return False  # a request arrived since the loop last looked: it gets its answer
        self.sender.close_when_sent()
        return True

    def close(self) -> None:
        """Close the socket now and tell the current request's listeners (loop thread)."""
        if self.phase is CLOSED:
            return
        self.meter.closed(self.phase is LINGERING, self.transport.peer_reset)
        self.phase = CLOSED
        self.wire.discard()
        self.sender.discard()
        self.transport.close()
        self.context.forget(self)
        exchange = self._exchange
        if exchange is not None:
            self._exchange = None
            exchange.connection_closed()
        if self._link is not None:
            self._link.connection_closed()
