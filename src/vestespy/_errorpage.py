"""The plain-text error page the server sends when a ``"request"`` listener raises."""

from __future__ import annotations

from .headers import Headers
from .response import _NEW, Response

__all__ = ["answer_with_error"]


def answer_with_error(response: Response, status: int, body: str) -> bool:
    """Answer with an error page if no head was sent yet (the server's listener guard).

    Args:
        response: The response the failed listener was given.
        status: The error status, such as 500.
        body: The page's text, sent as UTF-8.

    Returns:
        Whether the error page was sent; False if the response had already started.
    """
    if response._head_sent:
        return False
    # The listener's status and headers give way to the error page; the connection closes
    # after it, as the listener may have left the request's body unread.
    response._state = _NEW
    response.status = status
    response.reason = None
    response.headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
    )
    response.send_all(body)
    return True
