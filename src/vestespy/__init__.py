"""VestesPy: a pure-Python HTTP/1.1 server with a Node.js-style event API, on h11.

Example:
    .. code-block:: python

        import vestespy

        def onend(ev, req, res):
            res.send_all("TEST")

        def onrequest(ev, req, res):
            req.on("end", onend)

        server = vestespy.Server(("localhost", 8080))
        server.on("request", onrequest)
        server.serve_forever()
"""

from ._backends import available_backends
from ._core import BuildInfo, build_info
from ._emitter import EventEmitter
from .errors import (
    BadRequest,
    ClientDisconnected,
    ResponseAlreadyStarted,
    StreamLengthError,
    WebSocketError,
)
from .headers import Headers
from .options import ServerOptions, ServerOptionsKwargs
from .request import Request
from .response import Response
from .server import Server
from .websocket import WebSocket
from .wsgi import serve

__version__ = "0.1.0.dev0"

# After the names above: the tools are built on them. Imported so that ``import vestespy``
# alone makes ``vestespy.tools.Dispatcher`` reachable, as the seed's example expects.
from . import tools as tools

__all__ = [
    "BadRequest",
    "BuildInfo",
    "ClientDisconnected",
    "EventEmitter",
    "Headers",
    "Request",
    "Response",
    "ResponseAlreadyStarted",
    "Server",
    "ServerOptions",
    "ServerOptionsKwargs",
    "StreamLengthError",
    "WebSocket",
    "WebSocketError",
    "__version__",
    "available_backends",
    "build_info",
    "serve",
]
