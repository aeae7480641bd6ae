"""One WebSocket on a client connection: the handshake's answer, frames in and out, its
deadlines and its end.

Theory of operation:

* **Handshake.** The connection checks the upgrade request (``_ws_handshake``) once the
  request is parsed, and posts :meth:`WebSocketLink.run_handshake` to its strand. That emits
  the server's ``"websocket"``; the listeners may :meth:`~vestespy.WebSocket.accept` or
  :meth:`~vestespy.WebSocket.reject`; with neither, the handshake is accepted when they
  return. Accepting sends ``101`` through h11 (which then is in ``SWITCHED_PROTOCOL``) under
  the wire's lock, takes h11's ``trailing_data`` (frames the client sent right behind the
  handshake) and asks the loop to switch the connection over (:meth:`start`), which feeds
  those bytes to wsproto first. Refusing answers through the request's ordinary response,
  with ``Connection: close``.
* **Frames.** The loop feeds what it reads to the :class:`~vestespy._ws_session.Session` under
  the wire's lock (:meth:`on_data`; answers such as pongs are queued in the same step) and
  posts the events to the strand, which emits them. Senders on any thread frame their message
  under the same lock, so frames leave in the order they were made; off the loop thread a
  sender waits while the output is over ``write_buffer_size``. With a pool, the loop stops
  reading while the listeners are more than ``max_body_buffer`` bytes of messages behind.
* **Deadlines** (``_ws_deadlines``): the server's sweep calls :meth:`check`: pings, the pong
  timeout (the peer is gone: the connection closes, 1006 reported), the close handshake's
  timeout.
* **End.** ``"close"`` is emitted once, last, on the strand: when the close handshake is
  over, the connection was failed, or it closed for any other reason (1006). The server
  closes the TCP connection first once the close frames have crossed (RFC 6455 7.1.1).

Fields are labelled with the threads that touch them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._emitter import drop_listeners
from ._ws_deadlines import CLOSE_OVER, PEER_DEAD, PING_DUE, WebSocketDeadlines
from ._ws_deflate import negotiate_deflate
from ._ws_handshake import Offer, accept_token
from ._ws_session import (
    Closed,
    Failed,
    Received,
    ReceivedPing,
    ReceivedPong,
    Session,
    SessionEvent,
)
from .errors import ClientDisconnected, WebSocketError
from .websocket import WebSocket

if TYPE_CHECKING:
    from ._connection import Connection
    from ._exchange import Exchange

__all__ = ["WebSocketLink"]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: Events (messages, pings, pongs) one WebSocket hands over per pass of the loop: a client
#: flooding tiny frames delays the others by one slice, not by a whole read (124 KiB, some
#: 20,000 frames of a few bytes).
MESSAGES_PER_SLICE = 64

_PENDING = 0  # the handshake is not answered yet
_OPEN = 1
_REJECTED = 2


class WebSocketLink:
    """The WebSocket of one connection, from its handshake to its end.

    Args:
        connection: The client connection.
        exchange: The upgrade request's exchange (its response answers a refusal).
        offer: What the client offered in the handshake.
    """

    def __init__(self, connection: Connection, exchange: Exchange, offer: Offer) -> None:
        context = connection.context
        self._connection = connection
        self._context = context
        self._wire = connection.wire
        self._loop = context.loop
        self._strand = connection.strand
        self._exchange = exchange
        self._offer = offer
        # Not "_inline": mypyc names the C field "__inline", a GCC keyword.
        self._listeners_inline = context.inline
        self.options = options = context.options
        # Guards _state and the pending-input count; the wire's lock guards the session.
        self._lock = threading.Lock()
        self._state = _PENDING
        self._switched = False  # the 101 was queued (the access log's end line is due)
        self._session: Session | None = None
        self._pending = 0  # message bytes posted to the strand, not yet delivered
        self._started = time.perf_counter()
        # Counters: input ones on the loop thread, output ones under the wire's lock.
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        # Loop thread only:
        self.deadlines = WebSocketDeadlines(
            options.websocket_ping_interval,
            options.websocket_ping_timeout,
            options.websocket_close_timeout,
            time.monotonic(),
        )
        self._fin_sent = False
        self._counters = context.counters  # the server's metrics (_stats)
        self._counted_open = False
        self._reported_out = 0  # messages_out already added to the counters
        # Strand only:
        self._close_reported = False
        self._failed = False
        self.ws = WebSocket(self, exchange.request, offer.subprotocols)

    # == strand: the handshake ==================================================================

    def run_handshake(self) -> None:
        """Emit ``"websocket"``, then accept if the listeners answered neither way (strand)."""
        ws = self.ws
        emit = self._context.emit_websocket
        assert emit is not None
        try:
            emit("websocket", ws, ws.request)
        except ClientDisconnected:
            pass
        except Exception as exc:
            logger.error("websocket listener for %s raised", ws.request.target, exc_info=exc)
            if self._claim(_REJECTED):
                self._refuse(500, b"500 Internal Server Error\n", ())
            else:
                self.close(1011, "internal error")  # accepted, then the listener failed
            return
        if self._state == _PENDING:
            try:
                self.accept(None)
            except ClientDisconnected:
                self._report_close(1006, "")

    def accept(self, subprotocol: str | None) -> None:
        """Answer 101 and hand the connection to the WebSocket (the listener's thread)."""
        if not self._claim(_OPEN):
            raise RuntimeError("the WebSocket handshake was already answered")
        options = self.options
        deflate = None
        if options.websocket_compression:
            deflate = negotiate_deflate(self._offer.extensions, options.websocket_max_message_size)
        headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", accept_token(self._offer.key).encode("ascii")),
        ]
        if subprotocol is not None:
            headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        extensions: list[Any] = []
        if deflate is not None:
            extensions.append(deflate[0])
            headers.append((b"Sec-WebSocket-Extensions", deflate[1].encode("ascii")))
            self.ws.extensions = ("permessage-deflate",)
        self.ws.subprotocol = subprotocol
        self._session = Session(options.websocket_max_message_size, extensions)
        try:
            trailing, eof = self._wire.switch_protocols(headers)
        except ClientDisconnected:
            self._report_close(1006, "")  # the listeners may have a "close" listener already
            raise
        self._switched = True
        hook = self._context.access_log
        if hook is not None:
            try:
                hook(self.ws.request, 101, 0, time.perf_counter() - self._started)
            except Exception:
                logger.exception("the access log hook raised")
        self._started = time.perf_counter()
        self._loop.call_soon(self._connection.start_websocket, self, trailing, eof)

    def reject(self, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
        """Refuse the handshake with ``status`` (the listener's thread)."""
        if not self._claim(_REJECTED):
            raise RuntimeError("the WebSocket handshake was already answered")
        self._refuse(status, body, headers)

    def _claim(self, answer: int) -> bool:
        """Move the handshake from pending to ``answer``; False if it was answered already."""
        with self._lock:
            if self._state != _PENDING:
                return False
            self._state = answer
            return True

    def _refuse(self, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
        response = self._exchange.response
        response.status = status
        for name, value in headers:
            response.set_header(name, value)
        response.set_header("Connection", "close")
        try:
            response.send_all(body)
        except ClientDisconnected:
            pass

    # == any thread: sending ====================================================================

    @property
    def closed(self) -> bool:
        """Whether nothing more can be sent (any thread)."""
        session = self._session
        return session is None or session.close_sent or self._wire.closed

    def _open_session(self) -> Session:
        session = self._session
        if session is None:
            raise RuntimeError("the WebSocket handshake is not accepted yet")
        return session

    def send(self, data: str | bytes) -> None:
        """Queue a message; off the loop thread, wait for room (any thread)."""
        session = self._open_session()

        def frame() -> bytes:
            if session.close_sent:
                raise ClientDisconnected("the WebSocket is closing")
            out = session.send(data)
            self.messages_out += 1
            self.bytes_out += len(out)
            return out

        self._wire.queue_frames(frame, True)

    def ping(self, payload: bytes) -> None:
        """Queue a ping (any thread)."""
        session = self._open_session()
        self._wire.queue_frames(lambda: session.ping(payload), False)

    def close(self, code: int, reason: str) -> None:
        """Queue a close frame and start the close handshake's clock (any thread)."""
        session = self._session
        if session is None or self._wire.closed:
            return
        sent: list[bool] = []

        def frame() -> bytes:
            out = session.close(code, reason)
            if out:
                sent.append(True)
            return out

        try:
            self._wire.queue_frames(frame, False)
        except ClientDisconnected:
            return
        if sent:
            if self._loop.in_loop_thread():
                self._close_started()
            else:
                self._loop.call_soon(self._close_started)

    # == loop thread ============================================================================

    def start(self, trailing: bytes, eof: bool) -> None:
        """The connection is switched over: read what came with the handshake (loop)."""
        self._counters.websockets_open += 1
        self._counted_open = True
        self.deadlines = WebSocketDeadlines(
            self.options.websocket_ping_interval,
            self.options.websocket_ping_timeout,
            self.options.websocket_close_timeout,
            time.monotonic(),
        )
        if trailing:
            self.on_data(trailing)
        if eof:
            self.on_data(b"")

    def on_data(self, data: bytes) -> None:
        """Feed bytes read (``b""``: the peer closed its side) and post the events (loop)."""
        session = self._session
        assert session is not None
        self.bytes_in += len(data)
        if not data:
            self._take(self._wire.feed_frames(lambda: session.receive(None, -1)), True)
            return
        received = self._wire.feed_frames(lambda: session.receive(data, MESSAGES_PER_SLICE))
        self._take(received, False)

    def _continue(self) -> None:
        """Parse the next slice of what the last read brought (loop; a later pass)."""
        session = self._session
        if session is None or self._connection.closed:
            return
        self._take(self._wire.feed_frames(lambda: session.receive(b"", MESSAGES_PER_SLICE)), False)

    def _queue_continue(self) -> None:
        self._loop.call_soon(self._continue)

    def _take(self, received: tuple[list[SessionEvent], bool], eof: bool) -> None:
        """Act on a slice of events and post them to the strand (loop)."""
        events, more = received
        flow = self._connection.flow
        if more:
            # Fairness, as for pipelined requests: one slice of messages per pass of the
            # loop; the rest of what was read waits for the next pass, reading stopped.
            flow.hold_slice(True)
            self._loop.at_end_of_pass(self._queue_continue)
        elif flow.yielded:
            flow.hold_slice(False)
        if not events:
            return
        pause = False
        for event in events:
            if type(event) is Received:
                self.messages_in += 1
                self._counters.websocket_messages_received += 1
                if not self._listeners_inline:
                    with self._lock:
                        self._pending += event.size
                        pause = self._pending > self.options.max_body_buffer
            elif type(event) is ReceivedPong:
                self.deadlines.pong_received()
            elif type(event) is Closed or type(event) is Failed:
                if eof or (type(event) is Closed and event.reply):
                    # The client closed first (its close frame, or its socket): the cause of
                    # the connection's closing, whoever shuts the socket down.
                    self._connection.meter.closing("client")
                if type(event) is Closed and event.reply and not eof:
                    continue  # _deliver answers the close, then finishes
                if eof:
                    self._connection.close()  # the peer is gone: nothing to send
                else:
                    self._finish()
        self._strand.post(self._deliver, events)
        if pause:
            # The listeners are behind: read no more until they catch up (_deliver).
            self._connection.flow.pause_for_body()

    def _finish(self) -> None:
        """The close frames crossed, or the connection was failed: FIN once sent (loop)."""
        if not self._fin_sent:
            self._fin_sent = True
            self._connection.sender.close_when_sent()

    def _close_started(self) -> None:
        self.deadlines.close_started(time.monotonic())

    def _resume(self) -> None:
        self._connection.flow.resume_for_body()

    def _report_sent(self) -> None:
        """Add the messages sent since the last report to the server's counters (loop)."""
        sent = self.messages_out  # one read of an int another thread may be adding to
        if sent != self._reported_out:
            self._counters.websocket_messages_sent += sent - self._reported_out
            self._reported_out = sent

    def check(self, now: float) -> None:
        """Act on the deadline that is due (loop; the server's sweep)."""
        self._report_sent()
        due = self.deadlines.check(now)
        if due is None:
            return
        if due is PING_DUE:
            session = self._session
            if session is not None:
                self.deadlines.ping_sent(now)
                try:
                    self._wire.queue_frames(lambda: session.ping(b""), False)
                except ClientDisconnected:
                    pass
        elif due is PEER_DEAD or due is CLOSE_OVER:
            logger.info("closing WebSocket of %s: %s", self._connection.client_address, due.value)
            # Named after the option that expired (see _stats.WEBSOCKET_CLOSE_CAUSES).
            cause = "websocket_ping_timeout" if due is PEER_DEAD else "websocket_close_timeout"
            self._connection.meter.closing(cause)
            self._connection.close()

    def going_away(self) -> None:
        """The server shuts down: close with 1001 (loop)."""
        if self._session is not None:
            self.close(1001, "server shutting down")

    def connection_closed(self) -> None:
        """The connection closed: report 1006 unless the end was reported (loop)."""
        if self._counted_open:
            self._counted_open = False
            self._counters.websockets_open -= 1
            self._report_sent()
        if self._state == _OPEN:
            self._strand.post(self._report_close, 1006, "")

    # == strand: delivering events ===============================================================

    def _deliver(self, events: list[SessionEvent]) -> None:
        ws = self.ws
        resume = False
        for event in events:
            if isinstance(event, Received):
                if not self._listeners_inline:
                    with self._lock:
                        before = self._pending
                        self._pending = before - event.size
                        limit = self.options.max_body_buffer
                        resume = resume or before > limit >= self._pending
                self._guard(ws.emit, "message", event.data)
            elif isinstance(event, ReceivedPing):
                self._guard(ws.emit, "ping", event.payload)
            elif isinstance(event, ReceivedPong):
                self._guard(ws.emit, "pong", event.payload)
            elif isinstance(event, Failed):
                self._guard(ws.emit, "error", WebSocketError(event.code, event.reason))
                self._report_close(event.code, event.reason)
            elif isinstance(event, Closed):
                if event.reply:
                    self._reply_close()
                self._report_close(event.code, event.reason)
        if resume:
            self._loop.call_soon(self._resume)

    def _reply_close(self) -> None:
        """Answer the peer's close, now that the listeners have had the messages before it
        (and sent their answers), then FIN once it is sent (strand)."""
        session = self._session
        assert session is not None
        try:
            self._wire.queue_frames(session.reply_close, False)
        except ClientDisconnected:
            return
        if self._loop.in_loop_thread():
            self._finish()
        else:
            self._loop.call_soon(self._finish)

    def _report_close(self, code: int, reason: str) -> None:
        if self._close_reported:
            return
        self._close_reported = True
        ws = self.ws
        self._failed = False  # "close" is always delivered
        self._guard(ws.emit, "close", code, reason)
        drop_listeners(ws)
        hook = self._context.access_log
        if hook is not None and self._switched:
            duration = time.perf_counter() - self._started
            # Read off the loop thread: counts a frame or two short at worst, for a log line.
            counts = (self.messages_in, self.bytes_in, self.messages_out, self.bytes_out)
            closed = getattr(hook, "websocket_closed", None)
            try:
                if closed is not None:
                    closed(ws.request, duration, counts)
                else:
                    hook(ws.request, 101, self.bytes_out, duration)
            except Exception:
                logger.exception("the access log hook raised")

    # Any: the emitted event's arguments are whatever its listeners take.
    def _guard(self, emit: Callable[..., object], *args: Any) -> None:
        """Call listeners; one that raises fails the WebSocket with 1011 (strand)."""
        if self._failed:
            return
        try:
            emit(*args)
        except ClientDisconnected:
            pass
        except Exception as exc:
            self._failed = True
            logger.error("WebSocket listener for %s raised", self.ws.request.target, exc_info=exc)
            self.close(1011, "internal error")
