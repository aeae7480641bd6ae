"""The public :class:`WebSocket`: one WebSocket connection, an emitter of its messages.

The server makes one for each valid opening handshake and hands it to its ``"websocket"``
listeners (see :doc:`/websocket`); the protocol work happens in the connection's
``WebSocketLink`` (a private module), which this object fronts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal, Protocol, overload

from ._emitter import EventEmitter, Listener

if TYPE_CHECKING:
    from typing_extensions import Self

    from .request import Request

__all__ = ["WebSocket", "WebSocketEvent"]

#: The events a :class:`WebSocket` emits.
WebSocketEvent = Literal["message", "close", "error", "ping", "pong"]


class _Link(Protocol):
    """What a WebSocket needs of its connection (the server's ``WebSocketLink``)."""

    def accept(self, subprotocol: str | None) -> None:
        """Answer the handshake with 101."""

    def reject(self, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
        """Answer the handshake with ``status``."""

    def send(self, data: str | bytes) -> None:
        """Queue a message."""

    def ping(self, payload: bytes) -> None:
        """Queue a ping."""

    def close(self, code: int, reason: str) -> None:
        """Queue a close frame."""

    @property
    def closed(self) -> bool:
        """Whether nothing more can be sent."""


class WebSocket(EventEmitter[WebSocketEvent]):
    """A WebSocket connection (RFC 6455): an emitter of its messages, and their sender.

    Events (each listener gets the WebSocket first):

    * ``"message"``: ``fn(ws, data)``, ``data`` a ``str`` for a text message, ``bytes`` for
      a binary one; whole messages, in order.
    * ``"ping"`` and ``"pong"``: ``fn(ws, payload: bytes)`` (the pong to a ping is sent by
      the server).
    * ``"error"``: ``fn(ws, exc)``: the peer broke the protocol or a limit (``exc`` is a
      :class:`~vestespy.WebSocketError` with the close code sent), or a listener raised.
    * ``"close"``: ``fn(ws, code, reason)``, exactly once and last: the close handshake is
      over (``code`` is the peer's, 1005 if it gave none), the connection was failed (the
      code the server sent), or it was lost (1006).

    Listeners run on the connection's strand (a pool thread, or the loop thread with
    ``max_workers=0``), one at a time, in order. :meth:`send`, :meth:`ping` and
    :meth:`close` are safe from any thread; off the loop thread :meth:`send` waits while
    more than ``write_buffer_size`` bytes wait for the client (backpressure).

    The ``"websocket"`` listeners of the server run before the handshake is answered: they
    may call :meth:`accept` (to choose a subprotocol) or :meth:`reject`; with neither, the
    handshake is accepted without a subprotocol once they return.
    """

    #: The opening handshake's request (headers, path, client address, scheme).
    request: Request
    #: The subprotocols the client offered, in its order of preference.
    subprotocols: tuple[str, ...]
    #: The subprotocol chosen in :meth:`accept`, or None.
    subprotocol: str | None
    #: The names of the extensions negotiated, such as ``("permessage-deflate",)``; ``()``
    #: until the handshake is accepted (the ``101`` settles them).
    extensions: tuple[str, ...]

    def __init__(self, link: _Link, request: Request, subprotocols: tuple[str, ...]) -> None:
        """Made by the server for each valid handshake; applications do not make them."""
        super().__init__()
        self._link = link
        self.request = request
        self.subprotocols = subprotocols
        self.subprotocol = None
        self.extensions = ()

    @property
    def closed(self) -> bool:
        """Whether nothing more can be sent (a close frame went out, or the connection is
        gone)."""
        return self._link.closed

    def accept(self, subprotocol: str | None = None) -> None:
        """Complete the opening handshake now (``101 Switching Protocols``).

        Call it from a ``"websocket"`` listener; messages may be sent once it returns.

        Args:
            subprotocol: One of :attr:`subprotocols`, or None for none.

        Raises:
            ValueError: ``subprotocol`` is not one the client offered.
            RuntimeError: The handshake was already accepted or rejected.
            ClientDisconnected: The client is gone.
        """
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client "
                f"(offered: {', '.join(self.subprotocols) or 'none'})"
            )
        self._link.accept(subprotocol)

    def reject(
        self, status: int = 403, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Refuse the opening handshake: answer with ``status`` (and ``body``) instead of
        101; the connection closes after it. Call it from a ``"websocket"`` listener.

        Raises:
            ValueError: ``status`` is not a final status (200-599) or is 101.
            RuntimeError: The handshake was already accepted or rejected.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"a refusal needs a status in 200-599, not {status}")
        self._link.reject(status, body, headers)

    def send(self, data: str | bytes) -> None:
        """Send a message: text for ``str``, binary for ``bytes`` (any thread).

        Raises:
            TypeError: ``data`` is neither ``str`` nor bytes-like.
            ClientDisconnected: The WebSocket is closing or closed.
            RuntimeError: The handshake is not accepted yet.
        """
        # object: callers outside type checking pass anything.
        value: object = data
        if type(value) is not str and type(value) is not bytes:
            if isinstance(value, bytearray | memoryview):
                value = bytes(value)
            elif isinstance(value, str):
                value = str(value)
            else:
                raise TypeError(f"a message is str or bytes, not {type(value).__name__}")
        self._link.send(value)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (up to 125 bytes of payload; any thread).

        Raises:
            ValueError: The payload is longer than 125 bytes.
            ClientDisconnected: The connection is gone.
        """
        if len(payload) > 125:
            raise ValueError("a ping's payload is at most 125 bytes")
        self._link.ping(bytes(payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (any thread; nothing if it already started).

        ``"close"`` follows once the client answers, or after ``websocket_close_timeout``.

        Args:
            code: 1000 (normal), 1001 (going away), 1008 (policy), 1011 (server error), or an
                application's code in 3000-4999.
            reason: Up to 123 bytes of UTF-8.

        Raises:
            ValueError: The code may not be sent, or the reason is too long.
        """
        if not (code in (1000, 1001, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code <= 4999):
            raise ValueError(f"close code {code} may not be sent")
        if len(reason.encode()) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8")
        self._link.close(code, reason)

    @overload
    def on(
        self, event: Literal["message"], listener: Callable[[Self, str | bytes], None]
    ) -> Self: ...
    @overload
    def on(self, event: Literal["close"], listener: Callable[[Self, int, str], None]) -> Self: ...
    @overload
    def on(self, event: Literal["error"], listener: Callable[[Self, Exception], None]) -> Self: ...
    @overload
    def on(
        self, event: Literal["ping", "pong"], listener: Callable[[Self, bytes], None]
    ) -> Self: ...
    def on(self, event: WebSocketEvent, listener: Listener) -> Self:
        """Call ``listener`` each time ``event`` is emitted (see the class for events)."""
        return super().on(event, listener)

    @overload
    def once(
        self, event: Literal["message"], listener: Callable[[Self, str | bytes], None]
    ) -> Self: ...
    @overload
    def once(self, event: Literal["close"], listener: Callable[[Self, int, str], None]) -> Self: ...
    @overload
    def once(
        self, event: Literal["error"], listener: Callable[[Self, Exception], None]
    ) -> Self: ...
    @overload
    def once(
        self, event: Literal["ping", "pong"], listener: Callable[[Self, bytes], None]
    ) -> Self: ...
    def once(self, event: WebSocketEvent, listener: Listener) -> Self:
        """Like :meth:`on`, but the listener is removed after its first call."""
        return super().once(event, listener)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<WebSocket {self.request.path} {state}>"
