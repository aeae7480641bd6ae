"""``Dispatcher``: route requests by path pattern or regular expression.

Built only on the public API: it is a ``"request"`` listener like any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .._mistakes import returned
from ..request import Request
from ..response import Response
from ..server import Server
from ..websocket import WebSocket

__all__ = ["Dispatcher", "RouteHandler"]

#: A route handler: ``fn(server, req, res, **params)``; it answers through ``res`` and returns
#: None (a value it returns is ignored, with a warning in the log).
RouteHandler = Callable[..., None]

# ":name" path segments; a name is a Python identifier so it can be a keyword argument.
_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class _Route:
    regex: re.Pattern[str]
    handler: RouteHandler
    methods: frozenset[str] | None
    # Path patterns match the whole raw (percent-encoded) path, so that "%2F" stays inside one
    # segment, and their parameters are decoded after matching. Regexes match the start of
    # the decoded path.
    is_path_pattern: bool


def _compile_path_pattern(pattern: str) -> re.Pattern[str]:
    parts = []
    position = 0
    for match in _PARAM.finditer(pattern):
        parts.append(re.escape(_encode_literal(pattern[position : match.start()])))
        parts.append(f"(?P<{match.group(1)}>[^/]+)")
        position = match.end()
    parts.append(re.escape(_encode_literal(pattern[position:])))
    return re.compile("".join(parts))


def _compile_route(pattern: str | re.Pattern[str], fn: object) -> tuple[re.Pattern[str], bool]:
    if not callable(fn):
        raise TypeError(f"route handler must be callable, not {fn!r}")
    if isinstance(pattern, re.Pattern):
        return pattern, False
    if pattern.startswith("^"):
        return re.compile(pattern), False
    if pattern.startswith("/") or pattern == "*":
        return _compile_path_pattern(pattern), True
    raise ValueError(f"route pattern {pattern!r} must start with '/' (a path) or '^' (a regex)")


def _match(route: _Route, req: Request) -> dict[str, str] | None:
    """The route's parameters for ``req``'s path, or None if it does not match."""
    if route.is_path_pattern:
        match = route.regex.fullmatch(req.raw_path)
    else:
        match = route.regex.match(req.path)
    if match is None:
        return None
    params = {k: v for k, v in match.groupdict().items() if v is not None}
    if route.is_path_pattern:
        params = {k: unquote(v) if "%" in v else v for k, v in params.items()}
    return params


def _encode_literal(text: str) -> str:
    # A literal such as "/café" is compared with the raw path, where it arrives encoded.
    return quote(text, safe="/*!$&'()+,;=:@~-._")


class Dispatcher:
    """Routes each request to the first registered handler whose pattern matches its path.

    A pattern is either a path whose ``:name`` segments match one path segment each and are
    passed to the handler as keyword arguments (``"/test/:id"``), or a regular expression,
    compiled or as a string starting with ``^``, whose named groups are passed the same way.
    The parameters are also set on :attr:`Request.params <vestespy.Request.params>`.

    A path pattern must match the whole path. It is matched against the path as received, so
    an encoded slash (``%2F``) stays inside one segment; each parameter is then
    percent-decoded. A regular expression is matched at the start of the decoded
    :attr:`Request.path <vestespy.Request.path>`; end it with ``$`` to match the whole path.

    The pattern ``"*"`` matches the asterisk-form target of ``OPTIONS * HTTP/1.1`` (RFC 9112
    3.2.4), which asks about the server as a whole rather than a resource; no other pattern
    matches it.

    No match answers 404; a path matched only by routes for other methods answers 405 with
    ``Allow``. A route that allows ``GET`` also answers ``HEAD``.

    Example:
        .. code-block:: python

            def test_id(ev, req, res, id=None):
                res.send_all(f"ID: {id}")

            dispatcher = Dispatcher()
            dispatcher.register("/", lambda ev, req, res: res.send_all("test"))
            dispatcher.register("/test/:id", test_id)
            server.on("request", dispatcher.as_handler())
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._websocket_routes: list[_Route] = []

    def register(
        self,
        pattern: str | re.Pattern[str],
        fn: RouteHandler,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Add a route; routes are tried in the order registered.

        Args:
            pattern: A ``/path/:param`` pattern, ``"*"`` for ``OPTIONS *``, or a regular
                expression (compiled, or a string starting with ``^``).
            fn: Called as ``fn(server, req, res, **params)``.
            methods: The methods it answers (any case); None for every method.

        Raises:
            TypeError: ``fn`` is not callable.
            ValueError: A string pattern is not ``"*"`` and starts with neither ``/`` nor
                ``^``.
        """
        regex, is_path_pattern = _compile_route(pattern, fn)
        allowed = None
        if methods is not None:
            allowed = frozenset(m.upper() for m in methods)
            if "GET" in allowed:
                allowed |= {"HEAD"}
        self._routes.append(_Route(regex, fn, allowed, is_path_pattern))

    def route(
        self, pattern: str | re.Pattern[str], methods: Iterable[str] | None = None
    ) -> Callable[[RouteHandler], RouteHandler]:
        """Decorator form of :meth:`register`."""

        def decorate(fn: RouteHandler) -> RouteHandler:
            self.register(pattern, fn, methods)
            return fn

        return decorate

    def dispatch(self, server: Server, req: Request, res: Response) -> None:
        """Route one request (the ``"request"`` listener :meth:`as_handler` returns)."""
        path = req.path
        allowed: set[str] = set()
        for route in self._routes:
            params = _match(route, req)
            if params is None:
                continue
            if route.methods is not None and req.method not in route.methods:
                allowed |= route.methods
                continue
            req.params = params
            # Typed to return None, but a handler may return something anyway: warn then.
            handler: Callable[..., object] = route.handler
            result = handler(server, req, res, **params)
            if result is not None:
                returned(route.handler, result)
            return
        if allowed:
            res.status = 405
            res.set_header("Allow", ", ".join(sorted(allowed)))
            res.send_all(f"405 Method Not Allowed: {req.method} {path}\n")
        else:
            res.status = 404
            res.send_all(f"404 Not Found: {path}\n")

    def as_handler(self) -> Callable[[Server, Request, Response], None]:
        """Return the ``"request"`` listener that routes through this dispatcher."""
        return self.dispatch

    # -- WebSockets ------------------------------------------------------------------------------

    def register_websocket(self, pattern: str | re.Pattern[str], fn: RouteHandler) -> None:
        """Add a WebSocket route, tried in the order registered.

        Args:
            pattern: As for :meth:`register`.
            fn: Called as ``fn(server, ws, req, **params)`` before the handshake is answered
                (it may ``ws.accept(subprotocol)`` or ``ws.reject(status)``).

        Raises:
            TypeError: ``fn`` is not callable.
            ValueError: The pattern is neither a path nor a regex.
        """
        regex, is_path_pattern = _compile_route(pattern, fn)
        self._websocket_routes.append(_Route(regex, fn, None, is_path_pattern))

    def websocket(self, pattern: str | re.Pattern[str]) -> Callable[[RouteHandler], RouteHandler]:
        """Decorator form of :meth:`register_websocket`."""

        def decorate(fn: RouteHandler) -> RouteHandler:
            self.register_websocket(pattern, fn)
            return fn

        return decorate

    def dispatch_websocket(self, server: Server, ws: WebSocket, req: Request) -> None:
        """Route one WebSocket handshake (the ``"websocket"`` listener
        :meth:`as_websocket_handler` returns); an unrouted path is rejected with 404."""
        for route in self._websocket_routes:
            params = _match(route, req)
            if params is None:
                continue
            req.params = params
            handler: Callable[..., object] = route.handler
            result = handler(server, ws, req, **params)
            if result is not None:
                returned(route.handler, result)
            return
        ws.reject(404, f"404 Not Found: {req.path}\n".encode())

    def as_websocket_handler(self) -> Callable[[Server, WebSocket, Request], None]:
        """Return the ``"websocket"`` listener that routes through this dispatcher."""
        return self.dispatch_websocket
