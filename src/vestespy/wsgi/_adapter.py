"""The WSGI (PEP 3333) adapter: a ``"request"`` listener that runs a WSGI application.

Theory of operation, per request (all on the public API of Server, Request and Response):

* Where the application runs. A listener runs on the connection's strand, which also
  delivers the request's ``"data"`` events; an application that blocks reading
  ``wsgi.input`` there would wait for itself. So:

  - no body (no ``Content-Length`` or 0, no ``Transfer-Encoding``): the application runs at
    once in the ``"request"`` listener, on the strand;
  - a small body (``Content-Length`` up to ``buffer_size``, no ``Expect: 100-continue``):
    the body is collected on the strand and the application runs in the ``"end"`` listener,
    with the body in a :class:`io.BytesIO`. No thread hand-off for the common cases;
  - any other body (larger, chunked, or awaiting ``100 Continue``): the application runs on
    an :class:`~vestespy.wsgi._threads.AppThreads` thread and reads an
    :class:`~vestespy.wsgi._input.InputStream` that the strand feeds. The strand blocks when
    that input is full, which makes the server stop reading the socket (backpressure).

* ``100 Continue`` is sent when the application first reads ``wsgi.input``, never before.
  The server sends it as soon as a ``"data"`` or ``"end"`` listener is added, and a ``"data"``
  event with no listener is lost; so for such a request the ``"request"`` listener holds the
  strand (nothing of the body can be delivered meanwhile) until the application, started on
  its own thread, either reads (the listener then adds the input's listeners, which sends
  ``100 Continue``, and returns) or finishes without reading (it returns, and the server
  discards any body). This holds one pool worker while such an application runs.

* The response. Headers wait for the first non-empty piece of the body (PEP 3333), so an
  application may still call ``start_response`` again with ``exc_info`` until then. A list or
  tuple is sent with ``send_all``; an iterable with ``send_stream`` when the application set
  ``Content-Length`` (a body that comes up short or runs over closes the connection), else
  ``send_chunked`` (chunked on HTTP/1.1, close-delimited on HTTP/1.0), consumed on the
  application's thread with the server's backpressure. The ``write()`` callable pushes
  through a one-piece hand-off to a thread that runs ``send_stream`` or ``send_chunked``.

* Errors. An exception before anything was sent becomes a 500 (with the traceback when the
  server has ``debug=True``); after, the connection is closed. Either way it is logged on the
  ``vestespy.wsgi`` logger and the server goes on. The iterable's ``close()`` is always called.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes

from ..errors import BadRequest, ClientDisconnected, ResponseAlreadyStarted
from ..headers import Headers
from ._input import ErrorStream, InputStream
from ._threads import AppThreads

if TYPE_CHECKING:
    from ..request import Request
    from ..response import Response
    from ..server import Server

__all__ = [
    "Environ",
    "ExcInfo",
    "FileWrapper",
    "StartResponse",
    "WSGIAdapter",
    "WSGIApplication",
    "WriteCallable",
]

logger: logging.Logger = logging.getLogger("vestespy.wsgi")

#: A WSGI environ.
Environ = dict[str, Any]
#: What ``sys.exc_info()`` returns.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
#: The ``write()`` callable ``start_response`` returns.
WriteCallable = Callable[[bytes], object]


class StartResponse(Protocol):
    """The ``start_response`` callable given to a WSGI application."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = ..., /
    ) -> WriteCallable:
        """Set the status and headers; see PEP 3333."""


#: A WSGI application.
WSGIApplication = Callable[[Environ, StartResponse], Iterable[bytes]]

# Hop-by-hop fields are the server's business (PEP 3333); Connection is let through so that
# an application can ask for the connection to close after its response.
_HOP_BY_HOP = frozenset({"keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})

_INLINE_ERROR = (
    "a WSGI application blocks (it reads wsgi.input and writes with backpressure): run the "
    "server with max_workers >= 1, not inline (max_workers=0)"
)

# The most bytes a write() hands to its sender thread before it waits.
_PUSH_SLOTS = 1


class FileWrapper:
    """``wsgi.file_wrapper``: iterate over a file in blocks, closing it with the response.

    The adapter sends a wrapped regular file with ``Content-Length`` (its size from the
    current position) when the application sets none. ``blksize`` is honoured as a minimum:
    blocks of 64 KiB move a file several times faster than the 8 KiB of PEP 3333's example.

    Args:
        filelike: An object with ``read(size)``; ``close()`` is called if it has one.
        blksize: The size of each block read.
    """

    __slots__ = ("blksize", "filelike")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike: Any = filelike
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


class _Pusher:
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
                raise ClientDisconnected("the response could not be sent") from self._error
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


class _Call:
    """One application call: ``start_response``, ``write`` and sending the result."""

    __slots__ = (
        "adapter",
        "debug",
        "headers",
        "length",
        "pusher",
        "reason",
        "req",
        "res",
        "sending",
        "status",
    )

    def __init__(self, adapter: WSGIAdapter, debug: bool, req: Request, res: Response) -> None:
        self.adapter = adapter
        self.debug = debug
        self.req = req
        self.res = res
        self.status: int | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.length: str | None = None  # the application's Content-Length
        self.pusher: _Pusher | None = None
        self.sending = False  # the returned iterable's response has been handed to res

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> WriteCallable:
        if exc_info is not None:
            try:
                if self.pusher is not None or self.sending:
                    raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[union-attr]
            finally:
                exc_info = None  # no reference cycle through the frame
        elif self.status is not None:
            raise RuntimeError("start_response was called again without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"the status must be a str, not {type(status).__name__}")
        code, _, reason = status.partition(" ")
        if len(code) != 3 or not code.isdigit():
            raise ValueError(f"the status must start with a 3-digit code: {status!r}")
        fields: list[Any] = headers  # checked: applications get this wrong
        length = None
        for field in fields:
            if type(field) is not tuple or len(field) != 2:
                raise TypeError(f"a header must be a (name, value) tuple, not {field!r}")
            name, value = field
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"header names and values must be str: {field!r}")
            if len(name) < 18:
                lower = name.lower()
                if lower == "content-length":
                    length = value
                elif lower in _HOP_BY_HOP:
                    raise ValueError(f"{name!r} is a hop-by-hop header, set by the server")
        self.status = int(code)
        self.length = length
        self.reason = reason
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
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
            pusher = self.pusher = _Pusher()
            self.adapter._threads.submit(pusher.run, send)
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
        # leave a space (Django's Set-Cookie), which h11 would refuse.
        res.headers = Headers([(name, value.strip(" \t")) for name, value in self.headers])
        value = self.length
        if value is None:
            return known
        try:
            length = int(value)
        except ValueError:
            raise ValueError(f"invalid Content-Length from the application: {value!r}") from None
        if length < 0:
            raise ValueError(f"invalid Content-Length from the application: {value!r}")
        return length

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
            result = self.adapter.app(environ, self.start_response)
            self._respond(result)
        except Exception as exc:
            self._fail(exc)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    self._log(exc, "close() of the response iterable")
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
        # A wrapped regular file is sent with its length, taken before the first read.
        known = result.length() if type(result) is FileWrapper else None
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


class _ReadGate:
    """Tells the strand whether the application read its body (True) or finished (False)."""

    __slots__ = ("_event", "read")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.read = False

    def open(self) -> None:
        """The application's first read (its thread)."""
        self.read = True
        self._event.set()

    def close(self) -> None:
        """The application is done (its thread)."""
        self._event.set()

    def wait(self) -> bool:
        """Wait for either (the strand); return whether the application reads."""
        self._event.wait()
        return self.read


class WSGIAdapter:
    """A ``"request"`` listener that serves a WSGI (PEP 3333) application.

    Example:
        .. code-block:: python

            import vestespy
            from vestespy.wsgi import WSGIAdapter
            from myproject import app  # Flask, Django's get_wsgi_application(), ...

            server = vestespy.Server(("127.0.0.1", 8080), max_workers=16)
            server.on("request", WSGIAdapter(app))
            server.serve_forever()

    The server must run listeners on a pool (``max_workers`` >= 1): a request answered
    inline gets a 500 and the error is logged. See :doc:`/wsgi` for the environ, threads and
    streaming.

    Args:
        app: The WSGI application.
        script_name: The URL prefix the application is mounted at (``SCRIPT_NAME``), such as
            ``"/app"``; a request path that starts with it has it moved out of ``PATH_INFO``.
        url_scheme: ``wsgi.url_scheme``: ``"http"``, or ``"https"`` behind a TLS proxy.
        trusted_proxies: Client addresses (or ``"*"``) whose ``X-Forwarded-Proto`` sets
            ``wsgi.url_scheme`` and whose ``X-Forwarded-For`` sets ``REMOTE_ADDR``.
        multiprocess: ``wsgi.multiprocess``: True when several processes serve the app.
        buffer_size: Bodies of at most this many bytes (with ``Content-Length``) are read
            whole before the application runs; larger ones stream in as it reads.
        input_buffer: Bytes of a streaming body buffered ahead of the application; the
            server stops reading from the client above it (and its ``max_body_buffer``).

    Raises:
        ValueError: ``url_scheme`` is neither ``"http"`` nor ``"https"``, or ``script_name``
            does not start with ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        script_name: str = "",
        url_scheme: str = "http",
        trusted_proxies: Iterable[str] = (),
        multiprocess: bool = False,
        buffer_size: int = 64 * 1024,
        input_buffer: int = 256 * 1024,
    ) -> None:
        if url_scheme not in ("http", "https"):
            raise ValueError(f"url_scheme must be 'http' or 'https', not {url_scheme!r}")
        script_name = script_name.rstrip("/")
        if script_name and not script_name.startswith("/"):
            raise ValueError(f"script_name must start with '/': {script_name!r}")
        if buffer_size < 0 or input_buffer < 1:
            raise ValueError("buffer_size must be >= 0 and input_buffer >= 1")
        self.app: WSGIApplication = app
        self.script_name: str = script_name
        # PEP 3333 native strings hold bytes as Latin-1: the prefix as it appears in paths.
        self._script_bytes = script_name.encode("utf-8").decode("latin-1")
        self.url_scheme: str = url_scheme
        self.trusted_proxies: frozenset[str] = frozenset(trusted_proxies)
        self.multiprocess: bool = multiprocess
        self.buffer_size: int = buffer_size
        self.input_buffer: int = input_buffer
        self._threads = AppThreads()
        self._server_address: tuple[object, tuple[str, str]] = (None, ("", ""))
        # Host header -> (SERVER_NAME, SERVER_PORT): a server sees few distinct values.
        self._hosts: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"<WSGIAdapter {self.app!r} script_name={self.script_name!r}>"

    # -- the "request" listener (the strand) ----------------------------------------------------

    def __call__(self, server: Server, req: Request, res: Response) -> None:
        """Serve ``req`` with the application (the server calls this for each request).

        Raises:
            RuntimeError: The server runs listeners inline (``max_workers=0``).
        """
        if not server.max_workers:
            raise RuntimeError(_INLINE_ERROR)
        # The environ first: its keys answer the questions below without more header scans.
        environ = self.environ(server, req, None)
        length = environ.get("CONTENT_LENGTH")
        chunked = "HTTP_TRANSFER_ENCODING" in environ
        if not chunked and (length is None or length == "0"):
            environ["wsgi.input"] = io.BytesIO(b"")
            _Call(self, server.debug, req, res).run(environ)
            return
        expects_continue = "HTTP_EXPECT" in environ and req.http_version == "1.1"
        if not chunked and not expects_continue:
            try:
                small = int(length) <= self.buffer_size  # type: ignore[arg-type]
            except ValueError:
                small = False
            if small:
                parts: list[bytes] = []
                call = _Call(self, server.debug, req, res)

                def run_with_body(_e: object, _q: object, _r: object) -> None:
                    environ["wsgi.input"] = io.BytesIO(b"".join(parts))
                    call.run(environ)

                req.on("data", lambda _e, _q, _r, chunk: parts.append(chunk))
                req.on("end", run_with_body)
                return
        call = _Call(self, server.debug, req, res)
        if not expects_continue:
            stream = environ["wsgi.input"] = InputStream(self.input_buffer)
            self._listen(req, stream)
            self._threads.submit(self._run_streaming, call, environ, stream, None)
            return
        gate = _ReadGate()
        stream = environ["wsgi.input"] = InputStream(self.input_buffer, gate.open)
        self._threads.submit(self._run_streaming, call, environ, stream, gate)
        if gate.wait():
            self._listen(req, stream)  # sends 100 Continue

    @staticmethod
    def _listen(req: Request, stream: InputStream) -> None:
        req.on("data", stream.on_data)
        req.on("end", stream.on_end)
        req.on("error", stream.on_error)

    @staticmethod
    def _run_streaming(
        call: _Call, environ: Environ, stream: InputStream, gate: _ReadGate | None
    ) -> None:
        try:
            call.run(environ)
        finally:
            stream.close()
            if gate is not None:
                gate.close()

    # -- the environ ----------------------------------------------------------------------------

    def environ(self, server: Server, req: Request, stream: Any) -> Environ:
        """Build the PEP 3333 environ of ``req``, with ``stream`` as ``wsgi.input``.

        Args:
            server: The server that received the request.
            req: The request.
            stream: The ``wsgi.input`` object.

        Returns:
            The environ.
        """
        raw_path = req.raw_path
        # PATH_INFO: the percent-decoded bytes, as Latin-1 (PEP 3333 "bytes as native str").
        path = unquote_to_bytes(raw_path).decode("latin-1") if "%" in raw_path else raw_path
        script_name = self._script_bytes
        if script_name and (path == script_name or path.startswith(script_name + "/")):
            path = path[len(script_name) :]
        client = req.client_address
        if isinstance(client, tuple) and len(client) >= 2:
            remote_addr, remote_port = str(client[0]), str(client[1])
        else:
            remote_addr, remote_port = str(client or ""), ""
        environ: Environ = {
            "REQUEST_METHOD": req.method,
            "SCRIPT_NAME": script_name,
            "PATH_INFO": path,
            "QUERY_STRING": req.query,
            "RAW_URI": req.target,
            "REQUEST_URI": req.target,
            "SERVER_PROTOCOL": "HTTP/" + req.http_version,
            "REMOTE_ADDR": remote_addr,
            "REMOTE_PORT": remote_port,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self.url_scheme,
            "wsgi.input": stream,
            "wsgi.errors": ErrorStream(logger),
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
        }
        for name, value in req.headers:
            key = name.upper()
            if "_" in key:
                continue  # it could pass for a dash-named header after the translation
            key = key.replace("-", "_")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                environ[key] = value
                continue
            key = "HTTP_" + key
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                environ[key] = value
        # The stream always ends with the body, but the key is only set where CONTENT_LENGTH
        # cannot say where (a chunked body): Werkzeug tests for its presence, and without it
        # reads CONTENT_LENGTH bytes with read(size), as PEP 3333 has it, not read().
        if "HTTP_TRANSFER_ENCODING" in environ:
            environ["wsgi.input_terminated"] = True
        host = environ.get("HTTP_HOST")
        if host:
            hosts = self._hosts
            split = hosts.get(host)
            if split is None:
                if len(hosts) > 256:
                    hosts.clear()  # a client inventing Host values cannot grow it
                split = hosts[host] = _split_host(host, self.url_scheme)
            name, port = split
        else:
            name, port = self._address_of(server)
        environ["SERVER_NAME"] = name
        environ["SERVER_PORT"] = port
        if self.trusted_proxies and (
            remote_addr in self.trusted_proxies or "*" in self.trusted_proxies
        ):
            self._apply_forwarded(environ)
        return environ

    def _address_of(self, server: Server) -> tuple[str, str]:
        cached_server, address = self._server_address
        if cached_server is not server:
            host, port = server.address[:2]
            address = (str(host), str(port))
            self._server_address = (server, address)
        return address

    def _apply_forwarded(self, environ: Environ) -> None:
        proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if proto:
            scheme = proto.split(",")[0].strip().lower()
            if scheme in ("http", "https"):
                environ["wsgi.url_scheme"] = scheme
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded_for:
            # The nearest hop that is not a trusted proxy is the client.
            trust_all = "*" in self.trusted_proxies
            for address in reversed([a.strip() for a in forwarded_for.split(",")]):
                if address and (trust_all or address not in self.trusted_proxies):
                    environ["REMOTE_ADDR"] = address
                    environ["REMOTE_PORT"] = ""
                    break


def _split_host(host: str, scheme: str) -> tuple[str, str]:
    """Split a Host header into ``(SERVER_NAME, SERVER_PORT)``."""
    default = "443" if scheme == "https" else "80"
    if host.startswith("["):  # an IPv6 literal
        end = host.find("]")
        if end > 0:
            rest = host[end + 1 :]
            return host[1:end], rest[1:] if rest.startswith(":") and rest[1:] else default
        return host, default
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default
