"""Test support: a server running in a thread, and a raw HTTP/1.1 client over real sockets."""

from .client import ParsedResponse, RawClient
from .server import ServerThread, serve

__all__ = ["ParsedResponse", "RawClient", "ServerThread", "serve"]
