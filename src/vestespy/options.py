"""``ServerOptions``: every tunable of a server, in one typed table.

:class:`ServerOptions` is the table: each field with its type, default and meaning.
:class:`ServerOptionsKwargs` spells the same fields as a ``TypedDict`` so that a type checker
checks ``Server(addr, **options)`` (PEP 692); a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict, cast

from ._header_fields import parse_header_line
from ._tls import SSL_CERT_REQS, SSL_MIN_VERSIONS
from .proxies import TrustedProxies

__all__ = ["ServerOptions", "ServerOptionsKwargs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """Limits and timeouts of a :class:`~vestespy.Server`, passed as keyword arguments.

    Example:
        >>> from vestespy import ServerOptions
        >>> ServerOptions(keep_alive_timeout=5).keep_alive_timeout
        5
    """

    #: The listening socket's accept queue length.
    backlog: int = 1024
    #: Set ``SO_REUSEPORT`` so several processes can share the port (where supported).
    reuse_port: bool = False
    #: The largest request head (request line and fields) in bytes; larger gets 431.
    max_header_size: int = 16 * 1024
    #: The most header fields in a request head, and trailer fields after a chunked body;
    #: more gets 431 (Request Header Fields Too Large) and the connection closes. (100, as
    #: Apache's ``LimitRequestFields`` and Kestrel's ``MaxRequestHeaderCount``.)
    max_header_count: int = 100
    #: Seconds an idle keep-alive connection (or one sending a request head) may stay silent
    #: before it is closed. Keep it above a load balancer's idle timeout.
    keep_alive_timeout: float = 75.0
    #: Seconds a client may stay silent in the middle of a request body, or leave its
    #: response unread, before the connection is closed. Time the application takes to
    #: answer does not count.
    client_timeout: float = 60.0
    #: Seconds a client has to send a whole request head, however it trickles, counted from
    #: the connection's start for its first request (the TLS handshake included) and from the
    #: head's first byte for later ones. Past it the client gets 408 (Request Timeout) and
    #: the connection closes (without a response if not one byte of the head came). 30 s,
    #: as Kestrel's ``RequestHeadersTimeout``: a 16 KiB head takes 16 s at 1 KB/s, and a
    #: slowloris client holds its socket half as long as under Node's or nginx's 60 s.
    header_timeout: float = 30.0
    #: The least average rate, in bytes per second, at which a client must send a request
    #: body once ``rate_grace_period`` has passed since its first byte; time in which the
    #: server does not read (its listeners are behind) does not count. Slower gets 408 (or a
    #: plain close once the response has started). 0 turns it off. 240, as Kestrel's
    #: ``MinRequestBodyDataRate``: a real client on a poor link is far faster.
    min_body_rate: float = 240.0
    #: The least average rate, in bytes per second, at which a client must read its
    #: response while the server has bytes it cannot send, once ``rate_grace_period`` has
    #: passed; slower, the connection closes. 0 turns it off. 240, as Kestrel's
    #: ``MinResponseDataRate``.
    min_response_rate: float = 240.0
    #: Seconds of slowness allowed before ``min_body_rate`` and ``min_response_rate`` apply.
    rate_grace_period: float = 5.0
    #: Bytes of response a connection buffers for a slow client; a streaming writer waits
    #: above it, so memory per connection stays bounded.
    write_buffer_size: int = 256 * 1024
    #: The largest request body in bytes, or None for no limit. A larger Content-Length is
    #: answered 413 (Content Too Large) before any of the body is read, without
    #: ``100 Continue``; a chunked body is refused once it grows past the limit (413 if no
    #: response has started, else the connection closes). Either way the connection closes.
    max_body_size: int | None = None
    #: Bytes of request body read ahead of the listeners; reading pauses above it.
    max_body_buffer: int = 1024 * 1024
    #: Bytes of unread request body discarded after the response before the connection is
    #: closed instead, so that the next pipelined request can be parsed.
    max_drain: int = 1024 * 1024
    #: The longest request line in bytes; longer gets 414.
    max_request_line: int = 8192
    #: Accept bare LF as a line ending in request heads (RFC 9112 2.2 allows it; off by
    #: default because parsers that disagree about it enable request smuggling).
    allow_bare_lf: bool = False
    #: Accept obs-fold (field values continued on an indented line), replaced by a space.
    allow_obs_fold: bool = False
    #: Seconds a closing connection waits for the client to close after the final response.
    linger_timeout: float = 2.0
    #: A PEM certificate chain file; with it the server speaks TLS (HTTPS) only. ALPN offers
    #: ``http/1.1``. For more control (protocol versions, ciphers, SNI callbacks) pass an
    #: :class:`ssl.SSLContext` as ``Server(ssl_context=...)`` instead.
    certfile: str | None = None
    #: The private key file for ``certfile``, if the key is not in that file.
    keyfile: str | None = None
    #: The most client connections open at once, or None for no limit. At the limit the
    #: server stops accepting: new clients wait in the listening socket's queue (``backlog``)
    #: and are served as soon as a connection closes, so a burst costs no file descriptor
    #: and no error. Past the queue, their connection attempts time out. (1000, as gunicorn's
    #: ``worker_connections``: well below the usual 1024 file descriptors of a process.)
    max_connections: int | None = 1000
    #: Reverse proxies whose ``X-Forwarded-*`` and ``Forwarded`` fields are believed:
    #: addresses, networks, ``"*"`` (any peer) and ``"unix"`` (UNIX socket peers); a string
    #: is split at commas. Empty (the default): those fields are ignored. See
    #: :mod:`vestespy.proxies`.
    trusted_proxies: tuple[str, ...] = ()
    #: With ``debug=True``: seconds after which a request whose ``"request"`` listeners
    #: returned without starting a response is named in a warning (logger
    #: ``vestespy.error``), as a listener that forgot to answer leaves its client waiting.
    #: 0 turns it off. Without debug, nothing is watched.
    unanswered_warning: float = 10.0
    #: The most requests in flight at once (from the head's arrival until the request is read
    #: to its end and its response is complete), or None for no limit. A client that has its
    #: whole response may send its next request at once: its slot is free by then. Past the
    #: limit a request gets ``503 Service Unavailable`` with ``Retry-After: 1`` and
    #: ``Connection: close`` at once, without reaching a listener (as uvicorn's
    #: ``--limit-concurrency``). Per server, so per worker process.
    limit_concurrency: int | None = None
    #: Header fields added to every response the application sends, as ``"Name: value"``
    #: strings (uvicorn's ``--header``); a field of the same name the application sets
    #: replaces one. The server's own error responses (400, 408, 413, 500...) go without.
    response_headers: tuple[str, ...] = ()
    #: Add ``Server: vestespy`` to responses that have no ``Server`` field.
    server_header: bool = True
    #: Add a ``Date`` field to responses that have none (RFC 9110 6.6.1 asks an origin
    #: server with a clock to send one).
    date_header: bool = True
    #: Send each request's id (:attr:`~vestespy.Request.request_id`: a trusted proxy's
    #: ``X-Request-ID``, else one the server makes) back as the response's ``X-Request-ID``
    #: field, unless the application sets one. Errors the server answers before a request
    #: reaches the application (400, 408, 413, 431...) go without.
    echo_request_id: bool = False
    #: The password of an encrypted ``keyfile`` (or of the key in ``certfile``).
    ssl_keyfile_password: str | None = None
    #: A PEM file of the certificate authorities that sign client certificates.
    ssl_ca_certs: str | None = None
    #: Whether clients must present a certificate, one of ``"none"``, ``"optional"``
    #: (verified if given) or ``"required"`` (the handshake fails without one). Needs
    #: ``ssl_ca_certs``. A verified certificate is :attr:`~vestespy.Request.peer_certificate`.
    ssl_cert_reqs: str = "none"
    #: The TLS 1.2 cipher suites allowed, in OpenSSL's cipher list format; None keeps
    #: Python's defaults.
    ssl_ciphers: str | None = None
    #: The lowest TLS version accepted, ``"1.2"`` or ``"1.3"``.
    ssl_min_version: str = "1.2"
    #: Bytes a WebSocket message may have (after permessage-deflate inflates it); a larger
    #: one fails the WebSocket with close code 1009, checked as it arrives.
    websocket_max_message_size: int = 1024 * 1024
    #: Offer permessage-deflate (RFC 7692) to WebSocket clients that ask for it.
    websocket_compression: bool = True
    #: Seconds between the pings a WebSocket sends; None sends none.
    websocket_ping_interval: float | None = 20.0
    #: Seconds a pong may take; past it the peer is taken for gone and the connection closes
    #: (the ``"close"`` listeners get 1006). None waits for ever.
    websocket_ping_timeout: float | None = 20.0
    #: Seconds the WebSocket close handshake may take before the connection is closed.
    websocket_close_timeout: float = 10.0
    #: The ``Origin`` values a WebSocket handshake may carry (such as
    #: ``"https://example.com"``); others are refused with 403. Empty allows any origin.
    websocket_allowed_origins: tuple[str, ...] = ()
    #: ``HOST:PORT`` of a listener of its own serving Prometheus metrics at ``/metrics`` (the
    #: figures of :meth:`~vestespy.Server.stats`), or None for none. Needs the ``metrics``
    #: extra (``prometheus_client``). Never the application's port.
    metrics_bind: str | None = None

    def __post_init__(self) -> None:
        origins: object = self.websocket_allowed_origins
        if isinstance(origins, str):
            origins = origins.split(",")
        if not isinstance(origins, Iterable):
            raise ValueError(f"option websocket_allowed_origins must be strings, not {origins!r}")
        object.__setattr__(
            self,
            "websocket_allowed_origins",
            tuple(str(entry).strip() for entry in origins if str(entry).strip()),
        )
        proxies: object = self.trusted_proxies
        if isinstance(proxies, str):
            proxies = proxies.split(",")
        if not isinstance(proxies, Iterable):
            raise ValueError(f"option trusted_proxies must be strings, not {proxies!r}")
        entries = tuple(str(entry).strip() for entry in proxies if str(entry).strip())
        TrustedProxies(entries)  # raises ValueError naming a bad entry
        object.__setattr__(self, "trusted_proxies", entries)
        _check_operator_options(self)
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or field.name in _NOT_NUMBERS:
                continue
            if value is None and field.name in _OPTIONAL_NUMBERS:
                continue
            if field.name in ("certfile", "keyfile"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"option {field.name} must be a path, not {value!r}")
                continue
            if field.name == "max_connections" and isinstance(value, int) and value < 1:
                raise ValueError(f"option max_connections must be >= 1 or None, not {value!r}")
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"option {field.name} must be a number >= 0, not {value!r}")

    @classmethod
    def from_kwargs(cls, options: Mapping[str, object]) -> ServerOptions:
        """Build options from keyword arguments, naming any unknown one.

        Raises:
            TypeError: An option is unknown.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown server option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        # The names are checked above, the values by __post_init__.
        return cls(**cast(ServerOptionsKwargs, options))


#: Number fields that may be None.
_OPTIONAL_NUMBERS = frozenset(
    {
        "max_body_size",
        "max_connections",
        "websocket_ping_interval",
        "websocket_ping_timeout",
    }
)

#: Fields that are not numbers, checked by _check_operator_options (or in __post_init__).
_NOT_NUMBERS = frozenset(
    {
        "websocket_allowed_origins",
        "reuse_port",
        "trusted_proxies",
        "limit_concurrency",
        "response_headers",
        "server_header",
        "date_header",
        "echo_request_id",
        "ssl_keyfile_password",
        "ssl_ca_certs",
        "ssl_cert_reqs",
        "ssl_ciphers",
        "ssl_min_version",
        "metrics_bind",
    }
)


def _check_operator_options(options: ServerOptions) -> None:
    limit: object = options.limit_concurrency
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"option limit_concurrency must be >= 1 or None, not {limit!r}")
    headers: object = options.response_headers
    if isinstance(headers, str):
        headers = (headers,)
    if not isinstance(headers, Iterable):
        raise ValueError(f"option response_headers must be strings, not {headers!r}")
    lines = tuple(headers)
    for line in lines:
        if not isinstance(line, str):
            raise ValueError(f"option response_headers must be strings, not {line!r}")
        parse_header_line(line)
    object.__setattr__(options, "response_headers", lines)
    for name in ("server_header", "date_header", "echo_request_id"):
        if not isinstance(getattr(options, name), bool):
            raise ValueError(f"option {name} must be True or False")
    for name in ("ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers", "metrics_bind"):
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"option {name} must be a string, not {value!r}")
    if options.metrics_bind is not None:
        _parse_bind(options.metrics_bind)  # a ValueError that names the value
    if options.ssl_cert_reqs not in SSL_CERT_REQS:
        raise ValueError(
            f"option ssl_cert_reqs must be one of {', '.join(SSL_CERT_REQS)},"
            f" not {options.ssl_cert_reqs!r}"
        )
    if options.ssl_min_version not in SSL_MIN_VERSIONS:
        raise ValueError(
            f"option ssl_min_version must be one of {', '.join(SSL_MIN_VERSIONS)},"
            f" not {options.ssl_min_version!r}"
        )


def _parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9100`` for IPv6; ``:9100`` for every interface) as a pair.

    Raises:
        ValueError: ``text`` is not of that form, or the port is not 0-65535.
    """
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"metrics_bind {text!r}: write HOST:PORT (port 0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class ServerOptionsKwargs(TypedDict, total=False):
    """The keyword arguments :class:`~vestespy.Server` accepts as options.

    The fields of :class:`ServerOptions`, all optional, for typing ``**options`` (see that
    class for what each does). Useful to type a function that passes options on:

    .. code-block:: python

        from typing_extensions import Unpack

        def start(port: int, **options: Unpack[vestespy.ServerOptionsKwargs]) -> None:
            vestespy.Server(("127.0.0.1", port), **options).serve_forever()
    """

    backlog: int
    reuse_port: bool
    max_header_size: int
    max_header_count: int
    keep_alive_timeout: float
    client_timeout: float
    header_timeout: float
    min_body_rate: float
    min_response_rate: float
    rate_grace_period: float
    write_buffer_size: int
    max_body_size: int | None
    max_body_buffer: int
    max_drain: int
    max_request_line: int
    allow_bare_lf: bool
    allow_obs_fold: bool
    linger_timeout: float
    max_connections: int | None
    certfile: str | None
    keyfile: str | None
    trusted_proxies: tuple[str, ...]
    unanswered_warning: float
    limit_concurrency: int | None
    response_headers: tuple[str, ...]
    server_header: bool
    date_header: bool
    echo_request_id: bool
    ssl_keyfile_password: str | None
    ssl_ca_certs: str | None
    ssl_cert_reqs: str
    ssl_ciphers: str | None
    ssl_min_version: str
    websocket_max_message_size: int
    websocket_compression: bool
    websocket_ping_interval: float | None
    websocket_ping_timeout: float | None
    websocket_close_timeout: float
    websocket_allowed_origins: tuple[str, ...]
    metrics_bind: str | None
