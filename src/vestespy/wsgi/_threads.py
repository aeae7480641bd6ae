"""The threads that run applications whose request body streams in while they run.

Theory of operation: such an application blocks reading ``wsgi.input`` until the request's
strand delivers the next ``"data"`` event, so it cannot run on that strand (the strand would
wait for itself). It runs here instead, one thread per such request: a thread left idle by an
earlier request takes the task if there is one, else a new thread starts. The count is not
capped on purpose. A cap would let every pool worker of the server block feeding the full
input of an application that waits for a thread, while the running applications wait for
data that only those workers can deliver: a deadlock. Uncapped, every strand blocked in
``"data"`` belongs to an application that is running, which either reads (freeing it) or
finishes (the input then discards). Idle threads exit after ``idle_timeout`` seconds.

``_idle`` counts threads waiting for a task that no submitter has claimed; ``submit`` claims
one or starts a thread, and a thread whose wait times out leaves only if an unclaimed slot is
left, so every task put on the queue has a thread to take it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["AppThreads"]

logger: logging.Logger = logging.getLogger("vestespy.wsgi")

Task = tuple[Callable[..., object], tuple[Any, ...]]


class AppThreads:
    """Daemon threads for application calls, started on demand and reused while busy.

    Args:
        idle_timeout: Seconds an idle thread waits for a task before it exits.
    """

    def __init__(self, idle_timeout: float = 30.0) -> None:
        self.idle_timeout = idle_timeout
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # guarded by _lock
        self._started = 0  # threads started so far, for their names

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on an idle thread, or on a new one (any thread)."""
        with self._lock:
            start = not self._idle
            if start:
                self._started += 1
                name = f"vestespy-wsgi-{self._started}"
            else:
                self._idle -= 1
        self._tasks.put((fn, args))
        if start:
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        tasks = self._tasks
        while True:
            try:
                fn, args = tasks.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle:
                        self._idle -= 1
                        return
                continue  # claimed just now: its task is on the way
            try:
                fn(*args)
            except Exception:
                # Tasks guard the application; this is a bug in the adapter.
                logger.exception("WSGI task %r raised", fn)
            with self._lock:
                self._idle += 1
