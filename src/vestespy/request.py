"""The public :class:`Request`: one parsed request head, and the events of its body."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import unquote, urlsplit

from ._emitter import EventEmitter, Listener
from ._mypyc import mypyc_attr
from ._request_ids import new_request_id
from .headers import Headers

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._channel import ContinueSender
    from .response import Response

__all__ = ["Request", "RequestEvent", "SocketAddress"]

#: The events a :class:`Request` emits.
RequestEvent = Literal["data", "end", "error", "close"]

#: A peer's address as ``socket.accept()`` gives it: ``(host, port)`` over IPv4,
#: ``(host, port, flowinfo, scope_id)`` over IPv6, a path (often ``""``) over a UNIX socket.
SocketAddress = tuple[str, int] | tuple[str, int, int, int] | str


def _split_target(target: str) -> tuple[str, str]:
    """Return the (still percent-encoded) path and the query string of a request-target."""
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query
    if target == "*":
        return "*", ""
    if "://" in target:  # absolute-form (RFC 9112 3.2.2)
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    return "", ""  # authority-form (CONNECT)


# Users may subclass it: mypyc must allow that when compiled.
@mypyc_attr(allow_interpreted_subclasses=True)
class Request(EventEmitter[RequestEvent]):
    """An HTTP request: its head as parsed, and an emitter of its body's events.

    Events (each listener gets the request first, as every emitter's listeners do):

    * ``"data"``: ``fn(req, req, res, chunk: bytes)`` for each piece of the body.
    * ``"end"``: ``fn(req, req, res)`` once the body is complete (also when there is none);
      :attr:`trailers` are filled by then.
    * ``"error"``: ``fn(req, req, res, exc: Exception)`` when the request cannot complete: the
      client disconnected mid-body (:class:`~vestespy.ClientDisconnected`) or broke the
      protocol (:class:`~vestespy.BadRequest`). No ``"end"`` follows.
    * ``"close"``: ``fn(req, req, res)`` once, last, when the exchange is over: the response
      finished and the body was read, or the connection closed.

    Adding a ``"data"`` or ``"end"`` listener tells a client that sent
    ``Expect: 100-continue`` to go ahead, unless the response has already started.

    A subclass may be passed to :class:`~vestespy.Server` as ``handler=``; it must accept
    the same constructor arguments.
    """

    #: The request method, such as ``"GET"``.
    method: str
    #: The request-target exactly as received, such as ``"/a%20b?x=1"``.
    target: str
    #: The target's path, percent-decoded (UTF-8), such as ``"/a b"``.
    path: str
    #: The target's path as received, still percent-encoded.
    raw_path: str
    #: The raw query string, without the ``?``.
    query: str
    #: ``"1.0"`` or ``"1.1"``.
    http_version: str
    #: The header fields in the order received.
    headers: Headers
    #: The trailer fields of a chunked body, filled before ``"end"``.
    trailers: Headers
    #: The client's address, the socket peer's or what trusted proxies reported (see
    #: :mod:`vestespy.proxies`; the port is then 0 when they did not report one).
    client_address: SocketAddress
    #: Route parameters set by :class:`~vestespy.tools.Dispatcher`; ``{}`` otherwise.
    params: dict[str, str]
    #: ``"https"`` when the request came over TLS (the server sets it), or when a trusted
    #: proxy said the client used it (:mod:`vestespy.proxies`); else ``"http"``.
    scheme: str
    #: The client's certificate, verified, as :meth:`ssl.SSLSocket.getpeercert` returns it
    #: (``subject``, ``issuer``, ``notAfter``...), when the server asks clients for one
    #: (the ``ssl_cert_reqs`` option) and the client sent one; else None.
    peer_certificate: dict[str, Any] | None  # Any: str, int or nested tuples, by key
    #: Why the server answered this request itself, such as ``"too many header fields"``,
    #: ``"request head not received within header_timeout"`` or ``"concurrency limit"``; None
    #: when the application answers it. The access log marks such lines (see
    #: :doc:`/observability`).
    rejection: str | None

    def __init__(
        self,
        *,
        method: str,
        target: str,
        http_version: str,
        headers: Headers,
        client_address: SocketAddress,
        connection: ContinueSender | None = None,
        expects_continue: bool = False,
    ) -> None:
        """Create a request (the server does this; applications seldom need to).

        Args:
            method: The request method.
            target: The raw request-target.
            http_version: ``"1.0"`` or ``"1.1"``.
            headers: The header fields.
            client_address: The client's socket address.
            connection: Where to send ``100 Continue``; None for a detached request.
            expects_continue: Whether the client waits for ``100 Continue``.
        """
        super().__init__()
        self.method: str = method
        self.target: str = target
        if target.startswith("/"):  # origin-form, nearly every request: without a call
            raw_path, _, query = target.partition("?")
        else:
            raw_path, query = _split_target(target)
        self.raw_path: str = raw_path
        self.query: str = query
        self.path: str = unquote(raw_path) if "%" in raw_path else raw_path
        self.http_version: str = http_version
        self.headers: Headers = headers
        self.trailers: Headers = Headers()
        self.client_address: SocketAddress = client_address
        self.params: dict[str, str] = {}
        self._connection = connection
        self._expects_continue = expects_continue
        self.scheme = "http"
        self.peer_certificate = None
        # What trusted proxies reported, set by the server after construction. Assigned here,
        # not as class defaults: compiled by mypyc, a native attribute must be set on the
        # instance before it is read.
        self._peer: SocketAddress | None = None
        self._host: str | None = None
        self.rejection = None
        # A trusted proxy's X-Request-ID (set by the server), or the id made when first read.
        self._request_id: str | None = None

    @property
    def request_id(self) -> str:
        """This request's id, a trusted proxy's ``X-Request-ID`` or else one the server makes.

        The server makes it when it is first read (here, by the access log, or for the WSGI
        environ's ``vestespy.request_id``): unique to the worker process and its run, such as
        ``"3f9a1c0e5b7d2a48-26"``. A proxy's is used only when the socket peer is one of
        ``trusted_proxies`` and the value is 1 to 200 visible ASCII characters (no quote or
        backslash); :attr:`headers` keeps the client's field whatever it holds. See
        :doc:`/observability`.
        """
        request_id = self._request_id
        if request_id is None:
            request_id = self._request_id = new_request_id()
        return request_id

    @property
    def peer_address(self) -> SocketAddress:
        """The socket peer's address, whatever proxies say (:attr:`client_address` otherwise)."""
        peer = self._peer
        return self.client_address if peer is None else peer

    @property
    def host(self) -> str | None:
        """The host the client asked for, from the ``Host`` field or trusted proxies."""
        host = self._host
        return self.headers.get("host") if host is None else host

    def _set_forwarded(self, client: SocketAddress, scheme: str | None, host: str | None) -> None:
        """Record what trusted proxies said; the socket peer stays :attr:`peer_address`."""
        self._peer = self.client_address
        self.client_address = client
        if scheme is not None:
            self.scheme = scheme
        self._host = host

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.target} HTTP/{self.http_version}>"

    # Each event's listener signature, for type checkers. Real methods rather than overloads
    # under ``if TYPE_CHECKING`` in the class body, which mypyc cannot compile;
    # _listener_added() below does the request's own bookkeeping.
    @overload
    def on(
        self, event: Literal["data"], listener: Callable[[Self, Self, Response, bytes], None]
    ) -> Self: ...
    @overload
    def on(
        self, event: Literal["end", "close"], listener: Callable[[Self, Self, Response], None]
    ) -> Self: ...
    @overload
    def on(
        self,
        event: Literal["error"],
        listener: Callable[[Self, Self, Response, Exception], None],
    ) -> Self: ...
    def on(self, event: RequestEvent, listener: Listener) -> Self:
        """Call ``listener`` each time ``event`` is emitted (see the class for events)."""
        return super().on(event, listener)

    @overload
    def once(
        self, event: Literal["data"], listener: Callable[[Self, Self, Response, bytes], None]
    ) -> Self: ...
    @overload
    def once(
        self, event: Literal["end", "close"], listener: Callable[[Self, Self, Response], None]
    ) -> Self: ...
    @overload
    def once(
        self,
        event: Literal["error"],
        listener: Callable[[Self, Self, Response, Exception], None],
    ) -> Self: ...
    def once(self, event: RequestEvent, listener: Listener) -> Self:
        """Like :meth:`on`, but the listener is removed after its first call."""
        return super().once(event, listener)

    def _listener_added(self, event: str) -> None:
        # A client waiting for "100 Continue" gets it once the body has a reader.
        if self._expects_continue and (event == "data" or event == "end"):
            self._expects_continue = False
            if self._connection is not None:
                self._connection.send_continue()
