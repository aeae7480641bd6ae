"""Cutting a request and its response loose from their exchange once it is over.

The exchange refers to the request and the response, and they refer back to it: without
this the three, and what they hold, would wait for the cyclic garbage collector instead of
being freed by reference counting as soon as the application lets go of them.
"""

from __future__ import annotations

from .request import Request
from .response import _CLOSED_CHANNEL, Response

__all__ = ["detach"]


def detach(request: Request, response: Response) -> None:
    """Cut a request and its response loose from their exchange, which is over.

    The request forgets its connection (a late listener asks for no ``100 Continue``); the
    response points at a closed channel, so anything the application still sends goes nowhere,
    as it would on a closed connection. One call for both: it runs once per request.
    """
    request._connection = None
    request._expects_continue = False
    response._channel = _CLOSED_CHANNEL
