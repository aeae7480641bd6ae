"""A server's counters, and the typed snapshot of them that :meth:`Server.stats` returns.

Theory of operation: every figure is counted on the loop thread, where the event it counts is
already seen, in plain ``int`` fields of one :class:`Counters` per server (no lock: only the
loop thread writes them). The one figure made on listener threads, the response body bytes,
is kept per exchange by the thread writing the response and added here on the loop thread
when the response is handed to the kernel: the end of the response reaches the loop through
the connection's writer, whose lock orders the writes before the read. The pool's figures are
read from the pool under its own lock at snapshot time, so nothing is counted per task. So the
hot path costs two method calls per request (:meth:`ConnectionMeter.request_started`,
:meth:`ConnectionMeter.response_sent`), no lock and no clock: the start of a request is the
time of the read that brought its head, which the connection's deadlines already hold, and
its end the time the connection already takes once the response is sent.

A :class:`ConnectionMeter` per connection holds what is counted per connection: the requests
started and not yet sent (so that a connection closed with requests in flight gives them back)
and the cause of its closing, the first one named winning (a deadline that answers 408 is the
cause, not the rejection that follows it, nor the client's closing after it). A connection
closed with no cause named was lingering after the server's FIN (``server``), or its socket
failed: a reset by the client (ECONNRESET, EPIPE, ECONNABORTED, which the transport notes) is
``client_reset``, the client going away rather than a fault here; any other error ``error``.

:meth:`Counters.snapshot` may run on any thread (a scrape): it copies the fields without
stopping the loop, so each figure is exact but two figures may be a request apart.

Label values are bounded whatever clients send: methods outside the standard ones count as
``OTHER``; a rejection's reason is a rule name of the strict checks, a deadline's name, or
``malformed`` for h11's own messages (which may quote the client's bytes).
"""

from __future__ import annotations

import types
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from . import _deadlines, _strict

__all__ = [
    "ACCEPT_PAUSE_REASONS",
    "CLOSE_CAUSES",
    "DEADLINE_NAMES",
    "DURATION_BOUNDS",
    "WEBSOCKET_CLOSE_CAUSES",
    "ConnectionMeter",
    "Counters",
    "DurationHistogram",
    "PoolLoad",
    "ServerStats",
]

#: The upper bounds (seconds) of the request duration histogram's buckets (Prometheus'
#: defaults); a last bucket, +Inf, takes the rest.
DURATION_BOUNDS: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

#: Methods counted under their own name; any other counts as ``OTHER``.
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")

#: Each deadline of :mod:`vestespy._deadlines` by the name of its constant, lower-cased
#: (``KEEP_ALIVE_OVER``: ``keep_alive_over``). Read from the module rather than listed: a new
#: deadline is named at once, and the constants' types need not be known when this module is
#: type-checked (mypyc's build checks it in one cycle with the package).
DEADLINE_NAMES: Final[dict[_deadlines.Expiry, str]] = {
    value: name.lower()
    for name, value in vars(_deadlines).items()
    if isinstance(value, _deadlines.Expiry)
}
_DEADLINE_REASONS: Final = {expiry.reason: name for expiry, name in DEADLINE_NAMES.items()}
_RULE_NAMES: Final = frozenset(
    rule.name for rule in vars(_strict).values() if isinstance(rule, _strict.Rule)
)
#: Rejections that say a limit of the server was reached rather than a malformed request.
_LIMIT_STATUSES: Final = frozenset({413, 414, 431, 503})

#: Why connections close (besides the deadlines' names): the client closed its side (a FIN,
#: or a WebSocket's close frame), also mid-request; the client reset the connection
#: (ECONNRESET, EPIPE, ECONNABORTED: it went away, a crash, a timeout of its own, a proxy
#: that aborts); the server closed after a response (``Connection: close``, draining,
#: shutting down); a request was malformed; a limit was reached (413, 414, 431, 503 from
#: ``limit_concurrency``, ``max_drain``); the socket failed here (any other error) or a
#: response was aborted.
CLOSE_CAUSES: Final = ("client", "client_reset", "server", "protocol_error", "limit", "error")

#: The WebSocket deadlines that close a connection, named after their options: no pong
#: within ``websocket_ping_timeout``, the close handshake not over within
#: ``websocket_close_timeout``.
WEBSOCKET_CLOSE_CAUSES: Final = ("websocket_ping_timeout", "websocket_close_timeout")

#: Why the server stopped accepting connections for a while: ``max_connections`` were open
#: (later clients wait in the listen queue until one closes: no 503, see docs/metrics.rst), or
#: the process ran out of a resource (``accept()`` failed with EMFILE, ENFILE, ENOBUFS,
#: ENOMEM, or ``select`` cannot watch a descriptor past FD_SETSIZE): accepting is retried
#: after a back-off.
ACCEPT_PAUSE_REASONS: Final = ("max_connections", "resources")


class _Method(Protocol):
    method: str


class _Status(Protocol):
    status: int


class Metered(Protocol):
    """What a meter reads of an exchange (:class:`~vestespy._exchange.Exchange`).

    A protocol rather than the class, its members protocols too: compiled by mypyc, a method
    taking the class would refuse anything else, and the unit tests pass fakes.
    """

    started_at: float
    body_sent: int

    @property
    def request(self) -> _Method: ...

    @property
    def response(self) -> _Status: ...


def rejection_reason(status: int, reason: str) -> str:
    """The bounded label for a rejection's ``reason`` (see the module's docstring)."""
    if reason in _RULE_NAMES or reason == "limit_concurrency":
        return reason
    name = _DEADLINE_REASONS.get(reason)
    if name is not None:
        return name
    return "malformed"


@dataclass(frozen=True)
class DurationHistogram:
    """Request durations in buckets, cumulative as Prometheus has them."""

    #: The buckets' upper bounds in seconds (inclusive); a last bucket, +Inf, is implied.
    bounds: tuple[float, ...]
    #: Requests that took at most each bound, then the count of all (the +Inf bucket):
    #: ``len(bounds) + 1`` figures, never decreasing.
    cumulative: tuple[int, ...]
    #: The sum of the durations, in seconds.
    sum: float

    @property
    def count(self) -> int:
        """How many requests were measured."""
        return self.cumulative[-1]


@dataclass(frozen=True)
class PoolLoad:
    """The listener threads at one moment (all 0 with ``max_workers=0``)."""

    #: Threads started and not exited.
    threads: int = 0
    #: Threads running a listener (or about to).
    busy: int = 0
    #: Tasks waiting for a thread. A burst runs on the threads already awake, one task after
    #: another, and a thread is woken for a task that has waited 2 ms; with every thread
    #: busy and ``max_workers`` reached, tasks wait for one to finish.
    queued: int = 0


def _frozen(mapping: Mapping[Any, int]) -> Mapping[Any, int]:
    return types.MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class ServerStats:
    """What a server has done since it was made, and what it is doing now.

    Counts (``*_total`` in Prometheus) only grow; the other figures are levels at the moment
    of the snapshot. Mappings hold only keys counted at least once. See
    :doc:`/metrics` for each figure's meaning and its Prometheus name.
    """

    #: Responses sent to requests whose head was parsed (by the listeners, the server's 503
    #: for ``limit_concurrency``, the 101 of a WebSocket), by ``(method, status class)``:
    #: ``("GET", "2xx")``.
    requests: Mapping[tuple[str, str], int]
    #: From the read that brought a request's head to its response's end handed to the kernel.
    request_duration: DurationHistogram
    #: Request body bytes received (after chunked framing is removed).
    request_body_bytes: int
    #: Response body bytes sent (what the listeners wrote; heads and framing not counted).
    response_body_bytes: int
    #: Requests whose head was parsed and whose response is not sent yet.
    requests_in_flight: int
    #: Connections accepted.
    connections_accepted: int
    #: Connections closed by each cause (``client``, ``client_reset``, ``server``,
    #: ``protocol_error``, ``limit``, ``error``, a deadline's name such as
    #: ``keep_alive_over``, or a WebSocket's: ``websocket_ping_timeout``,
    #: ``websocket_close_timeout``).
    connections_closed: Mapping[str, int]
    #: Requests the server answered itself (or gave up on), by ``(status, reason)``.
    rejections: Mapping[tuple[int, str], int]
    #: The listener threads.
    pool: PoolLoad = field(default_factory=PoolLoad)
    #: WebSockets open.
    websockets_open: int = 0
    #: WebSocket messages received from clients.
    websocket_messages_received: int = 0
    #: WebSocket messages sent to clients.
    websocket_messages_sent: int = 0
    #: How many times the server stopped accepting connections, by reason
    #: (``max_connections``, ``resources``): see :doc:`/metrics`.
    accept_paused: Mapping[str, int] = field(default_factory=lambda: _frozen({}))

    @property
    def connections_open(self) -> int:
        """Connections accepted and not closed yet."""
        return self.connections_accepted - sum(self.connections_closed.values())

    @classmethod
    def total(cls, snapshots: Iterable[ServerStats]) -> ServerStats:
        """The sum of several servers' snapshots (the workers of one command).

        Raises:
            ValueError: The histograms' bounds differ.
        """
        requests: dict[tuple[str, str], int] = {}
        closed: dict[str, int] = {}
        rejections: dict[tuple[int, str], int] = {}
        paused: dict[str, int] = {}
        cumulative = [0] * (len(DURATION_BOUNDS) + 1)
        duration_sum = 0.0
        body_in = body_out = in_flight = accepted = 0
        threads = busy = queued = ws_open = ws_in = ws_out = 0
        for stats in snapshots:
            if stats.request_duration.bounds != DURATION_BOUNDS:
                raise ValueError("the duration histograms have different bounds")
            _add(requests, stats.requests)
            _add(closed, stats.connections_closed)
            _add(rejections, stats.rejections)
            _add(paused, stats.accept_paused)
            for i, n in enumerate(stats.request_duration.cumulative):
                cumulative[i] += n
            duration_sum += stats.request_duration.sum
            body_in += stats.request_body_bytes
            body_out += stats.response_body_bytes
            in_flight += stats.requests_in_flight
            accepted += stats.connections_accepted
            threads += stats.pool.threads
            busy += stats.pool.busy
            queued += stats.pool.queued
            ws_open += stats.websockets_open
            ws_in += stats.websocket_messages_received
            ws_out += stats.websocket_messages_sent
        return cls(
            requests=_frozen(requests),
            request_duration=DurationHistogram(DURATION_BOUNDS, tuple(cumulative), duration_sum),
            request_body_bytes=body_in,
            response_body_bytes=body_out,
            requests_in_flight=in_flight,
            connections_accepted=accepted,
            connections_closed=_frozen(closed),
            rejections=_frozen(rejections),
            pool=PoolLoad(threads, busy, queued),
            websockets_open=ws_open,
            websocket_messages_received=ws_in,
            websocket_messages_sent=ws_out,
            accept_paused=_frozen(paused),
        )

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-able values (how workers hand theirs to the supervisor)."""
        return {
            "requests": [[m, c, n] for (m, c), n in self.requests.items()],
            "duration": [list(self.request_duration.cumulative), self.request_duration.sum],
            "body": [self.request_body_bytes, self.response_body_bytes],
            "in_flight": self.requests_in_flight,
            "accepted": self.connections_accepted,
            "closed": dict(self.connections_closed),
            "rejections": [[s, r, n] for (s, r), n in self.rejections.items()],
            "pool": [self.pool.threads, self.pool.busy, self.pool.queued],
            "websockets": [
                self.websockets_open,
                self.websocket_messages_received,
                self.websocket_messages_sent,
            ],
            "accept_paused": dict(self.accept_paused),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerStats:
        """The snapshot :meth:`to_json` made."""
        cumulative, duration_sum = data["duration"]
        return cls(
            requests=_frozen({(m, c): n for m, c, n in data["requests"]}),
            request_duration=DurationHistogram(
                DURATION_BOUNDS, tuple(cumulative), float(duration_sum)
            ),
            request_body_bytes=data["body"][0],
            response_body_bytes=data["body"][1],
            requests_in_flight=data["in_flight"],
            connections_accepted=data["accepted"],
            connections_closed=_frozen(data["closed"]),
            rejections=_frozen({(s, r): n for s, r, n in data["rejections"]}),
            pool=PoolLoad(*data["pool"]),
            websockets_open=data["websockets"][0],
            websocket_messages_received=data["websockets"][1],
            websocket_messages_sent=data["websockets"][2],
            accept_paused=_frozen(data.get("accept_paused", {})),
        )


def _add(into: dict[Any, int], counts: Mapping[Any, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


class Counters:
    """A server's counters: written by the loop thread only, read by :meth:`snapshot`."""

    __slots__ = (
        "accept_paused",
        "accepted",
        "by_method",
        "closed",
        "duration_buckets",
        "duration_sum",
        "finished",
        "other",
        "rejections",
        "request_body_bytes",
        "response_body_bytes",
        "started",
        "websocket_messages_received",
        "websocket_messages_sent",
        "websockets_open",
    )

    def __init__(self) -> None:
        # Per method, a count per status class (index: status // 100).
        self.by_method: dict[str, list[int]] = {method: [0] * 10 for method in METHODS}
        self.other = [0] * 10  # methods outside METHODS
        self.duration_buckets = [0] * (len(DURATION_BOUNDS) + 1)
        self.duration_sum = 0.0
        self.request_body_bytes = 0
        self.response_body_bytes = 0
        self.started = 0  # requests whose head was parsed
        self.finished = 0  # ... whose response was sent, or whose connection closed
        self.accepted = 0
        self.closed: dict[str, int] = {}
        self.rejections: dict[tuple[int, str], int] = {}
        # WebSockets (counted by _ws_link on the loop thread; the messages sent, made on any
        # thread, are added by the loop from each WebSocket's own count at each sweep).
        self.websockets_open = 0
        self.websocket_messages_received = 0
        self.websocket_messages_sent = 0
        self.accept_paused: dict[str, int] = {}

    # -- loop thread ---------------------------------------------------------------------------

    def connection_opened(self) -> ConnectionMeter:
        """Count an accepted connection; return its meter."""
        self.accepted += 1
        return ConnectionMeter(self)

    def accepting_paused(self, reason: str) -> None:
        """Count a pause of accepting (one of :data:`ACCEPT_PAUSE_REASONS`)."""
        self.accept_paused[reason] = self.accept_paused.get(reason, 0) + 1

    def rejected(self, status: int, reason: str) -> None:
        """Count a request the server answered (or gave up on) itself."""
        key = (status, rejection_reason(status, reason))
        self.rejections[key] = self.rejections.get(key, 0) + 1

    # -- any thread ----------------------------------------------------------------------------

    def snapshot(self, pool: PoolLoad | None = None) -> ServerStats:
        """The figures now (see the module's docstring for what "now" means off the loop).

        Args:
            pool: The listener threads' load, read by the caller from the pool.
        """
        requests: dict[tuple[str, str], int] = {}
        for method, counts in [*list(self.by_method.items()), ("OTHER", self.other)]:
            for status_class, n in enumerate(list(counts)):
                if n:
                    requests[(method, f"{status_class}xx")] = n
        cumulative: list[int] = []
        running = 0
        for n in list(self.duration_buckets):
            running += n
            cumulative.append(running)
        return ServerStats(
            requests=types.MappingProxyType(requests),
            request_duration=DurationHistogram(
                DURATION_BOUNDS, tuple(cumulative), self.duration_sum
            ),
            request_body_bytes=self.request_body_bytes,
            response_body_bytes=self.response_body_bytes,
            # Read apart from each other: a request may start and end between the two reads.
            requests_in_flight=max(0, self.started - self.finished),
            connections_accepted=self.accepted,
            connections_closed=_frozen(self.closed),
            rejections=_frozen(self.rejections),
            pool=pool if pool is not None else PoolLoad(),
            websockets_open=self.websockets_open,
            websocket_messages_received=self.websocket_messages_received,
            websocket_messages_sent=self.websocket_messages_sent,
            accept_paused=_frozen(self.accept_paused),
        )


class ConnectionMeter:
    """What is counted per connection (loop thread only).

    Args:
        counters: The server's counters.
    """

    __slots__ = ("cause", "counters", "open_requests")

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self.open_requests = 0  # started, response not sent
        #: Why the connection closes, once known (the first cause named wins).
        self.cause: str | None = None

    def request_started(self, exchange: Metered, head_received: float) -> None:
        """A request head was parsed; its bytes were read at ``head_received``."""
        exchange.started_at = head_received
        self.open_requests += 1
        self.counters.started += 1

    def response_sent(self, exchange: Metered, now: float) -> None:
        """``exchange``'s response was handed to the kernel at ``now``."""
        # Every response comes here: no further call but the bisection (in C).
        self.open_requests -= 1
        counters = self.counters
        counters.finished += 1
        counters.response_body_bytes += exchange.body_sent
        duration = now - exchange.started_at
        counters.duration_buckets[bisect_left(DURATION_BOUNDS, duration)] += 1
        counters.duration_sum += duration
        status_class = exchange.response.status // 100
        counts = counters.by_method.get(exchange.request.method, counters.other)
        counts[status_class if status_class < 10 else 9] += 1

    def closing(self, cause: str) -> None:
        """Name why the connection closes, unless a cause was named already."""
        if self.cause is None:
            self.cause = cause

    def expired(self, expiry: _deadlines.Expiry) -> None:
        """A deadline expired: the connection closes (maybe after a 408) because of it."""
        self.closing(DEADLINE_NAMES.get(expiry, "deadline"))

    def rejected(self, status: int, reason: str, peer_closed: bool) -> None:
        """The driver gave up on a request: count it, and name the cause of the closing."""
        if peer_closed:
            self.closing("client")
            return
        self.counters.rejected(status, reason)
        self.closing("limit" if status in _LIMIT_STATUSES else "protocol_error")

    def limited(self, status: int, reason: str) -> None:
        """The server refused a request for a limit (``limit_concurrency``): count it; the
        connection closes after the answer."""
        self.counters.rejected(status, reason)
        self.closing("limit")

    def protocol_switched(self, exchange: Metered, now: float) -> None:
        """``exchange``'s 101 (Switching Protocols) was handed to the kernel at ``now``: the
        request is answered (a ``1xx``), the WebSocket that follows is not a request."""
        self.open_requests -= 1
        counters = self.counters
        counters.finished += 1
        duration = now - exchange.started_at
        counters.duration_buckets[bisect_left(DURATION_BOUNDS, duration)] += 1
        counters.duration_sum += duration
        counters.by_method.get(exchange.request.method, counters.other)[1] += 1

    def closed(self, lingering: bool, peer_reset: bool = False) -> None:
        """The connection closed, for the cause named first; if none was named:
        ``lingering`` (after the server's FIN), ``server``; ``peer_reset`` (the socket
        failed with a reset by the client), ``client_reset``; else (the socket failed
        here) ``error``."""
        cause = self.cause
        if cause is None:
            cause = "server" if lingering else "client_reset" if peer_reset else "error"
        counters = self.counters
        counters.closed[cause] = counters.closed.get(cause, 0) + 1
        counters.finished += self.open_requests
        self.open_requests = 0
