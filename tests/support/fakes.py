"""Test doubles for testing a connection without sockets or a running loop.

In the spirit of httpcore's mock streams: a :class:`FakeSocket` whose reads come from a script
and whose writes go to a buffer the test reads, with a send window the test opens and closes;
a :class:`FakeLoop` that runs queued calls only when the test says so (the test's thread plays
the loop thread); a :class:`ManualStrand` whose listener tasks run only when, and on the thread,
the test chooses. Together they let a test force any interleaving of the loop thread and a
listener thread, one step at a time.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from vestespy import EventEmitter, Request, ServerOptions
from vestespy._backends import EVENT_READ, EVENT_WRITE
from vestespy._connection import Connection
from vestespy._context import ConnectionContext
from vestespy._loop import Timer

_fds = itertools.count(1000)


class FakeSocket:
    """A non-blocking socket: reads are scripted, writes are recorded.

    ``feed(b"...")`` makes bytes readable; ``feed(b"")`` is the client closing its side;
    ``feed(exc)`` makes the next read raise ``exc``. ``window`` bounds how many bytes the
    next sends may take (None: unbounded); ``send_error`` makes sends raise.
    """

    family = 2

    def __init__(self) -> None:
        self._fd = next(_fds)
        self._inbound: deque[bytes | BaseException] = deque()
        self.sent = bytearray()
        #: How many sends took bytes.
        self.sends = 0
        self.window: int | None = None
        self.send_error: BaseException | None = None
        self.shut_down_write = False
        self.closed = False

    def feed(self, item: bytes | BaseException) -> None:
        self._inbound.append(item)

    def fileno(self) -> int:
        return -1 if self.closed else self._fd

    def recv(self, size: int) -> bytes:
        if self.closed:
            raise OSError(9, "Bad file descriptor")
        if not self._inbound:
            raise BlockingIOError
        item = self._inbound.popleft()
        if isinstance(item, BaseException):
            raise item
        if len(item) > size:
            self._inbound.appendleft(item[size:])
            item = item[:size]
        return item

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise OSError(9, "Bad file descriptor")
        if self.send_error is not None:
            raise self.send_error
        data = bytes(data)
        if self.window is not None:
            if self.window == 0:
                raise BlockingIOError
            data = data[: self.window]
            self.window -= len(data)
        self.sent += data
        self.sends += 1
        return len(data)

    def shutdown(self, how: int) -> None:
        self.shut_down_write = True

    def close(self) -> None:
        self.closed = True

    def take_sent(self) -> bytes:
        data = bytes(self.sent)
        self.sent.clear()
        return data


class FakeBackend:
    """Records the interest registered for each file descriptor."""

    name = "fake"

    def __init__(self) -> None:
        self.interest: dict[int, int] = {}

    def register(self, fd: int, events: int, callback: Callable[[int], object]) -> None:
        assert fd not in self.interest, f"fd {fd} registered twice"
        self.interest[fd] = events

    def modify(self, fd: int, events: int, callback: Callable[[int], object]) -> None:
        assert fd in self.interest, f"fd {fd} modified but not registered"
        self.interest[fd] = events

    def unregister(self, fd: int) -> None:
        del self.interest[fd]


class FakeLoop:
    """The loop's interface to a connection; the thread that created it is the loop thread.

    Nothing runs until the test calls :meth:`run`, which runs queued calls and end-of-pass
    callbacks until none are left, as passes of the real loop do.
    """

    def __init__(self) -> None:
        self.backend = FakeBackend()
        self._thread = threading.get_ident()
        self._calls: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]]] = (
            queue.SimpleQueue()
        )
        self._end_of_pass: list[Callable[[], object]] = []
        #: Calls scheduled with call_later, in order; :meth:`fire_timers` runs them.
        self.timers: list[Timer] = []

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self._calls.put((callback, args))

    def at_end_of_pass(self, callback: Callable[[], object]) -> None:
        assert self.in_loop_thread()
        self._end_of_pass.append(callback)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Schedule as the loop does; the fake has no clock, so the timer's ``when`` is
        ``delay`` and it runs only when the test fires it."""
        assert self.in_loop_thread()
        timer = Timer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def fire_timers(self) -> int:
        """Run every timer not cancelled, as if their time had come; return how many ran."""
        timers, self.timers = self.timers, []
        due = [timer for timer in timers if not timer.cancelled]
        for timer in due:
            timer.callback(*timer.args)
        self.run()
        return len(due)

    def run(self) -> None:
        assert self.in_loop_thread()
        while not self._calls.empty() or self._end_of_pass:
            while not self._calls.empty():
                callback, args = self._calls.get()
                callback(*args)
            callbacks, self._end_of_pass = self._end_of_pass, []
            for end in callbacks:
                end()


class ManualStrand:
    """A strand whose tasks wait until the test runs them (see :class:`ListenerThread`).

    ``on_post`` lets a test act at the moment a task is posted, before it is queued.
    """

    def __init__(self) -> None:
        self.tasks: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self.on_post: Callable[[Callable[..., object]], None] | None = None
        self._lock = threading.Lock()

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        if self.on_post is not None:
            self.on_post(fn)
        with self._lock:
            self.tasks.append((fn, args))

    def run_next(self) -> str:
        """Run the oldest task on the calling thread; return its name."""
        with self._lock:
            fn, args = self.tasks.popleft()
        fn(*args)
        return getattr(fn, "__name__", repr(fn))

    def run_all(self) -> None:
        while self.tasks:
            self.run_next()


class ListenerThread:
    """A thread that plays a pool worker: it runs what it is given, one call at a time."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, daemon=True, name="fake-worker")
        self._thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                call()
            except BaseException as exc:
                self._done.put(exc)
            else:
                self._done.put(None)

    def run(self, call: Callable[[], object], timeout: float = 10) -> None:
        """Run ``call`` on the thread and wait until it returns; re-raise what it raised."""
        self._calls.put(call)
        error = self._done.get(timeout=timeout)
        if error is not None:
            raise error

    def start(self, call: Callable[[], object]) -> None:
        """Run ``call`` on the thread without waiting; :meth:`wait` collects it."""
        self._calls.put(call)

    def wait(self, timeout: float = 10) -> None:
        error = self._done.get(timeout=timeout)
        if error is not None:
            raise error

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join(10)


class Harness:
    """A connection on a fake socket and a fake loop, with a server-like emitter.

    Args:
        inline: Run listeners on the loop thread (``max_workers=0``) instead of a
            :class:`ManualStrand`.
        **options: :class:`~vestespy.ServerOptions` fields.
    """

    def __init__(self, *, inline: bool = False, **options: Any) -> None:
        self.loop = FakeLoop()
        self.sock = FakeSocket()
        self.server: EventEmitter[str] = EventEmitter()
        self.forgotten: list[Connection] = []
        self.strand: ManualStrand | None = None if inline else ManualStrand()
        if inline:
            from vestespy._pool import InlineStrand

            new_strand: Callable[[], Any] = InlineStrand
        else:
            strand = self.strand
            new_strand = lambda: strand  # noqa: E731
        self.context = ConnectionContext(
            loop=self.loop,  # type: ignore[arg-type]
            options=ServerOptions(**options),
            handler=Request,
            debug=False,
            inline=inline,
            new_strand=new_strand,
            emit_request=self.server.emit,
            forget=self.forgotten.append,
        )
        self.connection = Connection(self.context, self.sock, ("127.0.0.1", 5555))  # type: ignore[arg-type]

    @property
    def interest(self) -> int:
        """The events the connection watches for (0 once unregistered)."""
        return self.loop.backend.interest.get(self.sock._fd, 0)

    def receive(self, data: bytes | BaseException) -> None:
        """The client sends ``data``; the loop reads it and runs what it queued."""
        self.sock.feed(data)
        self.connection.on_ready(EVENT_READ)
        self.loop.run()

    def writable(self) -> None:
        """The backend reports the socket writable; the loop runs what it queued."""
        self.connection.on_ready(EVENT_WRITE)
        self.loop.run()


__all__ = [
    "EVENT_READ",
    "EVENT_WRITE",
    "FakeLoop",
    "FakeSocket",
    "Harness",
    "ListenerThread",
    "ManualStrand",
]
