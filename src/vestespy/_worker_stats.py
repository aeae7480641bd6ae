"""The command's metrics with worker processes: each worker publishes, the supervisor sums.

Theory of operation (why not ``prometheus_client``'s multiprocess mode: it writes an mmap'd
file per metric on every increment, a cost on the hot path, and it would make the counting
depend on the extra):

* The supervisor makes a directory of its own and gives each worker a file in it. A worker's
  loop thread writes its :meth:`~vestespy.Server.stats` there as JSON every
  :data:`PUBLISH_INTERVAL` seconds and once more when it stops (write to a temporary name,
  then ``os.replace``: a reader never sees half a file).
* The :class:`StatsBoard` (supervisor) answers each scrape with the sum of the live workers'
  files and of what the workers that are gone had published last. When a worker exits, its
  file is read one last time and folded into the *retired* total: its counts stay, its levels
  (requests in flight, threads, open WebSockets) go, and the connections it still held count
  as closed with cause ``worker_exit``. A worker killed outright (``SIGKILL``) loses what it
  counted after its last publication, at most :data:`PUBLISH_INTERVAL` seconds' worth.
* The board also counts the workers alive and the workers that exited, by cause.

The supervisor's thread updates the board; the exporter's thread reads it: one lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from ._stats import PoolLoad, ServerStats

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .server import Server

__all__ = ["PUBLISH_INTERVAL", "REPLACED_CAUSES", "StatsBoard", "publish_stats", "write_stats"]

#: Seconds between two publications of a worker's figures.
PUBLISH_INTERVAL = 1.0
#: Why a worker was replaced: it died (a crash, a signal), its loop stopped answering
#: (``--timeout``), it reached ``--max-requests``, a reload replaced it, it failed to start.
REPLACED_CAUSES = ("died", "timeout", "max_requests", "reload", "failed_start")


def write_stats(server: Server, path: str) -> None:
    """Write ``server``'s figures to ``path``, atomically."""
    data = json.dumps(server.stats().to_json()).encode()
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def publish_stats(server: Server, path: str) -> None:
    """Write ``server``'s figures to ``path`` now, then every :data:`PUBLISH_INTERVAL`
    seconds from its loop thread while it runs (call before serving)."""
    loop = server._loop

    def publish() -> None:
        try:
            write_stats(server, path)
        except OSError:
            return  # the supervisor's directory is gone: it is stopping
        loop.call_later(PUBLISH_INTERVAL, publish)

    loop.call_soon(publish)


def _read(path: str) -> ServerStats | None:
    try:
        with open(path, "rb") as file:
            return ServerStats.from_json(json.loads(file.read()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not published yet


def _retired(stats: ServerStats) -> ServerStats:
    """A gone worker's figures: its counts, none of its levels."""
    closed = dict(stats.connections_closed)
    if stats.connections_open > 0:
        closed["worker_exit"] = closed.get("worker_exit", 0) + stats.connections_open
    return replace(
        stats,
        requests_in_flight=0,
        connections_closed=closed,
        pool=PoolLoad(),
        websockets_open=0,
    )


class StatsBoard:
    """The supervisor's view of its workers' figures (see the module's docstring)."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="vestespy-stats-")
        self._lock = threading.Lock()  # guards the fields below
        self._live: set[int] = set()
        self._retired: ServerStats = ServerStats.total([])
        self._replaced: dict[str, int] = dict.fromkeys(REPLACED_CAUSES, 0)

    def path(self, pid: int) -> str:
        """Where worker ``pid`` publishes."""
        return os.path.join(self.directory, f"{pid}.json")

    # -- the supervisor's thread -----------------------------------------------------------

    def started(self, pid: int) -> None:
        """Worker ``pid`` was forked."""
        with self._lock:
            self._live.add(pid)

    def exited(self, pid: int, cause: str | None) -> None:
        """Worker ``pid`` is gone (``cause``: one of :data:`REPLACED_CAUSES`, None when the
        command is stopping): keep the counts it published last."""
        path = self.path(pid)
        final = _read(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        with self._lock:
            self._live.discard(pid)
            if final is not None:
                self._retired = ServerStats.total([self._retired, _retired(final)])
            if cause is not None:
                self._replaced[cause] = self._replaced.get(cause, 0) + 1

    def close(self) -> None:
        """Remove the directory."""
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- any thread (the exporter's) ------------------------------------------------------

    def total(self) -> ServerStats:
        """The sum over the live workers' last publications and the gone workers' counts."""
        with self._lock:
            live = list(self._live)
            retired = self._retired
        published = [_read(self.path(pid)) for pid in live]
        return ServerStats.total([retired, *(s for s in published if s is not None)])

    def worker_metrics(self) -> Iterator[Metric]:
        """The workers' own metric families: alive, and replaced by cause."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            alive = len(self._live)
            replaced = dict(self._replaced)
        yield GaugeMetricFamily("vestespy_workers_alive", "Worker processes running.", value=alive)
        family = CounterMetricFamily(
            "vestespy_workers_replaced",
            "Worker processes that exited while the command was serving, by cause.",
            labels=["cause"],
        )
        for cause, n in sorted(replaced.items()):
            family.add_metric([cause], n)
        yield family
