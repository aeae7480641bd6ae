"""The phase of a client connection: one named state instead of a handful of booleans.

Theory of operation: a connection is in exactly one :class:`Phase` at a time, moved by the
connection (loop thread) as bytes, requests and responses come and go. What the phase does not
say is flow control (paused for a pipelined response, paused while listeners are behind on a
body, yielded its slice of the loop, closing once the output is sent); the connection derives
whether to read from the phase and those flags in one place. The deadlines
(:mod:`vestespy._deadlines`) read the phase to know which clock applies.

Stdlib only; no state of its own.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "AWAITING_RESPONSE",
    "CLOSED",
    "HANDSHAKING",
    "IDLE",
    "LINGERING",
    "NO_REQUEST",
    "READING_BODY",
    "READING_HEAD",
    "WEBSOCKET",
    "Phase",
]


class Phase(enum.Enum):
    """Where a connection is in its life."""

    #: The TLS handshake is under way (plain TCP starts in :attr:`IDLE`).
    HANDSHAKING = "handshaking"
    #: No request under way and not one byte of the next head received: a new connection
    #: or a keep-alive connection between requests.
    IDLE = "idle"
    #: Bytes of a request head came; the head is not complete yet.
    READING_HEAD = "reading head"
    #: A request started and its body is still coming (a response may already be out).
    READING_BODY = "reading body"
    #: The whole request came; the application owes (the rest of) its response.
    AWAITING_RESPONSE = "awaiting response"
    #: The connection was handed to a WebSocket (``101 Switching Protocols`` sent).
    WEBSOCKET = "websocket"
    #: FIN sent after the last response; reading and discarding until the client closes.
    LINGERING = "lingering"
    #: The socket is closed.
    CLOSED = "closed"


# The members as module constants: looking a member up on an Enum class costs about five times
# a plain attribute in CPython (and a Python-level lookup in the compiled build too), and the
# connection checks its phase several times per request.
HANDSHAKING: Final = Phase.HANDSHAKING
IDLE: Final = Phase.IDLE
READING_HEAD: Final = Phase.READING_HEAD
READING_BODY: Final = Phase.READING_BODY
AWAITING_RESPONSE: Final = Phase.AWAITING_RESPONSE
LINGERING: Final = Phase.LINGERING
WEBSOCKET: Final = Phase.WEBSOCKET
CLOSED: Final = Phase.CLOSED

#: The phases in which no request is under way (a head may be arriving).
NO_REQUEST: Final = (HANDSHAKING, IDLE, READING_HEAD)
