"""Exceptions raised by VestesPy."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ClientDisconnected",
    "ResponseAlreadyStarted",
    "StreamLengthError",
    "WebSocketError",
]


class ClientDisconnected(ConnectionError):
    """The client went away before the response could be sent.

    Raised by :meth:`Response.send_stream <vestespy.Response.send_stream>` and
    :meth:`Response.send_chunked <vestespy.Response.send_chunked>` so that a listener stops
    producing a body nobody will read. Listeners need not catch it: the server treats it as
    the normal end of that request and does not log it as an error.
    """

    @classmethod
    def closed_mid_response(cls) -> ClientDisconnected:
        """The error a write raises when the connection closed while the response was sent.

        One message for every place that finds it so, in the server and in the WSGI adapter.

        Returns:
            A new :exc:`ClientDisconnected`.
        """
        return cls("the connection closed while the response was sent")


class ResponseAlreadyStarted(RuntimeError):
    """A second response was started for one request (a programming error)."""


class StreamLengthError(ValueError):
    """A ``send_stream`` body came up short of, or ran over, its declared length.

    The connection is closed rather than sending a message whose framing lies.
    """


class BadRequest(Exception):
    """The client broke HTTP/1.1; passed to a request's ``"error"`` listeners."""

    #: The status code the client was (or would have been) answered with.
    status: int
    #: What was wrong.
    reason: str

    def __init__(self, status: int, reason: str) -> None:
        """Create the error.

        Args:
            status: The status code of the response.
            reason: What was wrong, such as the name of the rule broken.
        """
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class WebSocketError(Exception):
    """A WebSocket was failed: the peer broke RFC 6455 or a limit (passed to its ``"error"``
    listeners, with the close code the server sent)."""

    #: The close code sent, such as 1002 (protocol error), 1007 (bad UTF-8) or 1009 (too big).
    code: int
    #: What was wrong.
    reason: str

    def __init__(self, code: int, reason: str) -> None:
        """Create the error.

        Args:
            code: The close code sent to the peer.
            reason: What was wrong.
        """
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
