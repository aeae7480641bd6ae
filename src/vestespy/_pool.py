"""Listener threads and per-connection serial queues ("strands").

Theory of operation: listeners run on the threads of a :class:`WorkerPool`, which take tasks
from one queue (the class says when a task wakes a thread); the WSGI adapter runs
applications on a pool of its own, uncapped, whose idle threads exit after a while. Each
client connection posts its events to its own :class:`Strand`; a strand runs its tasks in the
order posted and never two at once, so the events of one request (and the requests of one
connection) reach listeners in order, one at a time, whichever worker threads run them. A
strand holds a worker only while it has tasks: an idle connection costs no thread.

Why not ``concurrent.futures.ThreadPoolExecutor``: its ``submit`` builds a Future and takes
several locks per task, ~7 us here against a fraction of that for an append under one lock,
and a strand never reads a result. Threads are started as the executor starts them: one more
only when no worker is idle, up to ``max_workers``.

With no pool (``max_workers=0``) an :class:`InlineStrand` runs tasks at once on the posting
thread (the loop thread), queueing only those posted while one of its tasks is running.

Locks: those taken for every request, here (a strand's post and its run, the pool's submit
and its thread's take), in ``Wire`` (``receive``, ``next_event``, ``start``, ``take``,
``sent``) and in ``Exchange`` (``response_over``, ``_request_done``), are taken with
``acquire()`` and released in ``finally``, not with ``with``. Compiled by mypyc, a ``with``
looks ``__enter__`` and ``__exit__`` up on the lock's type and calls ``__exit__`` with three
arguments: measured (a deque append or pop under the lock, compiled), 98 ns against 76 ns per
lock; interpreted, about 145 against 85. The other locks, off that path, keep ``with``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["InlineStrand", "SerialQueue", "Strand", "WorkerPool"]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: The share of one CPU above which the process counts as busy for ``WorkerPool.watch``:
#: its threads then compete for the GIL rather than wait on I/O.
BUSY = 0.7

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
        # A list, not a deque: every connection has a strand, and an empty deque is 760
        # bytes, a list 56. _run_queued takes the whole list at once.
        self._tasks: list[Task] = []
        self._lock = threading.Lock()
        self._running = False
        # What the running tasks deferred to their end (see defer); under the lock.
        self._at_end: Callable[[], object] | None = None

    # Any: the arguments of a task are whatever its function takes.
    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` behind this strand's earlier tasks (thread-safe)."""
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in the module's docstring
        try:
            self._tasks.append((fn, args))
            running = self._running
            self._running = True
        finally:
            lock.release()
        if running:
            return
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
        """Run the queued tasks in order until none is left (a pool thread).

        The tasks queued are taken all at once, one lock for a batch; those posted while a
        batch runs queue in a fresh list, for the next.
        """
        lock = self._lock
        while True:
            batch: list[Task] | None = None
            lock.acquire()  # not ``with``: see "Locks" in the module's docstring
            try:  # (no break in here: mypyc cannot compile one in a try/finally)
                if self._tasks:
                    batch = self._tasks
                    self._tasks = []
                else:
                    self._running = False
                    at_end, self._at_end = self._at_end, None
            finally:
                lock.release()
            # Decided under the lock: once _running is False, the list may be filling again
            # for the next runner, and its tasks are that runner's.
            if batch is None:
                break
            for fn, args in batch:
                fn(*args)
        if at_end is not None:
            at_end()


class InlineStrand:
    """Runs posted tasks at once on the posting thread, keeping their order."""

    __slots__ = ("_running", "_tasks")

    def __init__(self) -> None:
        self._tasks: list[Task] = []  # a list, as Strand's
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
            while self._tasks:
                batch, self._tasks = self._tasks, []
                for queued_fn, queued_args in batch:
                    queued_fn(*queued_args)
        finally:
            self._running = False


class WorkerPool:
    """Threads that run submitted tasks: the server's listener threads, and the WSGI
    adapter's application threads.

    Tasks wait in one queue; a thread with nothing to do parks on a lock of its own (the
    most recently parked is woken first: its stack is still in the cache). When a submitted
    task wakes a thread depends on ``handoff_delay``:

    * None (the WSGI adapter's application threads): every task wakes a parked thread, or
      starts one if none is parked and fewer than ``max_workers`` run; past the cap it waits
      for a busy thread.
    * A delay (the server's listener threads): a task wakes a thread only when no thread is
      awake. An awake thread runs queued tasks one after another before it parks, so a burst
      of requests costs one wake-up rather than one each: under the GIL, threads that all
      run Python take turns anyway, and every hand-off between them is a context switch
      (measured: 2.2 switches and 2.7 futex calls per hello request with a wake per task,
      0.2 and 0.2 this way). What this must not do is leave tasks behind a listener that
      blocks (a database call, a sleep), nor let a queue grow behind too few threads:
      :meth:`watch`, which the loop thread calls at least every ``handoff_delay`` seconds
      while a thread is awake, wakes threads once a task has waited about
      ``handoff_delay`` (a thread for every waiting task when the awake ones are blocked;
      fewer when they run, see :meth:`watch`). So the awake threads being blocked delays a
      task by one to two ``handoff_delay`` (plus a loop pass), and the pool grows to the
      threads the load needs, as before.

    Accounting, under ``_lock``: ``_awake`` counts the threads not parked (running a task,
    or woken and about to take one); ``_submitted`` counts the tasks submitted, and those
    taken are the submitted ones no longer queued (:attr:`_taken`), which :meth:`watch`
    compares. A thread that finds the queue empty
    parks; one whose park times out (``idle_timeout``) leaves if nobody woke it meanwhile.

    Args:
        max_workers: The most threads; 0 runs listeners inline on the loop thread (see
            :meth:`strand`); None does not cap them (the WSGI adapter's application threads:
            see ``wsgi/_adapter.py`` for why a cap could deadlock).
        idle_timeout: Seconds an idle thread waits for a task before it exits; None keeps
            threads until :meth:`shutdown`.
        name: The threads' names: ``name-0``, ``name-1``, ...
        handoff_delay: None, or seconds a task may wait for an awake thread before
            :meth:`watch` wakes another (see above).
        on_first_wake: Called (outside the pool's lock) when a task wakes a thread while no
            other is awake: the server wakes its loop with it, when the caller is not the
            loop thread, so that the loop starts watching.
        cpu_clock: The process's CPU time in seconds (:func:`time.process_time`; tests pass
            a fake), which :meth:`watch` reads at most once a pass.
        watcher_clock: The CPU time of the thread that calls :meth:`watch`
            (:func:`time.thread_time`; tests pass a fake), read with ``cpu_clock``.
        gil_turn: The seconds a thread waiting for the GIL is given before :meth:`watch`
            takes it for stuck, when the watcher was the one running; None: twice
            :func:`sys.getswitchinterval` (10 ms by default).
    """

    def __init__(
        self,
        max_workers: int | None,
        *,
        idle_timeout: float | None = None,
        name: str = "vestespy-worker",
        handoff_delay: float | None = None,
        on_first_wake: Callable[[], object] | None = None,
        cpu_clock: Callable[[], float] = time.process_time,
        watcher_clock: Callable[[], float] = time.thread_time,
        gil_turn: float | None = None,
    ) -> None:
        if max_workers is not None and max_workers < 0:
            raise ValueError(f"max_workers must be >= 0, not {max_workers}")
        if handoff_delay is not None and handoff_delay <= 0:
            raise ValueError(f"handoff_delay must be > 0, not {handoff_delay}")
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self.handoff_delay = handoff_delay
        self._on_first_wake = on_first_wake
        self._cpu_clock = cpu_clock
        self._watcher_clock = watcher_clock
        self.gil_turn = gil_turn
        self._name = name
        self._lock = threading.Lock()  # guards the fields below
        self._pending: deque[Task] = deque()
        # Each parked thread's lock, held until it is woken; the last parked at the end.
        self._parked: list[threading.Lock] = []
        self._awake = 0
        self._submitted = 0
        self._threads: list[threading.Thread] = []  # the live threads
        self._started = 0  # threads started so far, for their names
        self._shut_down = False
        # watch()'s mark: the tasks submitted by then (see watch), and when it was made.
        self._mark = 0
        self._mark_taken = 0
        self._mark_at = 0.0
        self._mark_cpu = 0.0
        self._mark_watcher_cpu = 0.0
        self._local = threading.local()

    # Any: the arguments of a task are whatever its function takes.
    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker thread (any thread).

        Raises:
            RuntimeError: The pool is shut down.
        """
        lock = self._lock
        lock.acquire()  # not ``with``: see "Locks" in the module's docstring
        try:
            if self._shut_down:
                raise RuntimeError("the worker pool is shut down")
            self._pending.append((fn, args))
            self._submitted += 1
            if self._awake and self.handoff_delay is not None:
                return  # an awake thread takes it (or watch() wakes one)
            first = not self._awake
            woken = self._wake_one()
        finally:
            lock.release()
        if woken is not None:
            woken()
            if first and self._on_first_wake is not None:
                self._on_first_wake()

    def _wake_one(self) -> Callable[[], object] | None:
        """Claim a parked thread, or a new one under the cap; return what wakes or starts
        it, to call outside the lock (None: every thread is busy and the cap reached)."""
        if self._parked:
            self._awake += 1
            return self._parked.pop().release
        if self.max_workers is None or len(self._threads) < self.max_workers:
            thread = threading.Thread(
                target=self._work,
                name=f"{self._name}-{self._started}",
                # A server left open must not keep the interpreter from exiting.
                daemon=True,
            )
            self._started += 1
            self._threads.append(thread)
            self._awake += 1
            return thread.start
        return None

    @property
    def _taken(self) -> int:
        """The tasks taken so far (read without the lock, it may be a task behind)."""
        return self._submitted - len(self._pending)

    def watch(self, now: float) -> float | None:
        """Wake a thread for every waiting task once a task has waited about
        ``handoff_delay`` seconds and another thread would help (the loop thread, before
        each wait for events).

        The age of the oldest waiting task, without a clock call per task: a mark holds the
        count of tasks submitted when it was made; once every one of those is taken, the
        next pass that finds tasks waiting makes a new one. A mark older than
        ``handoff_delay`` with one of its tasks still waiting means a task has waited that
        long (and at most about twice that). Then:

        * no task taken since the mark: the awake threads are held (blocked on I/O, or in
          one long listener): threads are woken, so that a short request does not wait
          for a long one. If the process was busy and not through its watcher alone, the
          awake threads ran Python all that time (a long listener, or a strand's long run
          of tasks): one thread is woken, not one per waiting task, for the same reason as
          below;
        * tasks taken, but the process used less than ``BUSY`` of a CPU since the
          mark: the awake threads spend their time waiting (on a database...) and are too
          few for the load: threads are woken, at most as many as are awake (the pool
          doubles per delay rather than jumping to its cap on one short look);
        * tasks taken and the process busy: the threads run Python, and the GIL, not their
          number, is the limit; another thread would only take turns with them, at the
          price of a context switch per turn. Nobody is woken; a new mark is made.

        Before waking threads because none was taken, the mark may be given until it is a
        GIL turn old (``gil_turn``): when the caller itself (the loop thread) ran for most of
        the time since the mark, the awake thread was most likely waiting for the GIL, which
        a waiting thread gets within a switch interval, not stuck. Woken threads would wait
        for it too, and then take turns with each other: measured on the command's hello
        (one CPU, 50 connections), the loop's long passes made this wake all 49 parked
        threads every few hundred milliseconds, doubling the context switches per request.

        Returns:
            The seconds after which to call again at the latest; None while no thread is
            awake (a task submitted then wakes one itself).
        """
        delay = self.handoff_delay
        if delay is None or not self._awake:
            return None
        # The mark is this method's alone (the loop thread's), and the counts are read
        # without the lock: a count a task behind only moves the mark a pass later.
        if self._taken >= self._mark:
            if self._pending:
                self._new_mark(now)
            return delay
        waited = now - self._mark_at
        if waited < delay:
            return delay - waited
        watcher: float | None = None  # the watcher's CPU time since the mark, when needed
        if self._taken == self._mark_taken:
            watcher = self._watcher_clock() - self._mark_watcher_cpu
            turn = self._gil_turn()
            if waited < turn and watcher >= BUSY * waited:
                return turn - waited  # the awake thread waits for the GIL: give it its turn
        limit = self._wake_limit(waited, watcher)
        wake: list[Callable[[], object]] = []
        if limit != 0:
            with self._lock:
                count = len(self._pending)
                if limit is not None:
                    count = min(count, limit)
                for _ in range(count):
                    woken = self._wake_one()
                    if woken is None:
                        break
                    wake.append(woken)
        self._new_mark(now)
        for woken in wake:
            woken()
        return delay

    def _wake_limit(self, waited: float, watcher: float | None) -> int | None:
        """How many of the waiting tasks get a thread, the oldest having waited ``waited``
        seconds (see :meth:`watch`): None for all of them.

        Args:
            waited: Seconds since the mark.
            watcher: The watcher's CPU seconds since the mark when no task was taken since;
                None when tasks were taken.
        """
        busy = self._cpu_clock() - self._mark_cpu >= BUSY * waited
        if watcher is None:
            # Tasks flow. With the process busy, the threads run Python and the GIL is the
            # limit: nobody. Otherwise they flow too slowly: at most as many more threads as
            # are awake, so the pool doubles per delay. Over a few milliseconds, the CPU
            # share is a rough measure: at the start of a burst of connections one such look
            # woke 49 threads. (The awake count is read without the lock: a thread more or
            # less is no matter.)
            return 0 if busy else self._awake
        if busy and watcher < BUSY * waited:
            # The awake threads ran (the process was busy, not its watcher alone): one long
            # task holds them, running Python. One more thread gives the tasks behind it a
            # turn; more would only take turns with each other under the GIL. Seen on the
            # command's hello with a tracing thread added: a strand's run held the thread
            # for a few ms, and a thread per waiting task grew the pool to its cap.
            return 1
        return None  # the awake threads are blocked: a thread for every waiting task

    def _new_mark(self, now: float) -> None:
        self._mark = self._submitted
        self._mark_taken = self._taken
        self._mark_at = now
        self._mark_cpu = self._cpu_clock()
        self._mark_watcher_cpu = self._watcher_clock()

    def _gil_turn(self) -> float:
        """The longest a thread waiting for the GIL should wait for it (see :meth:`watch`)."""
        if self.gil_turn is not None:
            return self.gil_turn
        # A waiting thread asks the holder to drop the GIL after one switch interval; the
        # holder does at its next check. Twice the interval leaves room for the second part.
        return 2 * sys.getswitchinterval()

    def _work(self) -> None:
        self._local.pool = self
        timeout = -1.0 if self.idle_timeout is None else self.idle_timeout
        lock = self._lock
        pending = self._pending
        parker = threading.Lock()
        parker.acquire()
        while True:
            task: Task | None = None
            lock.acquire()  # not ``with``: see "Locks" in the module's docstring
            try:
                if pending:
                    task = pending.popleft()
                else:
                    self._awake -= 1
                    if self._shut_down:
                        self._threads.remove(threading.current_thread())
                        return
                    self._parked.append(parker)
            finally:
                lock.release()
            if task is None:
                if parker.acquire(timeout=timeout):
                    continue
                with lock:  # the park timed out: leave, unless a submitter woke us meanwhile
                    if parker in self._parked:
                        self._parked.remove(parker)
                        self._threads.remove(threading.current_thread())
                        return
                parker.acquire()  # woken just as the wait timed out: take the wake-up given
                continue
            fn, args = task
            try:
                fn(*args)
            except Exception:
                # Tasks guard their listeners; this is a bug in VestesPy, not in an app.
                logger.exception("worker task %r raised", fn)

    def load(self) -> tuple[int, int, int]:
        """The threads, those busy (not parked), and the tasks waiting for a thread, read
        together under the pool's lock (any thread; for the server's stats)."""
        with self._lock:
            threads = len(self._threads)
            return threads, threads - len(self._parked), len(self._pending)

    def in_worker_thread(self) -> bool:
        """Whether the caller is one of this pool's threads."""
        return getattr(self._local, "pool", None) is self

    def strand(self) -> Strand | InlineStrand:
        """Return a new serial queue for one connection."""
        if self.max_workers == 0:
            return InlineStrand()
        return Strand(self)

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new tasks; the threads run the tasks already queued, then exit.

        The queued tasks run rather than being dropped: they are connections' last events
        (a stopping server closes its connections, and each posts ``"close"``), which
        listeners are promised once per request; and a burst of them may be waiting for the
        awake threads (see the class's docstring).
        """
        with self._lock:
            self._shut_down = True
            threads = list(self._threads)
            parked, self._parked = self._parked, []
            self._awake += len(parked)
        for parker in parked:
            parker.release()  # each takes what is queued, then finds the pool shut down
        if wait:
            current = threading.current_thread()
            for thread in threads:
                if thread is not current:
                    thread.join()
