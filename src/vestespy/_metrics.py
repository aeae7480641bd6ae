"""The Prometheus exporter: ``/metrics`` on a listener of its own (``metrics_bind``).

Theory of operation: nothing is counted for Prometheus on the hot path. A
:class:`StatsCollector` is a ``prometheus_client`` collector whose ``collect`` reads a fresh
:class:`~vestespy._stats.ServerStats` (:meth:`Server.stats`, or the sum the supervisor makes of
its workers') at each scrape and turns it into metric families. The exporter is
``prometheus_client``'s own HTTP server, on its own thread and its own port, with a registry of
its own (so that several servers in one process do not collide in the global one); the
application's port never answers ``/metrics``.

``prometheus_client`` is imported only when an exporter starts: without the ``metrics`` extra
everything else works, and :func:`require_client` says what to install.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ._stats import (
    ACCEPT_PAUSE_REASONS,
    CLOSE_CAUSES,
    DEADLINE_NAMES,
    WEBSOCKET_CLOSE_CAUSES,
    ServerStats,
)
from .options import _parse_bind as parse_bind

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

__all__ = [
    "MetricsExporter",
    "MetricsUnavailable",
    "StatsCollector",
    "parse_bind",
    "require_client",
]

#: Every metric's name starts with this.
PREFIX = "vestespy_"
_INSTALL = "pip install 'vestespy[metrics]'"


class MetricsUnavailable(RuntimeError):
    """``metrics_bind`` is set but ``prometheus_client`` is not installed."""


def require_client() -> None:
    """Check that ``prometheus_client`` can be imported.

    Raises:
        MetricsUnavailable: It cannot; the message says what to install.
    """
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise MetricsUnavailable(
            f"metrics_bind needs the prometheus_client package: {_INSTALL}"
        ) from None


class StatsCollector:
    """A ``prometheus_client`` collector that reads a snapshot at each scrape.

    Args:
        stats: Returns the snapshot to expose.
        extra: Returns more metric families (the supervisor's worker figures), or None.
    """

    def __init__(
        self,
        stats: Callable[[], ServerStats],
        extra: Callable[[], Iterator[Metric]] | None = None,
    ) -> None:
        self._stats = stats
        self._extra = extra

    def collect(self) -> Iterator[Metric]:
        """The metric families of a fresh snapshot (called by the exporter at each scrape)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        stats = self._stats()
        requests = CounterMetricFamily(
            PREFIX + "requests",
            "Responses sent to requests whose head was parsed, by method and status class.",
            labels=["method", "status_class"],
        )
        for (method, status_class), n in sorted(stats.requests.items()):
            requests.add_metric([method, status_class], n)
        yield requests
        histogram = stats.request_duration
        buckets = [
            (_bound(bound), float(n))
            for bound, n in zip((*histogram.bounds, math.inf), histogram.cumulative, strict=True)
        ]
        yield HistogramMetricFamily(
            PREFIX + "request_duration_seconds",
            "From the read that brought a request's head to its response handed to the kernel.",
            buckets=buckets,
            sum_value=histogram.sum,
        )
        yield CounterMetricFamily(
            PREFIX + "request_body_bytes",
            "Request body bytes received.",
            value=stats.request_body_bytes,
        )
        yield CounterMetricFamily(
            PREFIX + "response_body_bytes",
            "Response body bytes sent (heads and framing not counted).",
            value=stats.response_body_bytes,
        )
        yield GaugeMetricFamily(
            PREFIX + "requests_in_flight",
            "Requests whose head was parsed and whose response is not sent yet.",
            value=stats.requests_in_flight,
        )
        yield GaugeMetricFamily(
            PREFIX + "connections_open", "Connections open.", value=stats.connections_open
        )
        yield CounterMetricFamily(
            PREFIX + "connections_accepted",
            "Connections accepted.",
            value=stats.connections_accepted,
        )
        closed = CounterMetricFamily(
            PREFIX + "connections_closed",
            "Connections closed, by cause.",
            labels=["cause"],
        )
        # Every cause, counted or not, so that rate() sees a series from its first increase.
        causes = dict.fromkeys(
            (*CLOSE_CAUSES, *DEADLINE_NAMES.values(), *WEBSOCKET_CLOSE_CAUSES), 0
        )
        causes.update(stats.connections_closed)
        for cause, n in sorted(causes.items()):
            closed.add_metric([cause], n)
        yield closed
        paused = CounterMetricFamily(
            PREFIX + "accept_paused",
            "Times the server stopped accepting connections, by reason.",
            labels=["reason"],
        )
        reasons = dict.fromkeys(ACCEPT_PAUSE_REASONS, 0)
        reasons.update(stats.accept_paused)
        for reason, n in sorted(reasons.items()):
            paused.add_metric([reason], n)
        yield paused
        rejections = CounterMetricFamily(
            PREFIX + "rejections",
            "Requests the server answered itself (or gave up on), by status and reason.",
            labels=["status", "reason"],
        )
        for (status, reason), n in sorted(stats.rejections.items()):
            rejections.add_metric([str(status), reason], n)
        yield rejections
        yield GaugeMetricFamily(
            PREFIX + "pool_threads", "Listener threads started.", value=stats.pool.threads
        )
        yield GaugeMetricFamily(
            PREFIX + "pool_busy_threads",
            "Listener threads running a listener.",
            value=stats.pool.busy,
        )
        yield GaugeMetricFamily(
            PREFIX + "pool_queue_depth",
            "Listener tasks waiting for a thread.",
            value=stats.pool.queued,
        )
        yield GaugeMetricFamily(
            PREFIX + "websockets_open", "WebSockets open.", value=stats.websockets_open
        )
        messages = CounterMetricFamily(
            PREFIX + "websocket_messages",
            "WebSocket messages, by direction.",
            labels=["direction"],
        )
        messages.add_metric(["received"], stats.websocket_messages_received)
        messages.add_metric(["sent"], stats.websocket_messages_sent)
        yield messages
        if self._extra is not None:
            yield from self._extra()


def _bound(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


class MetricsExporter:
    """``/metrics`` served on its own listener, from its own thread.

    Args:
        bind: ``HOST:PORT`` (see :func:`parse_bind`).
        collector: What the scrapes read.

    Raises:
        MetricsUnavailable: ``prometheus_client`` is not installed.
        ValueError: ``bind`` is not ``HOST:PORT``.
        OSError: The address cannot be bound.
    """

    def __init__(self, bind: str, collector: StatsCollector) -> None:
        host, port = parse_bind(bind)
        require_client()
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        server: WSGIServer
        server, thread = start_http_server(port, host, registry=registry)
        self._server = server
        self._thread: threading.Thread = thread

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; the real port when 0 was asked for."""
        name = self._server.server_address
        return str(name[0]), int(name[1])

    def close_in_child(self) -> None:
        """In a forked child: close the inherited listening socket (no thread to stop)."""
        self._server.socket.close()

    def close(self) -> None:
        """Stop serving and close the listener (waits for the exporter's thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
