"""``--timeout``: a worker whose loop stops reporting is killed and replaced.

Theory of operation, as gunicorn's ``--timeout``: a worker's loop thread writes a heartbeat
(``H``) to its report pipe from a timer on the loop itself, every :func:`beat_interval`
seconds. The timer runs only when the loop runs, so a listener blocking the loop thread (an
inline listener, ``--threads 0``, that never returns) stops the beats, while a listener
blocking one pool thread does not: the loop goes on, and so do its other connections.

The supervisor records each beat; a serving worker silent for longer than the timeout is
sent ``SIGABRT`` (the worker has :mod:`faulthandler` on, so its stderr shows every thread's
stack: where it hung), then ``SIGKILL`` :data:`KILL_AFTER` seconds later if still there, and
a new worker takes its slot at once.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from .server import Server

__all__ = ["HEARTBEAT", "KILL_AFTER", "beat_interval", "overdue", "start_heartbeat"]

#: The byte a worker's loop writes to its report pipe.
HEARTBEAT = b"H"
#: Seconds between SIGABRT and SIGKILL for a worker that timed out.
KILL_AFTER = 2.0


class Beating(Protocol):
    """What :func:`overdue` reads of a worker (the supervisor's record of it)."""

    pid: int
    ready: bool
    stopping: bool
    last_beat: float


_W = TypeVar("_W", bound=Beating)


def beat_interval(timeout: float) -> float:
    """Seconds between heartbeats: four per timeout, at most one a second, at least 20 a second."""
    return max(0.05, min(1.0, timeout / 4))


def overdue(workers: Iterable[_W], now: float, timeout: float) -> list[_W]:
    """The serving workers whose last heartbeat is older than ``timeout`` seconds at ``now``.

    Workers still starting (their start has its own limit) and workers already being stopped
    are not judged.
    """
    if timeout <= 0:
        return []
    return [w for w in workers if w.ready and not w.stopping and now - w.last_beat > timeout]


def start_heartbeat(server: Server, report_fd: int, timeout: float) -> None:
    """Write a heartbeat to ``report_fd`` from ``server``'s loop thread while it runs.

    Call before :meth:`~vestespy.Server.serve_forever`; the first beat goes out as soon as the
    loop runs.
    """
    # A full pipe (the supervisor stalled) must not block the loop: the beat is dropped.
    os.set_blocking(report_fd, False)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    loop = server._loop
    interval = beat_interval(timeout)

    def beat() -> None:
        try:
            os.write(report_fd, HEARTBEAT)
        except BlockingIOError:
            pass
        except OSError:
            return  # the supervisor is gone: the parent watch stops the worker
        loop.call_later(interval, beat)

    loop.call_soon(beat)
