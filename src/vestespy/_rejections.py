"""The server's own answers: each kind reported from one place, for the access log.

Theory of operation: the application's responses reach the access log through their exchange
(:class:`~vestespy._exchange.LoggedExchange`); the answers the server makes itself are
reported here, one function per kind, each called from one place:

* :func:`server_rejected`: the driver refused a request (a protocol error, a limit such as
  413, 414 or 431, or a deadline's 408) and queued an error response. Called by the
  connection when the driver's :class:`~vestespy._driver.RequestRejected` comes out, with
  the request's exchange if the head had been handed on. A rejection that sends nothing
  (the client hung up mid-request, or a response had already started) is not a line: no
  response left the server (see docs/observability.rst).
* :func:`refuse`: the server answers a parsed request itself through the ordinary response
  path (``limit_concurrency``'s 503): the request is marked, and its exchange reports it as
  it reports any response.
* :func:`plaintext_refused`: a plain HTTP request came to a TLS port and got its 400.

Each such line's request has :attr:`~vestespy.Request.rejection` set to the reason, which the
formatters mark (``rejected="..."`` in text, ``"rejected": true`` in JSON). A request refused
before its head was parsed is stood for by a :class:`~vestespy.Request` with method and
target ``"-"``; one refused as its head was parsed carries that head.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ._transport import PLAINTEXT_BODY_SIZE

if TYPE_CHECKING:
    from ._connection import Connection
    from ._driver import RequestRejected
    from ._exchange import Exchange
    from .access_log import AccessHook
    from .request import Request

__all__ = [
    "CONCURRENCY_LIMIT",
    "PLAINTEXT_ON_TLS",
    "plaintext_refused",
    "refuse",
    "server_rejected",
]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: The reason of a 503 for ``limit_concurrency``.
CONCURRENCY_LIMIT = "concurrency limit"
#: The reason of the 400 for a plain HTTP request on a TLS port.
PLAINTEXT_ON_TLS = "plain HTTP request on the TLS port"


def server_rejected(
    connection: Connection, event: RequestRejected, exchange: Exchange | None
) -> None:
    """The driver refused a request and its answer is queued, or it sent none (loop thread).

    Args:
        connection: The client's connection.
        event: The driver's rejection; ``event.response`` empty: nothing is sent, no line.
        exchange: The refused request's exchange if its head had been handed on (a body or
            a deadline refused it), else None (its head was refused, or never came whole).
    """
    hook = connection.access_log
    if hook is None or not event.response:
        return
    if exchange is not None:
        request = exchange.request
    else:
        request = connection.context.rejected_request(event.started, connection.client_address)
    duration = connection.deadlines.head_age(time.monotonic())
    _log(hook, request, event.status, event.reason, event.body_bytes, duration)


def refuse(request: Request, reason: str) -> None:
    """The server answers ``request`` itself, through its response (any thread)."""
    request.rejection = reason


def plaintext_refused(connection: Connection) -> None:
    """A plain HTTP request came to a TLS port; its 400 is about to be sent (loop thread)."""
    hook = connection.access_log
    if hook is None:
        return
    request = connection.context.rejected_request(None, connection.client_address)
    duration = connection.deadlines.head_age(time.monotonic())
    _log(hook, request, 400, PLAINTEXT_ON_TLS, PLAINTEXT_BODY_SIZE, duration)


def _log(
    hook: AccessHook, request: Request, status: int, reason: str, body_bytes: int, duration: float
) -> None:
    request.rejection = reason
    try:
        hook(request, status, body_bytes, duration)
    except Exception:
        logger.exception("the access log hook raised")
