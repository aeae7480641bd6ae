"""One application call: ``start_response``, ``write()``, and the result sent as a response.

Theory of operation: the head waits for the first non-empty piece of the body (PEP 3333), so
that an application may still call ``start_response`` again with ``exc_info`` until then. A
list or tuple is sent with ``Response.send_all``; an iterable with ``send_stream`` when the
application set ``Content-Length`` (a body that comes up short or runs over closes the
connection), else ``send_chunked`` (chunked on HTTP/1.1, close-delimited on HTTP/1.0), pulled
on the calling thread with the server's backpressure; a ``wsgi.file_wrapper`` around a
regular file goes to ``Response.send_file`` (the kernel's sendfile). ``write()`` pushes
pieces through a one-piece hand-off (:class:`Pusher`) to a thread that runs ``send_stream``
or ``send_chunked``, since those pull from an iterable. A :class:`Call` is used by one thread at
a time: the strand or an application thread, never both.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._header_fields import headers_from_triples
from .._mypyc import mypyc_attr
from ..errors import BadRequest, ClientDisconnected, ResponseAlreadyStarted
from ..headers import Headers
from ._input import ErrorStream
from ._types import Environ, WriteCallable

if TYPE_CHECKING:
    from .._pool import WorkerPool
    from ..request import Request
    from ..response import Response
    from ._types import WSGIApplication

__all__ = ["Call", "FileWrapper", "HeaderError", "Pusher"]

logger: logging.Logger = logging.getLogger("vestespy.wsgi")

# Hop-by-hop fields are the server's business (PEP 3333); Connection is let through so that
# an application can ask for the connection to close after its response.
_HOP_BY_HOP = frozenset({"keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})


class HeaderError(ValueError):
    """A header field from the application that cannot be sent: the message names it.

    Raised by ``start_response``, so before anything was sent: the client gets a 500 and the
    log one line (no traceback: the field, not the code path, is what needs fixing).
    """


def _content_length(value: str, previous: str | None) -> str:
    """Check an application's ``Content-Length`` against the one it gave before, if any.

    Raises:
        HeaderError: It is not a decimal number, or differs from ``previous`` (RFC 9110 8.6:
            a message with two different lengths cannot be framed).
    """
    text = value.strip(" \t")
    # Digits only: int() would also take "+5", "5_0" and non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise HeaderError(f"invalid Content-Length from the application: {value!r}")
    if previous is not None and int(previous) != int(text):
        raise HeaderError(
            f"conflicting Content-Length values from the application: {previous!r} and {text!r}"
        )
    return text


#: The kinds of header name start_response tells apart (:func:`_name_kind`).
_ORDINARY, _CONTENT_LENGTH, _HOP = 0, 1, 2
#: Header name as the application spells it -> its kind; filled as names are seen, bounded.
_NAME_KINDS: dict[str, int] = {}
#: Status line -> (code, reason phrase); filled as statuses are seen, bounded.
_STATUSES: dict[str, tuple[int, str]] = {}
_MAX_CACHED = 512


def _name_kind(name: str) -> int:
    """Whether ``name`` is Content-Length, hop-by-hop or neither; cached for the next time."""
    kind = _ORDINARY
    if len(name) < 18:  # longer than any name below: no need to lower-case it
        lower = name.lower()
        if lower == "content-length":
            kind = _CONTENT_LENGTH
        elif lower in _HOP_BY_HOP:
            kind = _HOP
    if len(_NAME_KINDS) < _MAX_CACHED:  # an application inventing names cannot grow it
        _NAME_KINDS[name] = kind
    return kind


def _parse_status(status: object) -> tuple[int, str]:
    """Check a status line (``"200 OK"``) and split it; cache it for the next time.

    Raises:
        TypeError: It is not a str.
        ValueError: It does not start with a 3-digit code.
    """
    if not isinstance(status, str):
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    code, _, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"the status must start with a 3-digit code: {status!r}")
    parsed = int(code), reason
    if type(status) is str and len(_STATUSES) < _MAX_CACHED:
        _STATUSES[status] = parsed
    return parsed


# Public: an application may subclass it (mypyc allows that only when asked).
@mypyc_attr(allow_interpreted_subclasses=True)
class FileWrapper:
    """``wsgi.file_wrapper``: iterate over a file in blocks, closing it with the response.

    Returned by the application (after ``start_response``), a wrapped regular file is sent
    with :meth:`vestespy.Response.send_file`: by the kernel's ``sendfile`` on plain TCP, read
    in blocks over TLS, with ``Content-Length`` (the file's size from its current position,
    or the application's ``Content-Length`` if smaller; a larger one is answered with a 500,
    as nothing was sent). Any other file-like object is iterated in blocks. ``blksize`` is
    honoured as a minimum: blocks of 64 KiB move a file several times faster than the 8 KiB
    of PEP 3333's example.

    Args:
        filelike: An object with ``read(size)``; ``close()`` is called if it has one.
        blksize: The size of each block read.
    """

    __slots__ = ("blksize", "filelike")

    # Any: any file-like object; only read() is required, fileno/tell/close are probed.
    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike: Any = filelike  # Any: as the argument
        self.blksize: int = max(blksize, 64 * 1024)

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        size = self.blksize
        while True:
            data = read(size)
            if not data:
                return
            yield data

    def length(self) -> int | None:
        """The bytes left in a regular file from its position, or None if unknown."""
        try:
            status = os.fstat(self.filelike.fileno())
            position = self.filelike.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        return max(0, status.st_size - int(position))

    def close(self) -> None:
        """Close the file."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def _file_wrapper(result: Iterable[bytes]) -> FileWrapper | None:
    """The :class:`FileWrapper` the application returned, if it did; also when wsgiref's
    validator wraps it (its ``IteratorWrapper`` keeps it as ``original_iterator``), so that
    a validated application is served as it would be without the validator."""
    if type(result) is FileWrapper:
        return result
    if type(result).__name__ != "IteratorWrapper":
        return None  # no lookup that fails (compiled, it raises and clears an AttributeError)
    original = getattr(result, "original_iterator", None)
    return original if type(original) is FileWrapper else None


class Pusher:
    """The ``write()`` hand-off: the application pushes pieces, a sender thread pulls them.

    One piece at a time: ``push`` waits while the previous piece is still unclaimed, and the
    sender claims the next only once it has written the last (with the server's
    backpressure), so a fast ``write()`` loop waits for the client.
    """

    __slots__ = ("_cond", "_done", "_error", "_finished", "_item")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item: bytes | None = None
        self._done = False  # no more pieces
        self._finished = False  # the sender returned
        self._error: BaseException | None = None  # what the sender raised

    # -- the application's thread ---------------------------------------------------------------

    def push(self, data: bytes) -> None:
        with self._cond:
            while self._item is not None and not self._finished:
                self._cond.wait()
            if self._finished:
                if self._error is None:
                    return  # a HEAD response: the body is not sent
                raise ClientDisconnected.closed_mid_response() from self._error
            self._item = data
            self._cond.notify_all()

    def end(self, error: BaseException | None = None) -> BaseException | None:
        """Mark the last piece (or fail the body with ``error``); wait for the sender."""
        with self._cond:
            self._done = True
            if error is not None and self._error is None:
                self._error = error
            self._cond.notify_all()
            while not self._finished:
                self._cond.wait()
            return self._error

    # -- the sender thread ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        cond = self._cond
        while True:
            with cond:
                while self._item is None and not self._done:
                    cond.wait()
                item = self._item
                if item is None:
                    # A piece claimed first: the head always leaves with the first piece, so
                    # that a failure closes the connection rather than leaving it unanswered.
                    if self._error is not None:
                        raise self._error
                    return
                self._item = None
                cond.notify_all()
            yield item

    def run(self, send: Callable[[Iterable[bytes]], None]) -> None:
        try:
            send(self)
        except BaseException as exc:
            with self._cond:
                if self._error is None:
                    self._error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()


def _checked_exc_info(exc_info: object) -> tuple[BaseException, TracebackType | None] | None:
    """The exception and traceback of a ``start_response`` ``exc_info`` (``sys.exc_info()``).

    Returns None for ``(None, None, None)``, what ``sys.exc_info()`` gives outside an except.

    Raises:
        TypeError: ``exc_info`` is not a ``(type, exception, traceback)`` triple.
    """
    if type(exc_info) is tuple and len(exc_info) == 3:
        error = exc_info[1]
        tb = exc_info[2]
        if error is None:
            return None
        if isinstance(error, BaseException) and (tb is None or isinstance(tb, TracebackType)):
            return error, tb
    raise TypeError(
        f"start_response's exc_info must be sys.exc_info() (a triple), not {exc_info!r}"
    )


class Call:
    """One application call: ``start_response``, ``write`` and sending the result."""

    __slots__ = (
        "app",
        "debug",
        "headers",
        "length",
        "pusher",
        "reason",
        "req",
        "res",
        "sending",
        "status",
        "threads",
    )

    def __init__(
        self,
        app: WSGIApplication,
        threads: WorkerPool,
        debug: bool,
        req: Request,
        res: Response,
    ) -> None:
        self.app = app
        self.threads = threads
        self.debug = debug
        self.req = req
        self.res = res
        self.status: int | None = None
        self.reason = ""
        self.headers: Sequence[tuple[str, str]] = []
        self.length: str | None = None  # the application's Content-Length, checked
        self.pusher: Pusher | None = None
        self.sending = False  # the returned iterable's response has been handed to res

    # The arguments an application gives are typed wider than PEP 3333's (object, Sequence):
    # compiled by mypyc, a narrower type would be checked on entry with mypyc's own TypeError,
    # not the checks below: a tuple of headers (which the pure build takes) refused, and an
    # exc_info of another shape refused with mypyc's message (the pure build took a list).
    def start_response(
        self, status: object, headers: Sequence[tuple[str, str]], exc_info: object = None
    ) -> WriteCallable:
        if exc_info is not None:
            try:
                caught = _checked_exc_info(exc_info)
                if caught is not None and (self.pusher is not None or self.sending):
                    raise caught[0].with_traceback(caught[1])
            finally:
                exc_info = caught = None  # no reference cycle through the frame
        elif self.status is not None:
            raise RuntimeError("start_response was called again without exc_info")
        parsed = _STATUSES.get(status) if type(status) is str else None
        if parsed is None:
            parsed = _parse_status(status)
        fields: Sequence[object] = headers  # checked: applications get this wrong
        length = None
        kinds = _NAME_KINDS
        for field in fields:
            if type(field) is not tuple or len(field) != 2:
                raise TypeError(f"a header must be a (name, value) tuple, not {field!r}")
            name, value = field
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"header names and values must be str: {field!r}")
            kind = kinds.get(name)
            if kind is None:
                kind = _name_kind(name)
            if kind:
                if kind != _CONTENT_LENGTH:
                    raise HeaderError(f"{name!r} is a hop-by-hop header, set by the server")
                if length is None and value.isdigit() and value.isascii():
                    length = value  # the common case, checked without a call
                else:
                    length = _content_length(value, length)
        self.status, self.reason = parsed
        self.length = length
        self.headers = headers
        return self.write

    def write(self, data: object) -> None:  # object: see start_response
        if self.status is None:
            raise RuntimeError("write() was called before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        pusher = self.pusher
        if pusher is None:
            if self.sending:
                raise RuntimeError("write() cannot be mixed into a returned iterable's body")
            if not data:
                return
            send = self._sender(self._prepare(None))
            pusher = self.pusher = Pusher()
            self.threads.submit(pusher.run, send)
        pusher.push(data)

    def _prepare(self, known: int | None) -> int | None:
        """Put the status and headers on the response; return the Content-Length to send.

        Args:
            known: The body's length if the adapter knows it (a wrapped file), else None.
        """
        res = self.res
        assert self.status is not None
        res.status = self.status
        res.reason = self.reason or None
        # Field values have no leading or trailing whitespace (RFC 9110 5.5); some frameworks
        # leave a space (Django's Set-Cookie), which h11 would refuse. The triples are built
        # here in one pass, rather than pairs that Headers() would go over again.
        headers = headers_from_triples(
            [(name.lower(), name, value.strip(" \t")) for name, value in self.headers]
        )
        preset = res.headers
        if len(preset):
            # Fields the server put on the response before the application ran
            # (response_headers, echo_request_id): kept unless the application sent its own.
            own = {name.lower() for name, _ in self.headers}
            for name, field in preset:
                if name.lower() not in own:
                    headers.add(name, field)
        res.headers = headers
        value = self.length
        if value is None:
            return known
        return int(value)  # digits only: start_response checked it

    def _sender(self, length: int | None) -> Callable[[Iterable[bytes]], None]:
        res = self.res
        if length is None:
            return res.send_chunked
        return lambda stream: res.send_stream(stream, length)

    def run(self, environ: Environ) -> None:
        """Call the application and send what it returns; never raises."""
        result: Iterable[bytes] | None = None
        errors: ErrorStream = environ["wsgi.errors"]
        try:
            result = self.app(environ, self.start_response)
            if (
                type(result) is list
                and len(result) == 1
                and self.status is not None
                and self.pusher is None
            ):
                self._send_whole(result[0])  # the common case, without _respond's questions
            else:
                self._respond(result)
        except Exception as exc:
            self._fail(exc)
        finally:
            # A list or tuple has no close(): no lookup, which compiled would raise and clear
            # an AttributeError on the common result.
            kind = type(result)
            close = None if kind is list or kind is tuple else getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    self._log(exc, "close() of the response iterable")
            if errors.partial:  # some thread has a partial line: this one's, if any, goes
                errors.flush()

    def _respond(self, result: Iterable[bytes]) -> None:
        if self.pusher is not None:
            self._push_rest(iter(result))
            return
        res = self.res
        if type(result) is list or type(result) is tuple:
            # The common case: the whole body at once, start_response already called.
            if self.status is None:
                raise RuntimeError("the application returned without calling start_response")
            count = len(result)
            body = result[0] if count == 1 else b"".join(result) if count else b""
            self._send_whole(body)
            return
        wrapper = _file_wrapper(result)
        known = None
        if wrapper is not None:
            # A wrapped regular file is sent with its length, taken before the first read,
            # and by the kernel (Response.send_file) once start_response has been called.
            known = wrapper.length()
            if known is not None and self.status is not None:
                length = self._prepare(known)
                self.sending = True
                res.send_file(wrapper.filelike, length)
                return
        iterator = iter(result)
        first = b""
        for piece in iterator:
            if self._pushing():
                self._push_rest(chain((piece,), iterator))
                return
            if piece:
                if type(piece) is not bytes:
                    # A str body (a common slip) would otherwise go out UTF-8 encoded.
                    raise TypeError(f"the application yielded {type(piece).__name__}, not bytes")
                first = piece
                break
        else:
            if self._pushing():
                self._push_rest(iterator)
                return
            if self.status is None:
                raise RuntimeError("the application returned without calling start_response")
            self._send_whole(first)
            return
        if self.status is None:
            raise RuntimeError("the application yielded before calling start_response")
        length = self._prepare(known)
        self.sending = True
        stream = chain((first,), iterator)
        if length is None:
            res.send_chunked(stream)
        else:
            res.send_stream(stream, length)

    def _pushing(self) -> bool:
        """Whether the application has called write() (the iterable may have done it)."""
        return self.pusher is not None

    def _send_whole(self, body: bytes) -> None:
        if type(body) is not bytes:
            raise TypeError(f"the application yielded {type(body).__name__}, not bytes")
        length = self._prepare(None)
        self.sending = True
        if length is None and not body and self.res.request_method == "HEAD":
            # The application left the body of a HEAD response out, as it may (Werkzeug
            # returns an empty iterable), without saying its length: the head says what a GET
            # of unknown length would (chunked on HTTP/1.1), not a false Content-Length: 0.
            self.res.send_chunked(())
            return
        if length is None or length == len(body):
            self.res.send_all(body)
        else:
            # HEAD answered with the length of the body GET would send, or a wrong length
            # (which closes the connection rather than sending a message that lies).
            self.res.send_stream((body,), length)

    def _push_rest(self, iterator: Iterator[bytes]) -> None:
        pusher = self.pusher
        assert pusher is not None
        try:
            for piece in iterator:
                self.write(piece)
        except BaseException as exc:
            pusher.end(exc)
            raise
        error = pusher.end()
        if error is not None:
            raise error

    def _fail(self, exc: Exception) -> None:
        res = self.res
        if self.pusher is not None:
            # write() started a body: end it with the error, which closes the connection
            # (a no-op if _push_rest already did).
            self.pusher.end(exc)
        if isinstance(exc, ClientDisconnected | BadRequest):
            # The client left, or broke the protocol and was answered by the server.
            logger.debug("%s %s: %s", self.req.method, self.req.target, exc)
            return
        if isinstance(exc, HeaderError):
            logger.error("%s %s: %s", self.req.method, self.req.target, exc)
        else:
            self._log(exc, "the application")
        if res.headers_sent or self.pusher is not None or res.finished:
            return  # the response was cut short: the server closed the connection
        if self.debug:
            body = "".join(traceback.format_exception(exc))
        else:
            body = "500 Internal Server Error\n"
        res.status = 500
        res.reason = None
        res.headers = Headers(
            [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")]
        )
        try:
            res.send_all(body)
        except ResponseAlreadyStarted:
            # A body that ran over its length at once: the response closed the connection.
            pass
        except Exception as second:
            self._log(second, "the 500 response")

    def _log(self, exc: BaseException, what: str) -> None:
        logger.error("%s %s: %s raised", self.req.method, self.req.target, what, exc_info=exc)
