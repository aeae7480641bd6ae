"""Test support: a server running in a thread, a raw HTTP/1.1 client over real sockets, and
polling a condition with a deadline."""

from .client import ParsedResponse, RawClient
from .polling import poll
from .server import Serve, ServerThread, serve

__all__ = ["ParsedResponse", "RawClient", "Serve", "ServerThread", "poll", "serve"]
