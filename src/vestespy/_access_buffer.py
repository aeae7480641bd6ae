"""The command's access log writer: lines kept in memory and written to a descriptor in batches.

Theory of operation: going through :mod:`logging` costs a ``LogRecord``, the handler's lock,
a ``write`` and a ``flush`` system call per response, which halved the command's hello
throughput. :class:`BufferedAccessLog` is the hook the command installs instead when the
``vestespy.access`` logger is as the command configured it (see
:func:`command_access_fd`): it formats the line with
:class:`~vestespy.access_log.AccessLogFormatter` and appends it to a :class:`LineWriter`,
which writes whole lines with :func:`os.write`:

* when the loop has nothing left to do for now (:meth:`EventLoop.when_idle
  <vestespy._loop.EventLoop.when_idle>`: no pool thread awake, no timer due within a few
  milliseconds), so that a line is written within a loop pass of a quiet moment, while a
  busy server writes a batch only when the buffer fills or the interval ends. The first line
  of a batch arranges it: on the loop thread directly, from a pool thread through
  :meth:`EventLoop.call_soon_lazy <vestespy._loop.EventLoop.call_soon_lazy>`, which wakes
  the loop only if it waits for longer (while listeners run on the pool it passes every 2 ms
  anyway). Measured on the command's hello (compiled, 50 connections): a flush at the end of
  each pass a batch began in, woken by ``call_soon``, cost a ``write`` per 9 responses and a
  wake-up (a ``send``, a ``recv`` and a loop pass) per batch, and the loop thread's writes
  handed the GIL to the pool thread and back;
* when the buffer holds ``buffer_size`` bytes, by the thread that filled it;
* at least once every ``interval`` seconds: a loop timer armed with each batch (without a
  loop, :meth:`LineWriter.add` checks the batch's age itself);
* when the worker stops (a clean stop, a drain on SIGTERM, the old workers of a reload):
  :meth:`BufferedAccessLog.close` in the worker's exit path, after the server has closed and
  its pool threads have finished.

Lines from several worker processes share one descriptor. A write to a pipe, FIFO, terminal
or socket of at most ``PIPE_BUF`` bytes is atomic, so batches to those are cut at line
boundaries into writes of at most ``PIPE_BUF`` bytes; a regular file (the offset is updated
atomically with each write) takes a batch in one write. A line longer than ``PIPE_BUF`` is
written alone. A partial write is completed at once (a line is never left cut), ``EINTR`` is
retried, and ``EAGAIN`` (a descriptor left non-blocking by whoever started us) waits until it
is writable, as a blocking descriptor would. A descriptor that fails (the reader of the pipe
is gone, the disk is full) loses the batch: the lines are counted in
:attr:`LineWriter.dropped` and a warning on ``vestespy.error`` says how many, at most once a
minute.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._access_handler import CommandAccessHandler
from .access_log import AccessLogFormatter, WebSocketCounts, websocket_line

if TYPE_CHECKING:
    from ._loop import EventLoop, Timer
    from .request import Request

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "FLUSH_INTERVAL",
    "PIPE_BUF",
    "BufferedAccessLog",
    "CommandAccessHandler",
    "LineWriter",
    "command_access_fd",
]

logger: logging.Logger = logging.getLogger("vestespy.error")

#: The bytes a write to a pipe is atomic up to (POSIX: at least 512; Linux: 4096).
PIPE_BUF: int = getattr(select, "PIPE_BUF", 512)
#: The buffer the command keeps by default (``--access-log-buffer``).
DEFAULT_BUFFER_SIZE = 64 * 1024
#: The longest a line waits in the buffer, in seconds.
FLUSH_INTERVAL = 1.0
#: The least time between two warnings about dropped lines, in seconds.
_WARN_INTERVAL = 60.0


def atomic_write_limit(fd: int) -> int | None:
    """The most bytes one write to ``fd`` may hold so that writers never interleave.

    Returns:
        ``PIPE_BUF`` for pipes, FIFOs, terminals and sockets; None (no limit) for a regular
        file, where each write lands whole at the shared offset.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return PIPE_BUF
    return None if stat.S_ISREG(mode) else PIPE_BUF


def _wait_writable(fd: int) -> None:
    """Block until ``fd`` can be written (after ``EAGAIN`` on a non-blocking descriptor)."""
    select.select([], [fd], [], FLUSH_INTERVAL)


class LineWriter:
    """Whole lines to a file descriptor, in batches; :meth:`add` and :meth:`flush` are thread-safe.

    Args:
        fd: The descriptor (not closed here).
        buffer_size: Write once this many bytes are buffered; 0 writes each line at once.
        interval: A line added this many seconds after its batch began flushes the batch.
        write_limit: The most bytes per write (cut at line boundaries), None for no limit;
            -1 (the default): found from the descriptor (:func:`atomic_write_limit`).
        write: :func:`os.write`, or a fake for tests.
        wait_writable: Called after ``EAGAIN`` before writing again.
        clock: :func:`time.monotonic`, or a fake for tests.
    """

    def __init__(
        self,
        fd: int,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        *,
        interval: float = FLUSH_INTERVAL,
        write_limit: int | None = -1,
        write: Callable[[int, memoryview], int] = os.write,
        wait_writable: Callable[[int], object] = _wait_writable,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fd = fd
        self.buffer_size = buffer_size
        self.interval = interval
        #: The most bytes per write, or None.
        self.write_limit: int | None = atomic_write_limit(fd) if write_limit == -1 else write_limit
        #: Whether :meth:`add` writes a batch older than ``interval`` itself; off when a loop
        #: timer does it (:meth:`BufferedAccessLog.attach`).
        self.timed = True
        #: Lines lost because the descriptor failed.
        self.dropped = 0
        #: Write system calls made.
        self.writes = 0
        self._write = write
        self._wait_writable = wait_writable
        self._clock = clock
        # _lock guards the buffer; _write_lock keeps batches in order (taken before _lock).
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._lines: list[str] = []
        self._size = 0
        self._batch_started = 0.0
        self._warned_at: float | None = None
        self._dropped_unreported = 0
        self._failure: OSError | None = None

    @property
    def pending(self) -> int:
        """The lines buffered and not yet written."""
        return len(self._lines)

    def add(self, line: str) -> bool:
        """Buffer one line (without its newline), or write it at once when unbuffered.

        Returns:
            Whether the line began a batch: the caller arranges for a :meth:`flush` soon.
        """
        if self.buffer_size <= 0:
            with self._write_lock:
                self._write_batch((line + "\n").encode("utf-8", "backslashreplace"))
            return False
        # acquire/release rather than "with": this runs once per response.
        lock = self._lock
        lock.acquire()
        lines = self._lines
        lines.append(line)
        self._size += len(line) + 1
        first = len(lines) == 1
        full = self._size >= self.buffer_size
        lock.release()
        if first:
            if self.timed:
                self._batch_started = self._clock()
            return True
        if full or (self.timed and self._clock() - self._batch_started >= self.interval):
            self.flush()
        return False

    def flush(self) -> None:
        """Write every buffered line, in writes of whole lines."""
        with self._write_lock:
            with self._lock:
                lines = self._lines
                if not lines:
                    return
                self._lines = []
                self._size = 0
            lines.append("")  # the last line's newline
            self._write_batch("\n".join(lines).encode("utf-8", "backslashreplace"))

    def _write_batch(self, data: bytes) -> None:
        """Write ``data`` (whole lines), cut at line boundaries to the write limit."""
        view = memoryview(data)
        limit = self.write_limit
        start, end = 0, len(data)
        while start < end:
            stop = end
            if limit is not None and end - start > limit:
                cut = data.rfind(b"\n", start, start + limit)
                if cut < 0:  # one line longer than the limit: written alone
                    cut = data.find(b"\n", start + limit)
                stop = end if cut < 0 else cut + 1
            written = self._write_all(view[start:stop])
            if written < stop - start:
                self._lost(data.count(b"\n", start + written) or 1)
                return
            start = stop

    def _write_all(self, chunk: memoryview) -> int:
        """Write all of ``chunk``; return the bytes written (fewer: the descriptor failed)."""
        done, size = 0, len(chunk)
        while done < size:
            self.writes += 1  # counted before: mypyc cannot "continue" in a try/finally
            try:
                done += self._write(self.fd, chunk[done:])
            except InterruptedError:
                pass
            except BlockingIOError:
                self._wait_writable(self.fd)
            except OSError as exc:
                self._failure = exc
                return done
        return done

    def _lost(self, count: int) -> None:
        """Count ``count`` lines lost to a failed write; warn at most once a minute."""
        self.dropped += count
        self._dropped_unreported += count
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < _WARN_INTERVAL:
            return
        self._warned_at = now
        lost, self._dropped_unreported = self._dropped_unreported, 0
        logger.warning(
            "access log: %d line%s lost: cannot write to file descriptor %d: %s",
            lost,
            "" if lost == 1 else "s",
            self.fd,
            self._failure,
        )


class BufferedAccessLog:
    """The command's access hook: a line per response into a :class:`LineWriter`.

    Args:
        formatter: Makes the line.
        writer: Buffers and writes it.
    """

    def __init__(self, formatter: AccessLogFormatter, writer: LineWriter) -> None:
        self._format = formatter.line
        self._writer = writer
        self._loop: EventLoop | None = None
        self._timer: Timer | None = None

    @property
    def writer(self) -> LineWriter:
        """The line writer."""
        return self._writer

    def attach(self, loop: EventLoop) -> None:
        """Flush on ``loop``: when it goes idle after a batch began, and by a timer.

        Call it before the loop runs, or on its thread.
        """
        self._loop = loop
        self._writer.timed = False  # the loop's timer sees to the interval

    def __call__(self, request: Request, status: int, bytes_sent: int, duration: float) -> None:
        """Buffer the line for one response (any thread)."""
        self._add(self._format(request, status, bytes_sent, duration))

    def websocket_closed(self, request: Request, duration: float, counts: WebSocketCounts) -> None:
        """Buffer the line of a WebSocket's end (any thread; see
        :func:`~vestespy.access_log.websocket_line`)."""
        self._add(websocket_line(self._format, request, duration, counts))

    def _add(self, line: str) -> None:
        if self._writer.add(line):
            loop = self._loop
            if loop is None:
                return
            if loop.in_loop_thread():
                self._schedule()
            else:
                loop.call_soon_lazy(self._schedule)

    def _schedule(self) -> None:
        """Flush once the loop goes idle, and arm the interval timer (loop thread)."""
        loop = self._loop
        if loop is None:  # pragma: no cover - scheduled only once attached
            return
        loop.when_idle(self._writer.flush)
        if self._timer is None:
            self._timer = loop.call_later(self._writer.interval, self._tick)

    def _tick(self) -> None:
        """The interval timer: flush what waits; keep ticking while lines come (loop thread)."""
        self._timer = None
        if self._writer.pending:
            self._writer.flush()
            loop = self._loop
            if loop is not None:
                self._timer = loop.call_later(self._writer.interval, self._tick)

    def close(self) -> None:
        """Write every buffered line; stop the timer (once the server has stopped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None
        self._writer.timed = True
        self._writer.flush()


def command_access_fd(access: logging.Logger | None = None) -> int | None:
    """The descriptor the access log may be written to directly, or None to use :mod:`logging`.

    Directly only when the ``vestespy.access`` logger is exactly as the command configured it:
    its one handler the command's own on a stream with a descriptor, no filters, INFO enabled,
    not propagating. A ``--log-config`` that names the logger, or a handler or filter added
    by the application, makes this None: the lines go through :mod:`logging` as configured.
    """
    access = access or logging.getLogger("vestespy.access")
    handlers = access.handlers
    if len(handlers) != 1 or type(handlers[0]) is not CommandAccessHandler:
        return None
    handler = handlers[0]
    if access.disabled or access.propagate or access.filters or handler.filters:
        return None
    if not access.isEnabledFor(logging.INFO) or handler.level > logging.INFO:
        return None
    stream = handler.stream
    try:
        stream.flush()
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if fd >= 0 else None
