"""``wsgi.input`` and ``wsgi.errors``: the request body as a blocking stream, and a log stream.

Theory of operation: an :class:`InputStream` is a bounded hand-off between two threads. The
request's strand feeds it from ``"data"`` events (the producer) and the application reads it
on its own thread (the consumer). The producer waits while ``limit`` bytes are buffered, so a
slow application stalls the strand; the server then stops reading the socket once its own
``max_body_buffer`` fills. The body in memory is bounded by both, never by its size. Once
the application is done (:meth:`InputStream.close`) the producer discards instead of waiting,
so that a body nobody reads never blocks the strand. One lock guards every field; the
``_readable`` and ``_writable`` conditions share it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

__all__ = ["EMPTY_INPUT", "EmptyInput", "ErrorStream", "InputStream"]


class InputStream:
    """The streaming ``wsgi.input`` of one request whose body arrives while the app runs.

    ``read(n)`` blocks until ``n`` bytes or the end of the body are there; reading past the
    end returns ``b""``. When the client goes away mid-body, or breaks the protocol, reads
    raise the error the server reported (:class:`~vestespy.ClientDisconnected` or
    :class:`~vestespy.BadRequest`).

    Args:
        limit: Bytes buffered before the producer waits.
        on_first_read: Called (once, on the reading thread) before the first read waits for
            data: the adapter sends ``100 Continue`` from it.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_closed",
        "_eof",
        "_error",
        "_lock",
        "_offset",
        "_on_first_read",
        "_readable",
        "_writable",
        "limit",
    )

    def __init__(self, limit: int, on_first_read: Callable[[], object] | None = None) -> None:
        self.limit: int = limit
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._writable = threading.Condition(self._lock)
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of _chunks[0] already read
        self._buffered = 0  # unread bytes in _chunks
        self._eof = False
        self._error: Exception | None = None
        self._closed = False  # the application is done: the producer discards
        self._on_first_read = on_first_read

    # -- producer: the request's strand ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append a piece of body, waiting while the buffer is full (the strand)."""
        with self._lock:
            while self._buffered >= self.limit and not self._closed:
                self._writable.wait()
            if self._closed:
                return
            self._chunks.append(data)
            self._buffered += len(data)
            self._readable.notify()

    def on_data(self, _emitter: object, _req: object, _res: object, data: bytes) -> None:
        """The ``"data"`` listener."""
        self.feed(data)

    def on_end(self, _emitter: object, _req: object, _res: object) -> None:
        """The ``"end"`` listener: reads past what is buffered return ``b""``."""
        with self._lock:
            self._eof = True
            self._readable.notify_all()

    def on_error(self, _emitter: object, _req: object, _res: object, error: Exception) -> None:
        """The ``"error"`` listener: the next read that needs more data raises ``error``."""
        with self._lock:
            self._error = error
            self._readable.notify_all()

    # -- the adapter ----------------------------------------------------------------------------

    def close(self) -> None:
        """Forget the buffer and let the producer discard from now on (any thread).

        Called by the adapter once the application is done; applications must not call it
        (PEP 3333), and :class:`wsgiref.validate.validator` checks that they do not.
        """
        with self._lock:
            self._closed = True
            self._chunks.clear()
            self._buffered = 0
            self._writable.notify_all()
            self._readable.notify_all()

    # -- consumer: the application's thread -----------------------------------------------------

    def _wait_locked(self) -> bool:
        """Wait until bytes are buffered; return False at the end of the body."""
        while not self._buffered:
            if self._eof or self._closed:
                return False
            if self._error is not None:
                raise self._error
            self._readable.wait()
        return True

    def _take_locked(self, size: int) -> bytes:
        """Remove and return up to ``size`` buffered bytes from the first chunk."""
        chunk = self._chunks[0]
        offset = self._offset
        left = len(chunk) - offset
        if size >= left:
            self._chunks.popleft()
            self._offset = 0
            data = chunk[offset:] if offset else chunk
        else:
            self._offset = offset + size
            data = chunk[offset : offset + size]
        self._buffered -= len(data)
        if self._buffered < self.limit:
            self._writable.notify()
        return data

    def _first_read(self) -> None:
        hook = self._on_first_read
        if hook is not None:
            self._on_first_read = None
            hook()

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (fewer only at the end of the body), or all that is left.

        Args:
            size: The number of bytes; None or negative reads to the end.
        """
        if self._on_first_read is not None:
            self._first_read()
        parts: list[bytes] = []
        want = -1 if size is None or size < 0 else size
        with self._lock:
            while want and self._wait_locked():
                data = self._take_locked(want if want > 0 else self._buffered)
                parts.append(data)
                if want > 0:
                    want -= len(data)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, up to and including ``b"\\n"``, or at most ``size`` bytes."""
        if self._on_first_read is not None:
            self._first_read()
        parts: list[bytes] = []
        want = -1 if size is None or size < 0 else size
        with self._lock:
            while want and self._wait_locked():
                chunk = self._chunks[0]
                end = chunk.find(b"\n", self._offset)
                take = len(chunk) - self._offset if end < 0 else end + 1 - self._offset
                if 0 < want < take:
                    take = want
                data = self._take_locked(take)
                parts.append(data)
                if want > 0:
                    want -= len(data)
                if data[-1:] == b"\n":
                    break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end of the body, or until they total ``hint`` bytes or more."""
        lines: list[bytes] = []
        total = 0
        limit = -1 if hint is None or hint <= 0 else hint
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < limit <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the lines of the body."""
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self) -> bool:
        """Return True: the stream is read-only (for code that checks, as ``io`` does)."""
        return True


class EmptyInput:
    """The ``wsgi.input`` of a request without a body: every read returns nothing.

    It holds no state (no position, no buffer, nothing to close), so one object serves every
    such request (:data:`EMPTY_INPUT`) instead of a new :class:`io.BytesIO` each time.
    """

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        """Return ``b""``: the body is empty."""
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        """Return ``b""``: the body is empty."""
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Return ``[]``: the body has no lines."""
        return []

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over no lines."""
        return iter(())

    def readable(self) -> bool:
        """Return True: the stream is read-only (for code that checks, as ``io`` does)."""
        return True

    def close(self) -> None:
        """Do nothing: the object is shared, and there is nothing to release."""


#: The one :class:`EmptyInput`.
EMPTY_INPUT = EmptyInput()


class ErrorStream:
    """``wsgi.errors``: text written by the application, logged one line at a time.

    Each complete line becomes one ``ERROR`` record on ``logger``; :meth:`flush` logs a
    partial line too. A partial line is kept per thread, so that one stream serves every
    request of an adapter: each application writes on the thread it runs on, and the adapter
    flushes that thread's partial line when the call ends.

    Args:
        logger: Where lines go.
    """

    __slots__ = ("_local", "_lock", "_logger", "partial")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._local = threading.local()
        self._lock = threading.Lock()
        #: How many threads hold a partial line: while none does, :meth:`flush` need not be
        #: called (the adapter reads it after every call). A thread always sees its own
        #: write's count, which is all the adapter needs.
        self.partial = 0

    def write(self, text: object) -> int:  # object: checked below (also when compiled)
        """Log every complete line of ``text`` (with what was written before it)."""
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        local = self._local
        before = getattr(local, "pending", "")
        *lines, pending = (before + text).split("\n")
        self._set_pending(local, before, pending)
        for line in lines:
            self._logger.error("%s", line)
        return len(text)

    def _set_pending(self, local: threading.local, before: str, pending: str) -> None:
        local.pending = pending
        if bool(before) != bool(pending):
            with self._lock:
                self.partial += 1 if pending else -1

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each string of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log this thread's pending partial line."""
        local = self._local
        line = getattr(local, "pending", "")
        if line:
            self._set_pending(local, line, "")
            self._logger.error("%s", line)
