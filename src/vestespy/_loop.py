"""The reactor: the one thread that owns every socket.

Theory of operation: :meth:`EventLoop.run` repeats one *pass*: wait on the backend (no longer
than the next timer, not at all if calls are queued), run the callbacks of ready file
descriptors, run the calls other threads queued, run due timers, then run the end-of-pass
hooks (connections flush their output there, so all responses made ready in one pass leave in
one ``send`` per connection). Before a wait longer than :data:`LAZY_DELAY` (nothing to do for
now) it runs the :meth:`EventLoop.when_idle` hooks (the access log writes its batch there).

Other threads talk to the loop only through :meth:`EventLoop.call_soon`, which appends to a
deque and writes one byte to a wake-up socketpair if the loop is not already due to wake, and
:meth:`EventLoop.call_soon_lazy`, which writes that byte only if the loop may wait longer than
:data:`LAZY_DELAY` (a call that can wait a few milliseconds, such as the access log's flush,
rides on the pass the loop makes anyway: while a listener runs on the pool, the pool's watcher
keeps the loop's waits to 2 ms). Everything else here is loop-thread only.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ._backends import EVENT_READ, Backend

__all__ = ["LAZY_DELAY", "EventLoop", "Timer"]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: The longest a call queued with :meth:`EventLoop.call_soon_lazy` waits for a pass, in
#: seconds: a wait bounded by this runs it after; a longer one is woken.
LAZY_DELAY: Final = 0.01


class Timer:
    """A call scheduled with :meth:`EventLoop.call_later`; :meth:`cancel` it to drop it."""

    __slots__ = ("args", "callback", "cancelled", "when")

    # Any: a callback's arguments are whatever the callback takes.
    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the call from happening (loop thread only)."""
        self.cancelled = True


class EventLoop:
    """A single-threaded reactor over a :class:`~vestespy._backends.Backend`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # Any: a callback's arguments are whatever the callback takes.
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_seq = itertools.count()
        self._end_of_pass: list[Callable[[], object]] = []
        self._when_idle: list[Callable[[], object]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        # Whether the loop waits, or is about to, for longer than LAZY_DELAY: a lazy call
        # wakes it then. The loop sets it before it looks at the queued calls a last time,
        # and a lazy caller reads it after queueing (under the GIL, one sees the other).
        self._waits_long = False
        self._stopping = False
        self._thread_id: int | None = None
        self._watcher: Callable[[float], float | None] | None = None
        backend.register(self._wake_r.fileno(), EVENT_READ, self._on_wake)

    # -- any thread ------------------------------------------------------------------------

    def in_loop_thread(self) -> bool:
        """Return whether the caller runs on the loop thread."""
        return threading.get_ident() == self._thread_id

    # Any: a callback's arguments are whatever the callback takes.
    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread soon (thread-safe, signal-safe)."""
        self._calls.append((callback, args))
        if not self._wake_pending and threading.get_ident() != self._thread_id:
            self.wake()

    # Any: a callback's arguments are whatever the callback takes.
    def call_soon_lazy(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread within about :data:`LAZY_DELAY` seconds,
        waking the loop only if it would wait longer (thread-safe)."""
        self._calls.append((callback, args))
        if self._waits_long and not self._wake_pending:
            self.wake()

    def wake(self) -> None:
        """Make a waiting :meth:`run` return from the backend (thread-safe)."""
        self._wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            # Full (the loop is already due to wake) or closed (the loop is gone).
            pass

    def stop(self) -> None:
        """Make :meth:`run` return after the current pass (thread-safe, signal-safe)."""
        self._stopping = True
        self.wake()

    # -- loop thread only ------------------------------------------------------------------

    # Any: a callback's arguments are whatever the callback takes.
    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        timer = Timer(time.monotonic() + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._timer_seq), timer))
        return timer

    def set_watcher(self, watcher: Callable[[float], float | None] | None) -> None:
        """Call ``watcher(now)`` before every wait for events (``now``: ``time.monotonic()``);
        it returns None or the seconds the wait may last at most (the listener pool's
        :meth:`~vestespy._pool.WorkerPool.watch`)."""
        self._watcher = watcher

    def at_end_of_pass(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` once at the end of the current pass."""
        self._end_of_pass.append(callback)

    def when_idle(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` once, before the next wait longer than :data:`LAZY_DELAY`: when
        nothing is left to do for now (no pool thread awake, no timer due soon)."""
        self._when_idle.append(callback)

    def run(self) -> None:
        """Run passes until :meth:`stop` is called."""
        self._thread_id = threading.get_ident()
        select = self.backend.select
        try:
            timers = self._timers
            while not self._stopping:
                # The timeout inline (a call per pass costs as much as the arithmetic). The
                # watcher only matters before a wait: a pass with calls queued does not wait.
                watcher = self._watcher
                if self._calls or self._end_of_pass:
                    timeout: float | None = 0
                elif timers or watcher is not None:
                    now = time.monotonic()
                    timeout = max(0.0, timers[0][0] - now) if timers else None
                    due = watcher(now) if watcher is not None else None
                    if due is not None and (timeout is None or due < timeout):
                        timeout = due
                else:
                    timeout = None
                if timeout is None or timeout > LAZY_DELAY:
                    if self._when_idle:
                        self._run_when_idle()
                    # Announced before the calls are looked at again: a lazy call queued
                    # before this is seen here, one queued after sees the flag and wakes us.
                    self._waits_long = True
                    if self._calls or self._end_of_pass:
                        timeout = 0
                ready = select(timeout)
                self._waits_long = False
                for callback, events in ready:
                    try:
                        callback(events)
                    except Exception:
                        logger.exception("error in I/O callback %r", callback)
                if self._calls:
                    self._run_calls()
                if timers and timers[0][0] <= time.monotonic():
                    self._run_timers()
                if self._end_of_pass:
                    self._run_end_of_pass()
            # One last round for what was queued after this pass's calls ran (a response
            # sent just before shutdown() deserves its flush).
            self._run_calls()
            self._run_end_of_pass()
        finally:
            self._thread_id = None
            self._stopping = False  # a stop is consumed by the run it ended

    def cancel_stop(self) -> None:
        """Forget a :meth:`stop` requested before :meth:`run` started."""
        self._stopping = False

    def close(self) -> None:
        """Release the wake-up socketpair and the backend."""
        self.backend.close()
        self._wake_r.close()
        self._wake_w.close()

    def _on_wake(self, events: int) -> None:
        # One read drains the usual single byte; a second read only when the first filled
        # its buffer (a read that finds nothing is a system call for nothing).
        try:
            while len(self._wake_r.recv(4096)) == 4096:
                pass
        except BlockingIOError:
            pass
        # Clear the flag only after draining: a byte written after the drain began may have
        # been drained too, so a call queued while the flag was still set must be run by this
        # pass. It is, because _run_calls runs after this callback and sees every call queued
        # before the flag cleared; a call queued after it writes a new byte.
        self._wake_pending = False

    def _run_calls(self) -> None:
        calls = self._calls
        # Only the calls queued so far: one queued by a call runs in the next pass.
        for _ in range(len(calls)):
            callback, args = calls.popleft()
            self._guarded(callback, args)

    def _run_timers(self) -> None:
        now = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled:
                self._guarded(timer.callback, timer.args)

    def _run_when_idle(self) -> None:
        callbacks, self._when_idle = self._when_idle, []
        for callback in callbacks:
            self._guarded(callback, ())

    def _run_end_of_pass(self) -> None:
        callbacks, self._end_of_pass = self._end_of_pass, []
        for callback in callbacks:
            self._guarded(callback, ())

    @staticmethod
    # Any: a callback's arguments are whatever the callback takes.
    def _guarded(callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            # A bug in one callback must not stop the loop that serves every client.
            logger.exception("error in event loop callback %r", callback)
