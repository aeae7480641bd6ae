"""What a server gives each of its connections, and what a connection needs of its loop.

A :class:`ConnectionContext` is made once per server and shared, read-only, by its
connections: the loop, the options, how listeners run, the server's bookkeeping callbacks, TLS,
the access log and the trusted proxies. It also makes what every connection makes the same way
from those: its protocol driver, and each request and response from a parsed head.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._backends import Backend
from ._driver import Driver, RequestStarted
from ._exchange import Exchange, ExchangeHost, LoggedExchange
from ._header_fields import headers_from_triples
from ._pool import SerialQueue
from ._request_ids import valid_request_id
from ._stats import Counters
from ._transport import TLSTransport, Transport
from ._wire import Wire
from .access_log import AccessHook
from .options import ServerOptions
from .proxies import TrustedProxies, resolve
from .request import Request
from .response import Response

if TYPE_CHECKING:
    from ._connection import Connection
    from .request import SocketAddress

__all__ = ["ConnectionContext", "Reactor"]


class Cancellable(Protocol):
    """A call scheduled with :meth:`Reactor.call_later` (``_loop.Timer``)."""

    def cancel(self) -> None: ...


class Reactor(Protocol):
    """What a connection needs of its loop: :class:`~vestespy._loop.EventLoop`, or a fake.

    A protocol rather than the class: compiled by mypyc, a field typed with a compiled class
    refuses anything else at run time, and the tests hand connections a fake loop.
    """

    backend: Backend

    def in_loop_thread(self) -> bool: ...
    # Any: the callbacks take arguments of every type (call_soon forwards them as given).
    def call_soon(self, callback: Callable[..., object], *args: Any) -> None: ...
    def at_end_of_pass(self, callback: Callable[[], object]) -> None: ...
    # Any: as for call_soon.
    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any
    ) -> Cancellable: ...


# Its field types are imported at run time, not only for type checking: compiled by mypyc,
# the dataclass reads the classes of its annotations when the module loads.
@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """What a server gives its connections: the loop, listener threads, options, bookkeeping.

    Made once per server and shared, read-only, by its connections.
    """

    loop: Reactor
    options: ServerOptions
    #: The request class to instantiate.
    handler: type[Request]
    #: Whether a 500 page carries the traceback.
    debug: bool
    #: Whether listeners run on the loop thread (``max_workers=0``).
    inline: bool
    #: Makes a connection's serial queue of listener calls.
    new_strand: Callable[[], SerialQueue]
    #: Calls the server's listeners: ``emit_request("request", req, res)``.
    emit_request: Callable[..., object]
    #: Called once a connection has closed.
    forget: Callable[[Connection], None]
    #: The TLS context, or None for plain TCP.
    ssl_context: ssl.SSLContext | None = None
    #: Called once per completed response, or None (then nothing is measured).
    access_log: AccessHook | None = None
    #: Peers whose forwarding fields are believed, or None (then none is read).
    trusted_proxies: TrustedProxies | None = None
    #: Prepares a request and posts it to the listeners, or refuses it: ``admit(connection,
    #: exchange)`` (see _admission.py); None: posted as it is.
    admit: Callable[[Connection, Exchange], None] | None = None
    #: Whether the server has ``"websocket"`` listeners now (None: never).
    wants_websocket: Callable[[], bool] | None = None
    #: Calls the server's ``"websocket"`` listeners: ``emit_websocket("websocket", ws, req)``.
    emit_websocket: Callable[..., object] | None = None
    #: The server's counters (see _stats.py).
    counters: Counters = field(default_factory=Counters)

    def new_wire(
        self, request_flush: Callable[[], None], on_failure: Callable[[], None]
    ) -> Wire[Exchange]:
        """A new connection's writer: a protocol driver set up from the options, its output
        buffer (high-water mark ``write_buffer_size``) and their lock (see ``_wire``)."""
        options = self.options
        relaxed = frozenset(
            name for name in ("allow_bare_lf", "allow_obs_fold") if getattr(options, name)
        )
        driver = Driver(
            max_header_size=options.max_header_size,
            max_request_line=options.max_request_line,
            relaxed=relaxed,
            max_body_size=options.max_body_size,
            max_header_count=options.max_header_count,
            max_drain=options.max_drain,
        )
        return Wire(
            driver, options.write_buffer_size, request_flush, self.loop.in_loop_thread, on_failure
        )

    def new_transport(
        self, sock: socket.socket, on_ready: Callable[[int], None], on_lost: Callable[[], None]
    ) -> Transport:
        """The socket side of a new connection: TLS over it with an SSL context."""
        loop = self.loop
        if self.ssl_context is None:
            return Transport(sock, loop.backend, on_ready, on_lost)
        return TLSTransport(sock, loop.backend, on_ready, on_lost, self.ssl_context, loop.call_soon)

    def open_exchange(
        self,
        host: ExchangeHost,
        wire: Wire[Exchange],
        lock: threading.Lock,
        event: RequestStarted,
        client_address: SocketAddress,
    ) -> Exchange:
        """Make an exchange, its request and its response from a parsed head (loop thread):
        the handler class, the scheme (TLS) and what a trusted proxy says of the client.

        With an access log the exchange measures; without, nothing more is done per request.
        Inline, the loop hands each piece of body to the listeners before it reads more, so
        none can pile up: the body accounting is skipped.
        """
        if self.access_log is None:
            exchange = Exchange(
                host, wire, lock, 0 if self.inline else self.options.max_body_buffer
            )
        else:
            exchange = LoggedExchange(
                host, wire, lock, 0 if self.inline else self.options.max_body_buffer
            )
        exchange.request = self._new_request(self.handler, event, client_address, exchange)
        exchange.response = Response(exchange, event.method)
        return exchange

    def rejected_request(
        self, started: RequestStarted | None, client_address: SocketAddress
    ) -> Request:
        """A request for the access log's line of one the server refused before it reached an
        exchange: its head if it was parsed, else method, target and version ``"-"``/``""``."""
        if started is None:
            started = RequestStarted("-", "-", "", [], False)
        return self._new_request(Request, started, client_address, None)

    def _new_request(
        self,
        cls: type[Request],
        event: RequestStarted,
        client_address: SocketAddress,
        exchange: Exchange | None,
    ) -> Request:
        """A request from a parsed head: the scheme (TLS), what a trusted proxy says of the
        client, and its ``X-Request-ID`` (see _request_ids)."""
        headers = headers_from_triples(event.headers)
        if cls is Request:
            # The default handler, named: compiled, this is a native call. Through the class
            # object, mypyc parses the keywords from a dict (measured: 5,500 instructions of a
            # compiled hello request, more than the constructor itself).
            request = Request(
                method=event.method,
                target=event.target,
                http_version=event.http_version,
                headers=headers,
                client_address=client_address,
                connection=exchange,
                expects_continue=event.expects_continue,
            )
        else:
            request = cls(
                method=event.method,
                target=event.target,
                http_version=event.http_version,
                headers=headers,
                client_address=client_address,
                connection=exchange,
                expects_continue=event.expects_continue,
            )
        if self.ssl_context is not None:
            request.scheme = "https"
        trusted = self.trusted_proxies
        if trusted is not None:
            forwarded = resolve(client_address, headers, trusted)
            if forwarded is not None:
                request._set_forwarded(forwarded.client, forwarded.scheme, forwarded.host)
            if trusted.trusts_peer(client_address):
                proxy_id = headers.get("x-request-id")
                if valid_request_id(proxy_id):
                    request._request_id = proxy_id
        return request
