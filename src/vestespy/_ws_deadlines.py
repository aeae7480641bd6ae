"""The deadlines of one WebSocket (sans-IO: every method takes the time).

Theory of operation: a :class:`WebSocketDeadlines` is told when pings go out, pongs come back
and the close handshake starts; :meth:`WebSocketDeadlines.check` answers, for a time, what is
due (the first that applies wins; "past" means strictly greater than the limit):

* **Close handshake** (``websocket_close_timeout``): from the close frame the server sent (or
  the one it answered), the peer must close; past it, :data:`CLOSE_OVER` (close the socket).
* **Pong timeout** (``websocket_ping_timeout``, None turns it off): from a ping the server
  sent, a pong must come; past it, :data:`PEER_DEAD` (fail the connection, 1006 reported).
  A peer that stops reading (its window full, the ping stuck in the server's buffer) gets
  here too.
* **Ping interval** (``websocket_ping_interval``, None turns it off): at least this long after
  the last ping (or the open) with no pong awaited, :data:`PING_DUE`.

The sweep of the server calls :meth:`check`; nothing here reads a clock. Loop thread only.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["CLOSE_OVER", "PEER_DEAD", "PING_DUE", "Due", "WebSocketDeadlines"]


class Due(enum.Enum):
    """What a WebSocket's deadline asks for."""

    #: Send a ping (its pong is then awaited).
    PING = "ping"
    #: No pong within the timeout: the peer is gone.
    DEAD = "no pong within websocket_ping_timeout"
    #: The close handshake did not end within its timeout.
    CLOSE = "close handshake not over within websocket_close_timeout"


PING_DUE: Final = Due.PING
PEER_DEAD: Final = Due.DEAD
CLOSE_OVER: Final = Due.CLOSE


class WebSocketDeadlines:
    """Ping, pong and close-handshake deadlines of one WebSocket.

    Args:
        ping_interval: Seconds between pings; None sends none.
        ping_timeout: Seconds a pong may take; None waits for ever.
        close_timeout: Seconds the close handshake may take.
        now: When the WebSocket opened.
    """

    __slots__ = (
        "_close_since",
        "_close_timeout",
        "_closing",
        "_last_ping",
        "_ping_interval",
        "_ping_timeout",
        "_pong_awaited",
    )

    def __init__(
        self,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
        now: float,
    ) -> None:
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._last_ping = now
        self._pong_awaited = False
        self._closing = False
        self._close_since = now

    def ping_sent(self, now: float) -> None:
        """A ping went out (the server's, or the application's): a pong is awaited."""
        self._last_ping = now
        self._pong_awaited = True

    def pong_received(self) -> None:
        """A pong came: the peer is alive and reads."""
        self._pong_awaited = False

    def close_started(self, now: float) -> None:
        """A close frame went out: the close handshake's clock starts (once)."""
        if not self._closing:
            self._closing = True
            self._close_since = now

    def check(self, now: float) -> Due | None:
        """What is due at ``now`` (see the module's theory of operation), or None."""
        if self._closing:
            if now - self._close_since > self._close_timeout:
                return CLOSE_OVER
            return None
        if self._pong_awaited:
            timeout = self._ping_timeout
            if timeout is not None and now - self._last_ping > timeout:
                return PEER_DEAD
            return None
        interval = self._ping_interval
        if interval is not None and now - self._last_ping >= interval:
            return PING_DUE
        return None

    def shortest(self) -> float | None:
        """The shortest of the limits (the sweep runs often enough for it), or None."""
        limits = [
            limit
            for limit in (self._ping_interval, self._ping_timeout, self._close_timeout)
            if limit is not None
        ]
        return min(limits) if limits else None
