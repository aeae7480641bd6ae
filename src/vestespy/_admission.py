"""The server's own steps between a parsed request head and its listeners.

Theory of operation: when an option asks for any of them, the server gives its connections an
:class:`Admission`, and a connection calls :meth:`Admission.admit` (loop thread) once a request
head is parsed, instead of posting the ``"request"`` event itself. Without such options the
connection posts the request directly and none of this costs anything. The steps:

* ``response_headers`` are put in the response's headers before the listeners see it (so one
  the application sets of the same name replaces it); ``server_header`` and ``date_header``
  turned off stop the response from adding ``Server`` and ``Date``;
* ``echo_request_id``: the response carries the request's id
  (:attr:`~vestespy.Request.request_id`) as ``X-Request-ID``;
* with client certificates (``ssl_cert_reqs``), the verified peer certificate is stored on
  the request as :attr:`~vestespy.Request.peer_certificate`;
* ``limit_concurrency``: below the limit the request is counted and posted; the slot is given
  back once the request is read to its end and its response is complete (or either never will
  be), by whichever thread completes the second (``Exchange.hold_slot``, in _exchange). When
  that is the response, the slot is given back *before* the response's last bytes are
  queued: a client that has its whole response always finds its request's slot free,
  whichever thread sends the bytes (a pool thread may send a response itself, see _wire) and
  however late the listener's thread delivers ``"end"`` and ``"close"``, which used to give
  it back (a quick client then got a spurious 503). At the
  limit the request never reaches a listener: the loop answers ``503 Service Unavailable``
  with ``Retry-After`` and ``Connection: close`` at once, so that an overloaded worker sheds
  load without taking a pool thread, and the client (or a load balancer) tries again later or
  elsewhere.

Why ``Retry-After: 1``: overload from a burst of slow requests passes in about the time of a
request; one second is the smallest delay the field can say (RFC 9110 10.2.3), so a client
that honours it comes back soon without hammering.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ._header_fields import parse_header_line
from ._rejections import CONCURRENCY_LIMIT, refuse
from ._transport import TLSTransport

if TYPE_CHECKING:
    from ._connection import Connection
    from ._exchange import Exchange
    from .options import ServerOptions

__all__ = ["RETRY_AFTER", "Admission", "admission_for"]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: Seconds a client is asked to wait before retrying a request refused for concurrency.
RETRY_AFTER = 1
_BODY = b"503 Service Unavailable: too many requests in flight; retry later\n"


def admission_for(options: ServerOptions) -> Admission | None:
    """The admission step ``options`` ask for, or None when they ask for nothing."""
    admission = Admission(options)
    return admission if admission.needed else None


class Admission:
    """Prepares each request of a server and counts those in flight.

    Args:
        options: The server's options.
    """

    __slots__ = (
        "_auto_fields",
        "_echo_id",
        "_headers",
        "_lock",
        "_peer_certificates",
        "in_flight",
        "limit",
        "needed",
        "refused",
    )

    def __init__(self, options: ServerOptions) -> None:
        self.limit = options.limit_concurrency
        self._headers = [parse_header_line(line) for line in options.response_headers]
        self._auto_fields = (options.date_header, options.server_header)
        self._peer_certificates = options.ssl_cert_reqs != "none"
        self._echo_id = options.echo_request_id
        #: Whether any step applies (else the server does without).
        self.needed = bool(
            self.limit is not None
            or self._headers
            or self._auto_fields != (True, True)
            or self._peer_certificates
            or self._echo_id
        )
        #: Requests started and not yet closed (counted only with a limit).
        self.in_flight = 0
        #: Requests answered 503 so far.
        self.refused = 0
        # Taken on the loop thread (admit, release) and on any thread that completes a
        # response (release).
        self._lock = threading.Lock()

    def admit(self, connection: Connection, exchange: Exchange) -> None:
        """Prepare the request, then post it to the listeners or answer 503 (loop thread)."""
        request = exchange.request
        response = exchange.response
        for name, value in self._headers:
            response.headers.add(name, value)
        response._auto_fields = self._auto_fields
        if self._echo_id:
            response.headers.set("X-Request-ID", request.request_id)
        if self._peer_certificates:
            transport = connection.transport
            if isinstance(transport, TLSTransport):
                request.peer_certificate = transport.peer_certificate
        limit = self.limit
        if limit is None:
            exchange.post_request()
            return
        with self._lock:
            admitted = self.in_flight < limit
            if admitted:
                self.in_flight += 1
            else:
                self.refused += 1
        if admitted:
            exchange.hold_slot(self._release)
            exchange.post_request()
            return
        connection.meter.limited(503, "limit_concurrency")  # the server's counters (_stats)
        logger.debug(
            "limit_concurrency (%d) reached: 503 for %s %s", limit, request.method, request.target
        )
        refuse(request, CONCURRENCY_LIMIT)
        response.status = 503
        headers = response.headers
        headers.set("Content-Type", "text/plain; charset=utf-8")
        headers.set("Retry-After", str(RETRY_AFTER))
        headers.set("Connection", "close")
        response.send_all(_BODY)

    def _release(self) -> None:
        # Called once per admitted request, by its exchange (any thread, no other lock held).
        with self._lock:
            self.in_flight -= 1
