"""Listener threads and per-connection serial queues ("strands").

Theory of operation: listeners run on the threads of a :class:`WorkerPool`, which take tasks
from one ``queue.SimpleQueue``; the WSGI adapter runs applications on a pool of its own,
uncapped, whose idle threads exit after a while. Each client connection posts its events to its own
:class:`Strand`; a strand runs its tasks in the order posted and never two at once, so the
events of one request (and the requests of one connection) reach listeners in order, one at a
time, whichever worker threads run them. A strand holds a worker only while it has tasks: an
idle connection costs no thread.

Why not ``concurrent.futures.ThreadPoolExecutor``: its ``submit`` builds a Future and takes
several locks per task, ~7 us here against ~0.2 us for a ``SimpleQueue.put``, and a strand
never reads a result. Threads are started as the executor starts them: one more only when no
worker is idle, up to ``max_workers``.

With no pool (``max_workers=0``) an :class:`InlineStrand` runs tasks at once on the posting
thread (the loop thread), queueing only those posted while one of its tasks is running.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["InlineStrand", "SerialQueue", "Strand", "WorkerPool"]

logger: logging.Logger = logging.getLogger("vestespy.error")

# A function and its arguments. Any: each task has its own signature.
Task = tuple[Callable[..., object], tuple[Any, ...]]


class SerialQueue(Protocol):
    """What connections need of a strand: :class:`Strand`, :class:`InlineStrand` or a fake.

    A protocol rather than the union: compiled by mypyc, a value typed with compiled classes
    refuses anything else at run time, and the tests hand connections fake strands.
    """

    # Any: the arguments of a task are whatever its function takes.
    def post(self, fn: Callable[..., object], *args: Any) -> None: ...


class Strand:
    """Runs posted tasks in order, one at a time, on a thread pool.

    Tasks must not raise; the connection wraps every listener call.
    """

    __slots__ = ("_at_end", "_lock", "_pool", "_running", "_tasks")

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._tasks: deque[Task] = deque()
        self._lock = threading.Lock()
        self._running = False
        # What the running tasks deferred to their end (see defer); under the lock.
        self._at_end: Callable[[], object] | None = None

    # Any: the arguments of a task are whatever its function takes.
    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` behind this strand's earlier tasks (thread-safe)."""
        with self._lock:
            self._tasks.append((fn, args))
            if self._running:
                return
            self._running = True
        try:
            self._pool.submit(self._run_queued)
        except RuntimeError:
            # The pool is shut down (the server is stopping): nothing will run these.
            with self._lock:
                self._tasks.clear()
                self._running = False

    def defer(self, fn: Callable[[], object]) -> bool:
        """Call ``fn()`` once this strand has no task left, if it is running tasks (one call
        at most, of the last ``fn`` given); else return False (thread-safe).

        For a connection's report to the loop thread that only the loop's next step waits
        for: a task posted by that step would queue behind the running ones anyway, so the
        loop is woken once they are done, instead of taking the GIL from them in mid-task.
        """
        with self._lock:
            if not self._running:
                return False
            self._at_end = fn
            return True

    def _run_queued(self) -> None:
        """Run the queued tasks in order until none is left (a pool thread)."""
        tasks = self._tasks
        lock = self._lock
        while True:
            task: Task | None = None
            with lock:  # (no break in here: mypyc cannot compile one in a try/finally)
                if tasks:
                    task = tasks.popleft()
                else:
                    self._running = False
                    at_end, self._at_end = self._at_end, None
            if task is None:
                break
            fn, args = task
            fn(*args)
        if at_end is not None:
            at_end()


class InlineStrand:
    """Runs posted tasks at once on the posting thread, keeping their order."""

    __slots__ = ("_running", "_tasks")

    def __init__(self) -> None:
        self._tasks: deque[Task] = deque()
        self._running = False

    # Any: the arguments of a task are whatever its function takes.
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
    """Threads that run submitted tasks: the server's listener threads, and the WSGI
    adapter's application threads.

    A thread starts only when no thread is idle (and fewer than ``max_workers`` run); a task
    submitted while every thread is busy and the cap is reached waits in the queue.

    Idle accounting, under ``_lock``: ``_idle`` counts threads waiting for a task that no
    submitter has claimed, ``_unclaimed`` the queued tasks no thread was reserved for (the cap
    was reached). ``submit`` claims an idle thread, else starts one, else leaves the task
    unclaimed; a thread that finishes a task takes an unclaimed one before it counts as idle.
    So every queued task has a thread that will take it, and a thread whose wait for a task
    times out leaves only if an unclaimed idle slot is left.

    Args:
        max_workers: The most threads; 0 runs listeners inline on the loop thread (see
            :meth:`strand`); None does not cap them (the WSGI adapter's application threads:
            see ``wsgi/_adapter.py`` for why a cap could deadlock).
        idle_timeout: Seconds an idle thread waits for a task before it exits; None keeps
            threads until :meth:`shutdown`.
        name: The threads' names: ``name-0``, ``name-1``, ...
    """

    def __init__(
        self,
        max_workers: int | None,
        *,
        idle_timeout: float | None = None,
        name: str = "vestespy-worker",
    ) -> None:
        if max_workers is not None and max_workers < 0:
            raise ValueError(f"max_workers must be >= 0, not {max_workers}")
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self._name = name
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the fields below
        self._idle = 0
        self._unclaimed = 0
        self._threads: list[threading.Thread] = []  # the live threads
        self._started = 0  # threads started so far, for their names
        self._shut_down = False
        self._local = threading.local()

    # Any: the arguments of a task are whatever its function takes.
    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker thread (any thread).

        Raises:
            RuntimeError: The pool is shut down.
        """
        thread = None
        with self._lock:
            if self._shut_down:
                raise RuntimeError("the worker pool is shut down")
            if self._idle:
                self._idle -= 1
            elif self.max_workers is None or len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._name}-{self._started}",
                    # A server left open must not keep the interpreter from exiting.
                    daemon=True,
                )
                self._started += 1
                self._threads.append(thread)
            else:
                self._unclaimed += 1
        self._tasks.put((fn, args))
        if thread is not None:
            thread.start()

    def _work(self) -> None:
        self._local.pool = self
        get = self._tasks.get
        timeout = self.idle_timeout
        lock = self._lock
        while True:
            try:
                task = get(timeout=timeout)
            except queue.Empty:
                with lock:
                    if self._idle:
                        self._idle -= 1
                        self._threads.remove(threading.current_thread())
                        return
                continue  # claimed just now: its task is on the way
            if task is None:
                return
            fn, args = task
            try:
                fn(*args)
            except Exception:
                # Tasks guard their listeners; this is a bug in VestesPy, not in an app.
                logger.exception("worker task %r raised", fn)
            with lock:
                if self._unclaimed:
                    self._unclaimed -= 1
                else:
                    self._idle += 1

    def load(self) -> tuple[int, int, int]:
        """The threads, those busy (not waiting for a task), and the tasks queued for want of
        a thread, read together under the pool's lock (any thread; for the server's stats)."""
        with self._lock:
            threads = len(self._threads)
            return threads, threads - self._idle, self._unclaimed

    def in_worker_thread(self) -> bool:
        """Whether the caller is one of this pool's threads."""
        return getattr(self._local, "pool", None) is self

    def strand(self) -> Strand | InlineStrand:
        """Return a new serial queue for one connection."""
        if self.max_workers == 0:
            return InlineStrand()
        return Strand(self)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads; queued tasks that have not started are dropped."""
        with self._lock:
            self._shut_down = True
            threads = list(self._threads)
        try:
            while True:
                self._tasks.get_nowait()
        except queue.Empty:
            pass
        for _ in threads:
            self._tasks.put(None)
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()
