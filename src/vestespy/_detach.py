"""Cutting a request and its response loose from their exchange once it is over.

The exchange refers to the request and the response, and they refer back to it: without
these the three, and what they hold, would wait for the cyclic garbage collector instead of
being freed by reference counting as soon as the application lets go of them.
"""

from __future__ import annotations

from .request import Request
from .response import _CLOSED_CHANNEL, Response

__all__ = ["detach_request", "detach_response"]


def detach_request(request: Request) -> None:
    """Forget the request's connection: a late listener asks for no ``100 Continue``."""
    request._connection = None
    request._expects_continue = False


def detach_response(response: Response) -> None:
    """Point the response at a closed channel.

    Anything the application still sends goes nowhere, as it would on a closed connection.
    """
    response._channel = _CLOSED_CHANNEL
