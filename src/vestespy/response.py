"""The public :class:`Response`: status, headers, and three ways to send a body.

Theory of operation: a response goes NEW -> STREAMING -> DONE, once. The head is built here
(status, the application's headers, ``Date``, ``Server`` and the framing header the method
chose) and handed to the connection with the first body bytes, so that a small response is one
buffer append. Bodies of streams are consumed on the calling thread; on a worker thread each
write waits while the connection's output buffer is above its high-water mark, and on the loop
thread (``max_workers=0``) the loop pulls the stream as the client reads instead, so that a slow
client never blocks the loop or grows memory.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from ._dates import http_date
from ._head import ResponseHead
from ._header_fields import header_triples
from ._mypyc import mypyc_attr
from ._segment import FileSegment
from .errors import ClientDisconnected, ResponseAlreadyStarted, StreamLengthError
from .headers import Headers

if TYPE_CHECKING:
    from ._channel import ResponseChannel

__all__ = ["Body", "Response", "StreamChunk"]

#: What a stream may yield: ``str`` is encoded as UTF-8.
StreamChunk = bytes | bytearray | memoryview | str
#: What :meth:`Response.send_all` accepts.
Body = bytes | bytearray | memoryview | str

_NEW, _STREAMING, _DONE = 0, 1, 2

# The rules h11 applies to the fields it is given to send, which it is told to skip because
# they are applied here, once, when the head is built: RFC 9110 5.1 (a name is a token) and
# 5.5 (a value has no NUL, CR, LF, VT or FF, and no leading or trailing whitespace).
# Each table maps the bytes a field may not hold to NUL and every other byte to itself, so
# that ``translate`` hands back the very same object (no copy) for a valid field and ``in``
# finds a NUL in one C pass: far cheaper than a regular expression or h11_mypyc's
# ``translate(None, allowed)``, which builds a 256-entry table on every call.
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_NAME_TABLE = bytes(b if b in _TOKEN and b else 0 for b in range(256))
_VALUE_TABLE = bytes(0 if b in (0x0A, 0x0B, 0x0C, 0x0D) else b for b in range(256))
_EDGE_WHITESPACE = (0x20, 0x09)

# Blocks read by send_file where the kernel cannot send the file (TLS, not a regular file).
_FILE_BLOCK = 64 * 1024


def _encode(chunk: StreamChunk) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a response body must be bytes or str, not {type(chunk).__name__}")


def _checked_field(name: str, value: str) -> tuple[bytes, bytes]:
    """Encode a header field, checked as h11 would check it (it is handed over as checked)."""
    raw_name = name.encode("ascii", "replace")  # "?" is no token character
    # find, not in: bytes.__contains__ raises and clears a TypeError per call (it first
    # tries its argument as an int), costlier than the whole check.
    if not raw_name or raw_name.translate(_NAME_TABLE).find(b"\x00") >= 0:
        raise ValueError(f"invalid header name {name!r}: it must be an RFC 9110 token")
    try:
        raw_value = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} has characters outside Latin-1: {value!r}") from None
    if raw_value and (
        raw_value.translate(_VALUE_TABLE).find(b"\x00") >= 0
        or raw_value[0] in _EDGE_WHITESPACE
        or raw_value[-1] in _EDGE_WHITESPACE
    ):
        raise ValueError(
            f"invalid value for header {name!r}: NUL, CR, LF, VT and FF are not allowed, "
            f"nor whitespace at either end: {value!r}"
        )
    return raw_name, raw_value


# Users may subclass it: mypyc must allow that when compiled.
@mypyc_attr(allow_interpreted_subclasses=True)
class Response:
    """The response to one :class:`~vestespy.Request`.

    Set :attr:`status` and headers, then send the body once with :meth:`send_all`,
    :meth:`send_stream` or :meth:`send_chunked`. Every method may be called from any thread.
    ``Date`` and ``Server`` headers are added unless set.

    A response to ``HEAD`` gets the head a ``GET`` would (``Content-Length`` included) and no
    body, so one listener serves both. A 204 (No Content) or 304 (Not Modified) response has
    no body either (RFC 9110 6.4.1): it gets no ``Content-Length`` or ``Transfer-Encoding``
    from VestesPy (and a 204 loses any the application set), and a body given to any of the
    three methods is not sent (a stream is closed unread), as for ``HEAD``.
    """

    __slots__ = (
        "_auto_fields",
        "_channel",
        "_head_only",
        "_head_sent",
        "_state",
        "headers",
        "reason",
        "request_method",
        "status",
    )

    #: The status code, 200 unless changed.
    status: int
    #: The reason phrase; None picks the standard one.
    reason: str | None
    #: The header fields to send; also see :meth:`set_header`.
    headers: Headers
    #: The method of the request answered, such as ``"GET"``.
    request_method: str

    def __init__(self, channel: ResponseChannel, request_method: str = "GET") -> None:
        """Create a response (the server does this).

        Args:
            channel: The connection the response is written to.
            request_method: The method of the request answered (``HEAD`` sends no body).
        """
        self.status: int = 200
        self.reason: str | None = None
        self.headers: Headers = Headers()
        self.request_method: str = request_method
        self._channel = channel
        self._state = _NEW
        self._head_sent = False
        self._head_only = request_method == "HEAD"
        # Whether Date and Server are added when missing (the date_header and server_header
        # options; set by the server before the listeners see the response).
        self._auto_fields = (True, True)

    def __repr__(self) -> str:
        return f"<Response {self.status} sent={self.headers_sent}>"

    @property
    def headers_sent(self) -> bool:
        """Whether the head has been handed to the connection."""
        return self._head_sent

    @property
    def finished(self) -> bool:
        """Whether the whole response has been handed to the connection."""
        return self._state == _DONE

    def set_header(self, name: str, value: str) -> None:
        """Set a header, replacing any of the same name (any case).

        Raises:
            ValueError: The name is not a token, or the value holds NUL, CR, LF, VT or FF
                or starts or ends with whitespace (RFC 9110 5.5).
            ResponseAlreadyStarted: Sending has begun.
        """
        _checked_field(name, value)
        if self._state != _NEW:
            raise ResponseAlreadyStarted(f"cannot set {name!r}: the response has started")
        self.headers.set(name, value)

    def send_informational(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send an interim 1xx response, such as ``103 Early Hints``, before the final one.

        Args:
            status: The interim status, 102-199.
            headers: ``(name, value)`` pairs to send with it.

        Raises:
            ValueError: ``status`` is not 102-199 (100 is sent for you; 101 needs an upgrade),
                or a header name or value is invalid (as for :meth:`set_header`).
            ResponseAlreadyStarted: The final response has started.
        """
        if not 102 <= status <= 199:
            raise ValueError(f"an interim status must be 102-199, not {status}")
        if self._state != _NEW:
            raise ResponseAlreadyStarted("interim responses must precede the response")
        self._channel.send_informational(status, [_checked_field(n, v) for n, v in headers])

    def send_all(self, data: Body = b"") -> None:
        """Send the whole response with ``data`` as its body (``str`` is UTF-8 encoded).

        Sets ``Content-Length``. Returns at once: the bytes are written by the loop.

        Raises:
            ResponseAlreadyStarted: A response was already sent for this request.
            ValueError: :attr:`status` is not a final status (200-999).
        """
        body = _encode(data)
        head = self._begin(len(body), chunked=False)
        self._state = _DONE
        self._head_sent = True
        self._channel.start(head, b"" if self._head_only else body, True)

    def send_stream(self, stream: Iterable[StreamChunk], length: int) -> None:
        """Send a body of exactly ``length`` bytes read from ``stream`` (``Content-Length``).

        The stream is consumed on the calling thread with backpressure: above the
        connection's write buffer (the server's ``write_buffer_size``, 256 KiB by default) the
        call waits for the client. On the loop thread (``max_workers=0``) it returns at once
        and the loop pulls the stream as the client reads.

        Args:
            stream: An iterable of ``bytes`` or ``str`` pieces.
            length: The exact total of the pieces, in bytes.

        Raises:
            StreamLengthError: The stream came up short or ran over; the connection was
                closed (on the loop thread this is logged instead, as the caller has returned).
            ClientDisconnected: The client went away; stop producing.
            ResponseAlreadyStarted: A response was already sent for this request.
            ValueError: ``length`` is negative, or :attr:`status` is not final (200-999).
        """
        if length < 0:
            raise ValueError(f"length must be >= 0, not {length}")
        self._send_body(stream, length)

    def send_chunked(self, stream: Iterable[StreamChunk]) -> None:
        """Send a body of unknown length read from ``stream``.

        HTTP/1.1 clients get ``Transfer-Encoding: chunked``; HTTP/1.0 clients get a body
        delimited by closing the connection. Backpressure as for :meth:`send_stream`.

        Raises:
            ClientDisconnected: The client went away; stop producing.
            ResponseAlreadyStarted: A response was already sent for this request.
            ValueError: :attr:`status` is not a final status (200-999).
        """
        self._send_body(stream, None)

    # -- internals -------------------------------------------------------------------------

    def _begin(self, length: int | None, *, chunked: bool) -> ResponseHead:
        """Check the state and build the head."""
        if self._state != _NEW:
            raise ResponseAlreadyStarted("a response was already sent for this request")
        status = self.status
        if not 200 <= status <= 999:
            raise ValueError(f"a final status must be 200-999, not {status}")
        # RFC 9110 6.4.1: a 204 or 304 has no body; whatever body is given is not sent.
        no_body = status in (204, 304)
        headers = self.headers
        if not no_body:
            if length is not None:
                headers.set("Content-Length", str(length))
            elif chunked:
                headers.remove("Content-Length")
        elif status == 204:
            # RFC 9110 8.6 and RFC 9112 6.1: a 204 carries neither, whoever set them (a 304's
            # Content-Length describes the representation, and may stay).
            headers.remove("Content-Length")
            headers.remove("Transfer-Encoding")
        if no_body or self._head_only:
            self._head_only = True
        fields = []
        has_date = has_server = False
        # One pass: this runs for every response.
        for lower, name, value in header_triples(headers):
            if lower == "content-length" and value.isascii() and value.isdigit():
                # Set from an int above (or digits by the application): nothing to check.
                fields.append((b"Content-Length", value.encode("ascii")))
                continue
            fields.append(_checked_field(name, value))
            if lower == "date":
                has_date = True
            elif lower == "server":
                has_server = True
        add_date, add_server = self._auto_fields
        if not has_date and add_date:
            fields.append((b"Date", http_date()))
        if not has_server and add_server:
            fields.append((b"Server", b"vestespy"))
        reason = self.reason.encode("latin-1") if self.reason is not None else None
        return ResponseHead(status, reason, fields)

    def _send_body(self, stream: Iterable[StreamChunk], length: int | None) -> None:
        head = self._begin(length, chunked=length is None)
        self._state = _STREAMING
        channel = self._channel
        if self._head_only:
            self._state = _DONE
            self._head_sent = True
            channel.start(head, b"", True)
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            return
        chunks = self._chunks(stream, length)
        if channel.in_loop_thread():
            self._state = _DONE
            self._head_sent = True
            channel.start(head, b"", False)
            channel.stream_from_loop(chunks)
            return
        try:
            for data in chunks:
                if self._head_sent:
                    channel.write(data)
                else:
                    # The head leaves with the first piece: one write, and a stream that
                    # fails before producing anything can still be answered with a 500.
                    self._head_sent = True
                    channel.start(head, data, False)
            if not self._head_sent:
                self._head_sent = True
                channel.start(head, b"", False)
        except StreamLengthError:
            channel.abort()
            raise
        except BaseException:
            if self._head_sent:
                channel.abort()
            raise
        self._state = _DONE
        channel.finish()

    def send_file(self, file: BinaryIO, length: int | None = None) -> None:
        """Send ``length`` bytes of a binary file from its current position (all the rest of
        it if None), with ``Content-Length``.

        On a plain TCP connection, a regular file is sent by the kernel (``os.sendfile`` on
        the loop thread, as the client reads): its bytes never pass through Python. Over TLS
        the file is read in blocks of 64 KiB and sent as :meth:`send_stream` sends. Either
        way the call returns once the bytes that do not fit the connection's write buffer
        are on their way, and the file may be closed then: the server reads from its own
        duplicate of the descriptor. The file's position is moved past the range.

        A file without a descriptor, or one that is not a regular file (a pipe, a
        ``BytesIO``), is read through its ``read()`` method as :meth:`send_stream` reads a
        stream: on a worker thread before the call returns; on the loop thread
        (``max_workers=0``) as the client takes the bytes, so it must stay open until then.
        Without ``length`` such a file is read to its end and sent as :meth:`send_chunked`
        sends.

        Args:
            file: A file opened in binary mode (``open(path, "rb")``) or any binary reader.
            length: The bytes to send; None sends the rest of the file.

        Raises:
            StreamLengthError: The regular file holds fewer than ``length`` bytes from its
                position (nothing was sent), or another file ended early (the connection
                was closed).
            ClientDisconnected: The client went away.
            ResponseAlreadyStarted: A response was already sent for this request.
            TypeError: The file is a text file.
            ValueError: ``length`` is negative, or :attr:`status` is not final (200-999).
        """
        given: object = file  # the annotation says binary; a caller without mypy may differ
        if isinstance(given, io.TextIOBase):
            raise TypeError("send_file needs a file opened in binary mode, not a text file")
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0, not {length}")
        fd = _regular_file_descriptor(file)
        if fd < 0:
            self._send_body(_read_blocks(file, length), length)
            return
        offset = file.tell()
        available = max(os.fstat(fd).st_size - offset, 0)
        if length is None:
            length = available
        elif length > available:
            raise StreamLengthError(
                f"the file holds {available} bytes from its position, not {length}"
            )
        if not self._channel.sends_files():
            # TLS: read the range through a segment (a duplicate descriptor, closed when the
            # segment is done or dropped), so that the file may be closed once this returns,
            # also where the loop pulls the blocks later.
            blocks = _read_segment(FileSegment(fd, offset, length))
            file.seek(offset + length)
            self._send_body(blocks, length)
            return
        head = self._begin(length, chunked=False)
        channel = self._channel
        self._head_sent = True
        if self._head_only or not length:
            self._state = _DONE
            channel.start(head, b"", True)
            file.seek(offset + length)
            return
        self._state = _STREAMING
        try:
            channel.start(head, b"", False)
            channel.write_file(fd, offset, length)
        except BaseException:
            channel.abort()
            raise
        file.seek(offset + length)
        self._state = _DONE
        channel.finish()

    @staticmethod
    def _chunks(stream: Iterable[StreamChunk], length: int | None) -> Iterator[bytes]:
        """Yield the stream's non-empty pieces as bytes, checking the declared length."""
        sent = 0
        for chunk in stream:
            data = _encode(chunk)
            if not data:
                continue
            sent += len(data)
            if length is not None and sent > length:
                raise StreamLengthError(f"stream ran over its declared length of {length} bytes")
            yield data
        if length is not None and sent != length:
            raise StreamLengthError(f"stream ended after {sent} of its declared {length} bytes")


def _regular_file_descriptor(file: BinaryIO) -> int:
    """The file's descriptor if it is a regular file (sendfile can send it), else -1."""
    try:
        fd = file.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        pass
    return -1


def _read_blocks(file: BinaryIO, length: int | None) -> Iterator[bytes]:
    """Read ``length`` bytes (to the end if None) in blocks; fewer if the file ends first."""
    left = length
    while left is None or left > 0:
        data = file.read(_FILE_BLOCK if left is None else min(_FILE_BLOCK, left))
        if not data:
            return
        if left is not None:
            left -= len(data)
        yield data


def _read_segment(segment: FileSegment) -> Iterator[bytes]:
    """Read a file segment in blocks (where the kernel cannot send it: TLS)."""
    while segment.remaining:
        data = segment.read(_FILE_BLOCK)
        if not data:
            return  # truncated meanwhile: the length check ends the response
        yield data


class _ClosedChannel:
    """Where a response writes once its exchange is over: nothing can reach the client."""

    def in_loop_thread(self) -> bool:
        return False

    def start(self, head: ResponseHead, body: bytes, end: bool) -> None:
        pass  # as for a connection that closed before the response started: dropped

    def write(self, data: bytes) -> None:
        raise ClientDisconnected.closed_mid_response()

    def sends_files(self) -> bool:
        return False

    def write_file(self, fd: int, offset: int, count: int) -> None:
        raise ClientDisconnected.closed_mid_response()

    def finish(self) -> None:
        raise ClientDisconnected.closed_mid_response()

    def stream_from_loop(self, chunks: Iterator[bytes]) -> None:
        pass

    def abort(self) -> None:
        pass

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        pass


# The channel of every response whose exchange is over (see _detach.detach).
_CLOSED_CHANNEL = _ClosedChannel()
