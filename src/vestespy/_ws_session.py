"""One WebSocket's protocol state on wsproto: frames in, whole messages out; messages in,
frames out (sans-IO).

Theory of operation: a :class:`Session` wraps a ``wsproto.connection.Connection`` (the frame
layer, after the opening handshake that h11 carried). :meth:`Session.receive` feeds what the
socket read and returns the events it made (whole messages, pings, pongs, the peer's close, a
protocol failure) and the bytes owed in answer (a pong, the close that fails the connection).
The answer to the peer's close is framed later (:meth:`Session.reply_close`), once the
listeners have had the messages before it. Message bytes are counted as wsproto hands each
piece of a frame over, so a message over ``max_message_size`` fails the connection with 1009
before it is buffered whole (``_ws_deflate`` bounds permessage-deflate's output by the same
limit).

Not thread-safe: its owner (the connection's :class:`~vestespy._wire.Wire`) calls it under the
lock that also orders the bytes in the output buffer. wsproto is imported here and in
``_ws_deflate`` only, and these modules only once a handshake is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

__all__ = [
    "Closed",
    "Failed",
    "Received",
    "ReceivedPing",
    "ReceivedPong",
    "Session",
    "SessionEvent",
]

#: Close codes (RFC 6455 7.4.1).
NORMAL = 1000
GOING_AWAY = 1001
ABNORMAL = 1006
TOO_BIG = 1009
INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True)
class Received:
    """A whole message: ``str`` for text, ``bytes`` for binary."""

    data: str | bytes
    size: int  # its payload bytes (UTF-8 for text)


@dataclass(frozen=True, slots=True)
class ReceivedPing:
    """A ping came (its pong is already queued)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class ReceivedPong:
    """A pong came."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The close handshake is over, or the connection is lost (``code`` 1006): report it.

    ``reply``: the peer closed first and the answer is not sent yet. Its owner sends it
    (:meth:`Session.reply_close`) once the events before this one reached the listeners, so
    what they send in answer to those messages leaves before the close (RFC 6455 5.5.1).
    """

    code: int
    reason: str
    reply: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """The peer broke the protocol or a limit; the connection was failed with ``code``."""

    code: int
    reason: str


SessionEvent = Received | ReceivedPing | ReceivedPong | Closed | Failed


class Session:
    """The frame layer of one WebSocket (under its wire's lock).

    Args:
        max_message_size: Bytes a message may have; past it the connection fails with 1009.
        extensions: The extensions negotiated in the handshake.
    """

    __slots__ = (
        "_close_reply",
        "_conn",
        "_max_size",
        "_parts",
        "_size",
        "close_received",
        "close_sent",
        "done",
    )

    def __init__(self, max_message_size: int, extensions: list[Extension]) -> None:
        self._conn = Connection(ConnectionType.SERVER, extensions)
        self._max_size = max_message_size
        self._parts: list[str | bytes] = []  # pieces of the message being received
        self._size = 0
        self._close_reply: CloseConnection | None = None  # the answer owed to the peer's close
        #: A close frame was sent; no message may follow it.
        self.close_sent = False
        #: The peer's close frame came.
        self.close_received = False
        #: Closed was returned: nothing more is reported.
        self.done = False

    def receive(
        self, data: bytes | None, budget: int
    ) -> tuple[tuple[list[SessionEvent], bool], bytes]:
        """Feed what the socket read (``b""``: nothing new, go on parsing what is buffered;
        None: the peer closed the TCP connection) and parse at most ``budget`` events.

        Returns:
            The events and whether frames may be left over past the budget (call again with
            ``b""``), and the bytes to send in answer.
        """
        events: list[SessionEvent] = []
        if self.done or self._conn.state is ConnectionState.CLOSED:
            return (events, False), b""
        if data is None:
            out = self._parse(events, -1)  # what was already buffered comes first
            if not self.done:
                self.done = True
                events.append(Closed(ABNORMAL, ""))
            return (events, False), out
        if data:
            self._conn.receive_data(data)
        more = False
        out = b""
        if budget:
            out = self._parse(events, budget)
            more = len(events) >= budget and not self._over()
        return (events, more), out

    def _parse(self, events: list[SessionEvent], budget: int) -> bytes:
        """Parse buffered frames into ``events`` until ``budget`` events (-1: all)."""
        conn = self._conn
        out = b""
        for event in conn.events():
            if isinstance(event, Message):
                if self.close_sent:
                    continue  # RFC 6455 5.5.1: nothing after a close frame counts
                out += self._on_message(event, events)
            elif isinstance(event, Ping):
                events.append(ReceivedPing(bytes(event.payload)))
                if not self.close_sent:
                    out += conn.send(event.response())
            elif isinstance(event, Pong):
                events.append(ReceivedPong(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                out += self._on_close(event, events)
            # Leaving wsproto's generator here loses nothing: its parser keeps the bytes and
            # its place, and the next call's generator resumes from them.
            if self._over() or len(events) == budget:
                break
        return out

    def _over(self) -> bool:
        # A call, not the field: the type checker would keep the field narrowed from above.
        return self.done

    # Any: wsproto's Message is generic in its data (str for text, bytes for binary).
    def _on_message(self, event: Message[Any], events: list[SessionEvent]) -> bytes:
        text = type(event) is TextMessage
        piece: str | bytes = event.data if text else bytes(event.data)
        size = len(piece.encode()) if isinstance(piece, str) else len(piece)
        self._size += size
        if self._size > self._max_size:
            self._parts = []
            self._size = 0
            return self._fail(TOO_BIG, "message too big", events)
        self._parts.append(piece)
        if event.message_finished:
            parts, self._parts = self._parts, []
            size, self._size = self._size, 0
            if len(parts) == 1:
                events.append(Received(parts[0], size))
            elif text:
                events.append(Received("".join(cast("list[str]", parts)), size))
            else:
                events.append(Received(b"".join(cast("list[bytes]", parts)), size))
        return b""

    def _on_close(self, event: CloseConnection, events: list[SessionEvent]) -> bytes:
        conn = self._conn
        state = conn.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close event, state unchanged:
            # the peer broke the protocol (1002), sent bad UTF-8 (1007) or a message too big.
            # A message over the limit says so whichever layer found it (BoundedDeflate's is
            # reported by wsproto as "error in extension").
            if event.code == TOO_BIG:
                return self._fail(TOO_BIG, "message too big", events)
            return self._fail(event.code, event.reason or "protocol error", events)
        self.close_received = True
        reason = event.reason or ""
        # The peer closed first: the answer waits for reply_close (see Closed). Otherwise it
        # answers our close: the handshake is over.
        reply = state is ConnectionState.REMOTE_CLOSING
        if reply:
            self._close_reply = event.response()  # echoes the code (RFC 6455 5.5.1)
        self.done = True
        code = event.code if event.code != CloseReason.NO_STATUS_RCVD else 1005
        events.append(Closed(int(code), reason, reply))
        return b""

    def reply_close(self) -> bytes:
        """Frame the answer to the peer's close (``b""`` if a close frame was already sent)."""
        answer = self._close_reply
        if answer is None or self.close_sent:
            return b""
        self._close_reply = None
        self.close_sent = True
        return self._conn.send(answer)

    def _fail(self, code: int, reason: str, events: list[SessionEvent]) -> bytes:
        """Fail the connection (RFC 6455 7.1.7): a close frame, then the TCP close."""
        out = b""
        if not self.close_sent:
            self.close_sent = True
            out = self._conn.send(CloseConnection(code=code, reason=reason[:120]))
        self.done = True
        events.append(Failed(code, reason))
        return out

    def send(self, data: str | bytes) -> bytes:
        """Frame a message.

        Raises:
            LocalProtocolError: A close frame was already sent.
        """
        if self.close_sent:
            raise LocalProtocolError("the WebSocket is closing")
        state = self._conn.state
        if state is not ConnectionState.OPEN and state is not ConnectionState.REMOTE_CLOSING:
            raise LocalProtocolError(f"no message may be sent in state {state.name}")
        # wsproto's frame layer, called as its Connection.send would call it (framing, and
        # compressing with permessage-deflate, the same way): Connection.send would first
        # make a message event and dispatch on its type, a third of the cost of framing a
        # 1 KiB message. It also refuses REMOTE_CLOSING, where the peer's close is parsed but
        # not answered yet (reply_close) and messages may still go out (RFC 6455 5.5.1).
        return bytes(self._conn._proto.send_data(data, True))

    def ping(self, payload: bytes) -> bytes:
        """Frame a ping (``b""`` once closing)."""
        if self.close_sent:
            return b""
        if self._conn.state is ConnectionState.REMOTE_CLOSING:
            return bytes(self._conn._proto.ping(payload))  # as in send()
        return self._conn.send(Ping(payload=payload))

    def close(self, code: int, reason: str) -> bytes:
        """Frame a close (``b""`` if one was already sent)."""
        if self.close_sent:
            return b""
        self.close_sent = True
        return self._conn.send(CloseConnection(code=code, reason=reason))
