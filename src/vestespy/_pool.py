"""Listener threads and per-connection serial queues ("strands").

Theory of operation: listeners run on a ``concurrent.futures.ThreadPoolExecutor``. Each client
connection posts its events to its own :class:`Strand`; a strand runs its tasks in the order
posted and never two at once, so the events of one request (and the requests of one
connection) reach listeners in order, one at a time, whichever worker threads run them. A
strand holds a worker only while it has tasks: an idle connection costs no thread.

With no pool (``max_workers=0``) an :class:`InlineStrand` runs tasks at once on the posting
thread (the loop thread), queueing only those posted while one of its tasks is running.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["InlineStrand", "Strand", "WorkerPool"]

Task = tuple[Callable[..., object], tuple[Any, ...]]


class Strand:
    """Runs posted tasks in order, one at a time, on a thread pool.

    Tasks must not raise; the connection wraps every listener call.
    """

    __slots__ = ("_executor", "_lock", "_running", "_tasks")

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self._tasks: deque[Task] = deque()
        self._lock = threading.Lock()
        self._running = False

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` behind this strand's earlier tasks (thread-safe)."""
        with self._lock:
            self._tasks.append((fn, args))
            if self._running:
                return
            self._running = True
        try:
            self._executor.submit(self._drain)
        except RuntimeError:
            # The pool is shut down (the server is stopping): nothing will run these.
            with self._lock:
                self._tasks.clear()
                self._running = False

    def _drain(self) -> None:
        tasks = self._tasks
        lock = self._lock
        while True:
            with lock:
                if not tasks:
                    self._running = False
                    return
                fn, args = tasks.popleft()
            fn(*args)


class InlineStrand:
    """Runs posted tasks at once on the posting thread, keeping their order."""

    __slots__ = ("_running", "_tasks")

    def __init__(self) -> None:
        self._tasks: deque[Task] = deque()
        self._running = False

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` now, or after the task that is running if called from one."""
        if self._running:
            self._tasks.append((fn, args))
            return
        self._running = True
        try:
            fn(*args)
            tasks = self._tasks
            while tasks:
                queued_fn, queued_args = tasks.popleft()
                queued_fn(*queued_args)
        finally:
            self._running = False


class WorkerPool:
    """The listener threads of one server.

    Args:
        max_workers: The number of threads; 0 runs listeners inline on the loop thread.
    """

    def __init__(self, max_workers: int) -> None:
        if max_workers < 0:
            raise ValueError(f"max_workers must be >= 0, not {max_workers}")
        self.max_workers = max_workers
        self._local = threading.local()
        self._executor = (
            ThreadPoolExecutor(
                max_workers, thread_name_prefix="vestespy-worker", initializer=self._mark_thread
            )
            if max_workers
            else None
        )

    def _mark_thread(self) -> None:
        self._local.pool = self

    def in_worker_thread(self) -> bool:
        """Whether the caller is one of this pool's threads."""
        return getattr(self._local, "pool", None) is self

    def strand(self) -> Strand | InlineStrand:
        """Return a new serial queue for one connection."""
        if self._executor is None:
            return InlineStrand()
        return Strand(self._executor)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads; queued tasks that have not started are dropped."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
