"""The sans-IO connection driver: bytes in, request events out; responses in, bytes out.

Theory of operation: one :class:`Driver` wraps one ``Connection(SERVER)`` for the life
of a client connection. It knows nothing of sockets, threads or clocks; its owner feeds it what
the socket read (:meth:`Driver.receive`), pulls :data:`DriverEvent` objects out
(:meth:`Driver.next_event`) and writes whatever bytes the response methods return. The owner
serialises every call (the connection holds a lock), because h11 is not thread-safe.

Invariants:

* A new request cycle starts as soon as both sides are done with the current one, whichever
  finishes last: :meth:`Driver.end_response` or the request's end in :meth:`Driver.next_event`.
  Pipelined requests therefore parse in order, one cycle at a time.
* Every protocol error the client causes becomes one :class:`RequestRejected` carrying the
  bytes of a complete error response (``Connection: close``), or no bytes when a response had
  already started; after it the connection must be closed.
* Checks that h11 does not make (see ``_strict``) are applied to the raw bytes of each head
  before h11 parses it (``_check_raw_head``: line endings, obs-fold, field syntax h11
  normalises away), to the parsed head before it is handed on (``_request_started``: target
  form, Host, framing headers, body size), and to a chunked body's framing as it arrives
  (``_strict.ChunkScanner``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from . import _strict
from ._core import (
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MUST_CLOSE,
    PAUSED,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    RemoteProtocolError,
    Request,
    Response,
)

if TYPE_CHECKING:
    from h11._headers import Headers as CoreHeaders

    from ._segment import FileSegment

__all__ = [
    "BodyReceived",
    "Driver",
    "DriverEvent",
    "PeerClosed",
    "RequestEnded",
    "RequestRejected",
    "RequestStarted",
    "Wait",
]


# The end of a response without trailers, shared: h11's events are frozen, and building one
# per response (its keyword call and empty field list) cost 2k instructions of a compiled
# hello request.
_END_OF_MESSAGE = EndOfMessage()


class Wait(enum.Enum):
    """Why :meth:`Driver.next_event` has no event to give."""

    #: More bytes from the client are needed.
    NEED_DATA = enum.auto()
    #: The client has sent (part of) the next request, which waits for the current response.
    PAUSED = enum.auto()
    #: A request was rejected (or a response failed): nothing more is parsed, ever.
    STOPPED = enum.auto()


# The events made per request are plain slotted classes with their own __init__: compiled by
# mypyc, a dataclass's generated __init__ stays interpreted (and a frozen one sets each field
# through object.__setattr__), which cost ~2,000 instructions per event. __eq__ is for tests.


class RequestStarted:
    """A request head was parsed."""

    __slots__ = ("expects_continue", "headers", "http_version", "method", "target")

    def __init__(
        self,
        method: str,
        target: str,
        http_version: str,
        headers: list[tuple[str, str, str]],
        expects_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        #: ``(lower-cased name, name as received, value)`` triples.
        self.headers = headers
        self.expects_continue = expects_continue

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestStarted) and (
            self.method,
            self.target,
            self.http_version,
            self.headers,
            self.expects_continue,
        ) == (
            other.method,
            other.target,
            other.http_version,
            other.headers,
            other.expects_continue,
        )

    def __repr__(self) -> str:
        return f"RequestStarted({self.method!r}, {self.target!r}, {self.http_version!r})"


class BodyReceived:
    """A piece of the request body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BodyReceived) and self.data == other.data

    def __repr__(self) -> str:
        return f"BodyReceived({self.data!r})"


class RequestEnded:
    """The request body is complete."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[str, str, str]]) -> None:
        #: Trailer fields as ``(lower-cased name, name, value)`` triples.
        self.trailers = trailers

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestEnded) and self.trailers == other.trailers

    def __repr__(self) -> str:
        return f"RequestEnded({self.trailers!r})"


@dataclass(slots=True)
class RequestRejected:
    """The client broke the protocol; the connection must close once ``response`` is sent."""

    status: int
    reason: str
    #: A complete error response, or ``b""`` if a response had already started.
    response: bytes
    #: Whether the error is the client closing the connection mid-request.
    peer_closed: bool = False
    #: The body bytes of ``response`` (for the access log).
    body_bytes: int = 0
    #: The head of a request refused as it was parsed (a limit, a framing or target rule),
    #: for the access log; None when the head was never parsed or its request was handed on.
    started: RequestStarted | None = None


@dataclass(slots=True)
class PeerClosed:
    """The client closed its side of the connection (between requests, or after one whose
    response it still waits for: a truncated request is a :class:`RequestRejected`)."""


DriverEvent = RequestStarted | BodyReceived | RequestEnded | RequestRejected | PeerClosed

# The phrases of RFC 9110 15 whatever the Python version: http.HTTPStatus has RFC 9110's only
# from Python 3.13 on (3.10-3.12 say "Request Entity Too Large" for 413, for instance).
_RFC_9110_PHRASES: dict[int, str] = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
_REASONS: dict[int, bytes] = {
    s.value: _RFC_9110_PHRASES.get(s.value, s.phrase).encode("ascii") for s in HTTPStatus
}


def reason_phrase(status: int) -> bytes:
    """Return the standard reason phrase for ``status`` (empty if unknown)."""
    return _REASONS.get(status, b"")


def _triples(headers: CoreHeaders) -> list[tuple[str, str, str]]:
    # raw_items() gives the names as received; lower-casing the decoded name here is cheaper
    # than zipping it with h11's lower-cased view, which iterates through Sequence.__getitem__.
    triples = []
    for raw, value in headers.raw_items():
        name = raw.decode("ascii")
        triples.append((name.lower(), name, value.decode("latin-1")))
    return triples


def _skip_empty_lines(data: bytes) -> bytes:
    """Return ``data`` without the empty lines (CRLF) it starts with.

    One slice, not one per line, so that the cost stays linear in the number of lines.
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    return data[start:] if start else data


class Driver:
    """Drives one HTTP/1.1 server connection through h11 (sans-IO).

    Args:
        max_header_size: The largest request head (or chunk header) accepted, in bytes;
            past it the request is rejected with 431.
        max_request_line: The longest request line accepted; past it, 414.
        relaxed: Names of the ``_strict`` rule options relaxed.
        max_body_size: The largest request body accepted, or None; past it, 413.
        max_header_count: The most header fields in a head (and trailer fields in a
            trailer section); past it, 431.
        max_drain: The most unread body bytes the owner discards after an early response
            before it closes instead; a response that starts with more of the body unread
            (or an unknown amount, or a client waiting for ``100 Continue``) says
            ``Connection: close``.
    """

    __slots__ = (
        "_body_left",
        "_body_seen",
        "_chunks",
        "_eof",
        "_h11",
        "_head_checked",
        "_headers",
        "_held_cr",
        "_max_body",
        "_max_drain",
        "_max_fields",
        "_max_head",
        "_max_line",
        "_no_keep_alive",
        "_paused",
        "_rejected",
        "_relaxed",
    )

    def __init__(
        self,
        *,
        max_header_size: int = 16384,
        max_request_line: int = 8192,
        relaxed: frozenset[str] = frozenset(),
        max_body_size: int | None = None,
        max_header_count: int = 100,
        max_drain: int = 1024 * 1024,
    ) -> None:
        self._h11 = Connection(SERVER, max_incomplete_event_size=max_header_size)
        self._rejected = False
        self._no_keep_alive = False
        self._eof = False
        # The last next_event() said Wait.PAUSED: the owner stopped reading until a response
        # ends (see waits_for_response).
        self._paused = False
        # Whether the raw bytes of the head h11 is about to parse have been checked.
        self._head_checked = False
        self._held_cr = False
        # Follows a chunked request body's framing where h11 is lenient (see _strict).
        self._chunks: _strict.ChunkScanner | None = None
        self._max_head = max_header_size
        self._max_line = max_request_line
        # Names of the _strict rule options the server relaxes.
        self._relaxed = relaxed
        self._max_body = max_body_size
        # Bytes a chunked body may still bring under max_body_size; None if not counted.
        self._body_left: int | None = None
        self._max_fields = max_header_count
        self._max_drain = max_drain
        # The current request's header fields, and the body bytes handed on so far.
        self._headers: list[tuple[str, str, str]] = []
        self._body_seen = 0

    # -- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Feed bytes read from the client; ``b""`` means the client closed its side.

        ``data`` must be ``bytes``: h11_mypyc refuses a ``bytearray`` or ``memoryview``.
        """
        conn = self._h11
        if not data:
            self._eof = True
            if self._held_cr:
                self._held_cr = False
                conn.receive_data(b"\r")
        elif conn.their_state is MUST_CLOSE:
            # RFC 9112 9.6: after a request with "Connection: close" (or an HTTP/1.0 one)
            # nothing more is read; h11 would call further bytes an error and answer 400
            # in place of the response the request is owed.
            return
        elif (
            (data[0] == 13 or self._held_cr)
            and conn.their_state is IDLE
            and not self._head_checked
            and not conn.trailing_data[0]
        ):
            # RFC 9112 2.2: empty lines before a request line are ignored (h11 refuses
            # them). A lone CR is held back until its LF arrives.
            if self._held_cr:
                self._held_cr = False
                data = b"\r" + data
            data = _skip_empty_lines(data)
            if data == b"\r":
                self._held_cr = True
                return
            if not data:
                return
        if not self._rejected:
            if self._chunks is not None:
                self._chunks.feed(data)
            conn.receive_data(data)

    def next_event(self) -> DriverEvent | Wait:
        """Parse and return the next event, or why there is none yet."""
        self._paused = False
        if self._rejected:
            return Wait.STOPPED
        conn = self._h11
        chunks = self._chunks
        if chunks is not None and chunks.error is not None:
            return self._reject(chunks.error.status, chunks.error.name)
        state = conn.their_state
        if state is IDLE:
            if not self._head_checked:
                data = conn.trailing_data[0]
                if not data and not self._eof:
                    # Between requests with nothing buffered (the common case once a
                    # response is done): h11 could only say the same, at a greater cost.
                    return Wait.NEED_DATA
                rule = self._check_raw_head(data)
                if rule is not None:
                    return self._reject(rule.status, rule.name)
                conn = self._h11  # a rewritten head is in a fresh h11 connection
        elif state is MUST_CLOSE:
            # RFC 9112 9.6: bytes after a closing request are not read; h11 would reject
            # them with a 400 in place of the response the request is owed.
            return PeerClosed() if self._eof else Wait.NEED_DATA
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            return self._reject(exc.error_status_hint, str(exc))
        if type(event) is Data:
            # Any: h11's types say Data.data is bytes, but h11_mypyc hands a bytearray, which a
            # typed read in compiled code would refuse; bytes() copies it either way.
            untyped: Any = event
            data = bytes(untyped.data)
            self._body_seen += len(data)
            if self._body_left is not None:
                self._body_left -= len(data)
                if self._body_left < 0:
                    rule = _strict.BODY_TOO_LARGE
                    return self._reject(rule.status, rule.name)
            return BodyReceived(data)
        if type(event) is Request:
            return self._request_started(event)
        if type(event) is EndOfMessage:
            trailers = _triples(event.headers)
            if trailers:
                if _strict.check_trailers(trailers) is not None:
                    return self._reject(400, _strict.TRAILER.name)
                if len(trailers) > self._max_fields:
                    return self._reject(431, _strict.TOO_MANY_FIELDS.name)
            self._chunks = None
            if conn.our_state is DONE:
                self._start_next_cycle()
            return RequestEnded(trailers)
        if type(event) is ConnectionClosed:
            return PeerClosed()
        if event is PAUSED:
            self._paused = True
            return Wait.PAUSED
        return Wait.NEED_DATA

    def _start_next_cycle(self) -> None:
        """Start the next request cycle, dropping empty lines before its request line.

        RFC 9112 2.2: a server SHOULD ignore at least one empty line (CRLF) before a
        request-line, between pipelined requests too. h11 refuses them and cannot drop bytes
        it holds, so a fresh h11 connection (both sides idle, as after ``start_next_cycle``)
        takes over the bytes after the last request. Only a buffer starting with CR pays.
        """
        conn = self._h11
        data, closed = conn.trailing_data
        if not data.startswith(b"\r"):
            conn.start_next_cycle()
            return
        data = _skip_empty_lines(data)
        if data == b"\r" and not closed:
            self._held_cr = True  # its LF may come in the next read
            data = b""
        self._replace_buffer(data)

    def _check_raw_head(self, data: bytes) -> _strict.Rule | None:
        """Check the raw bytes of the next head, once they are all buffered in h11.

        h11 normalises bare LF, obs-fold and list-form Content-Length away while parsing, so
        they are only visible before it parses.

        Args:
            data: What h11 has buffered: the next head, maybe incomplete, and what follows.
        """
        end = _strict.head_end(data)
        if end < 0:
            return _strict.check_line_length(data, self._max_line)
        self._head_checked = True
        if end > self._max_head:
            # h11 bounds a head only while it is incomplete; one that arrived whole in a
            # single read would otherwise pass at any size.
            return _strict.HEAD_TOO_LARGE
        head = data[:end]
        rule = _strict.check_head(head, self._relaxed)
        if rule is _strict.TE_REWRITE:
            self._replace_buffer(
                _strict.normalize_transfer_encoding(head, self._relaxed) + data[end:]
            )
            rule = None
        return rule or _strict.check_line_length(head, self._max_line)

    def _replace_buffer(self, data: bytes) -> None:
        """Hand ``data`` in place of what h11 holds to a fresh h11 connection.

        Only between requests (both sides idle): a fresh connection is then in the same
        state as one after ``start_next_cycle``.
        """
        closed = self._h11.trailing_data[1]
        fresh = Connection(SERVER, max_incomplete_event_size=self._max_head)
        if data:
            fresh.receive_data(data)  # (b"" would mean the end of input)
        if closed:
            fresh.receive_data(b"")
        self._h11 = fresh

    def _request_started(self, event: Request) -> RequestStarted | RequestRejected:
        self._head_checked = False
        method = event.method.decode("ascii")
        target = event.target.decode("ascii")
        version = event.http_version.decode("ascii")
        headers = _triples(event.headers)
        rule = _strict.TOO_MANY_FIELDS if len(headers) > self._max_fields else None
        if rule is None:
            rule = _strict.check_request(method, target, version, headers)
        if rule is not None:
            return self._reject_head(rule, RequestStarted(method, target, version, headers, False))
        self._headers = headers
        self._body_seen = 0
        chunked = any(field[0] == "transfer-encoding" for field in headers)
        if chunked:
            # h11 accepts no coding but chunked, so this body is chunked. Body bytes that came
            # with the head are already in h11's buffer: scan those first.
            self._chunks = _strict.ChunkScanner(self._max_head, self._relaxed)
            self._chunks.feed(self._h11.trailing_data[0])
        if self._max_body is not None:
            rule = self._check_body_size(headers, chunked)
            if rule is not None:
                started = RequestStarted(method, target, version, headers, False)
                return self._reject_head(rule, started)
        return RequestStarted(
            method=method,
            target=target,
            http_version=version,
            headers=headers,
            expects_continue=self._h11.they_are_waiting_for_100_continue,
        )

    def _check_body_size(
        self, headers: list[tuple[str, str, str]], chunked: bool
    ) -> _strict.Rule | None:
        """Apply ``max_body_size``: at once to a Content-Length, as it arrives to chunks."""
        assert self._max_body is not None
        if chunked:
            self._body_left = self._max_body
            return None
        self._body_left = None
        for name, _, value in headers:
            # h11 has checked the value is digits, and merged identical duplicates.
            if name == "content-length" and int(value) > self._max_body:
                return _strict.BODY_TOO_LARGE
        return None

    def _reject_head(self, rule: _strict.Rule, started: RequestStarted) -> RequestRejected:
        """Refuse a parsed head by ``rule``; the rejection carries the head (access log)."""
        rejected = self._reject(rule.status, rule.name, head=started.method == "HEAD")
        rejected.started = started
        return rejected

    def _reject(self, status: int, reason: str, *, head: bool = False) -> RequestRejected:
        """Build the error response for a protocol error and stop parsing for good.

        Args:
            status: The response status.
            reason: Why, for the response body.
            head: Whether the request was HEAD, whose response has no body.
        """
        self._rejected = True
        conn = self._h11
        if conn.our_state not in (IDLE, SEND_RESPONSE):
            return RequestRejected(status, reason, b"", self._eof)
        if self._eof:
            # The client hung up mid-message: nobody is left to read an error response.
            return RequestRejected(status, reason, b"", True)
        body = f"{status} {reason_phrase(status).decode()}: {reason}\n".encode()
        response = Response(
            status_code=status,
            reason=reason_phrase(status),
            headers=[
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", str(len(body)).encode("ascii")),
                (b"Connection", b"close"),
            ],
        )
        data = conn.send(response)
        if not head:
            data += conn.send(Data(data=body))
        data += conn.send(_END_OF_MESSAGE)
        return RequestRejected(status, reason, data, self._eof, 0 if head else len(body))

    # -- sending ---------------------------------------------------------------------------

    @property
    def must_close(self) -> bool:
        """Whether the connection must close once the bytes already returned are sent."""
        # Not merely because keep-alive is refused: a response whose head already promised
        # keep-alive keeps its promise (see refuse_keep_alive).
        return self._rejected or self._h11.our_state in (MUST_CLOSE, CLOSED, ERROR)

    @property
    def waits_for_response(self) -> bool:
        """Whether the owner waits for the current response to end before it can go on: it
        stopped reading because a pipelined request is buffered (the last :meth:`next_event`
        said ``Wait.PAUSED``), or the client closed its side (the connection closes once the
        response is out)."""
        return self._paused or self._eof

    @property
    def holds_pipelined(self) -> bool:
        """Whether a pipelined request is buffered behind the current one (the last
        :meth:`next_event` said ``Wait.PAUSED``): its owner waits for the current response."""
        return self._paused

    def refuse_keep_alive(self) -> None:
        """End the connection after the next response it starts (a server draining).

        A response not started yet carries ``Connection: close``, and the connection closes
        after it. One whose head already went out without it keeps its promise: the
        connection stays open for the client's next request, which is answered with
        ``Connection: close``. Closing there instead races the client, which takes the
        connection as reusable and may be sending on it already (a proxy retries no POST).
        """
        self._no_keep_alive = True

    def send_continue(self) -> bytes:
        """Return ``100 Continue`` if the client waits for it, else ``b""``."""
        if self._h11.they_are_waiting_for_100_continue and not self._rejected:
            return self._h11.send(
                InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        return b""

    def send_informational(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Return an interim (1xx) response's bytes."""
        return self._h11.send(
            InformationalResponse(status_code=status, headers=headers, reason=reason_phrase(status))
        )

    def start_response(
        self, status: int, headers: list[tuple[bytes, bytes]], reason: bytes | None = None
    ) -> bytes:
        """Return the bytes of a response head.

        h11 adds the framing headers the response needs (``Transfer-Encoding: chunked`` for
        an HTTP/1.1 client when no ``Content-Length`` is given; ``Connection: close`` when the
        connection cannot be kept alive). A response that starts before the request body is
        read says ``Connection: close`` when the connection will close after it (RFC 9110
        10.1.1): see :meth:`_discards_body`.
        """
        if (self._h11.their_state is SEND_BODY and not self._discards_body()) or (
            # A draining server: h11 reads our own Connection: close and stops keeping the
            # connection alive.
            self._no_keep_alive and not any(n.lower() == b"connection" for n, _ in headers)
        ):
            headers = [*headers, (b"Connection", b"close")]
        # _parsed: h11's own check of every field (bytes.translate with a table built per
        # call, in h11_mypyc: a tenth of a hello request's instructions) is skipped, as for a
        # head it parsed; Response checked each field with h11's rules when it built the head
        # (response._checked_field), and the Connection field added here is a constant. h11
        # still lower-cases the names and checks Content-Length and Transfer-Encoding.
        return self._h11.send(
            Response(
                status_code=status,
                headers=headers,
                reason=reason if reason is not None else reason_phrase(status),
                _parsed=True,
            )
        )

    def _discards_body(self) -> bool:
        """Whether the rest of the request body will be read and discarded after an early
        response, keeping the connection; False if the connection will close after it.

        A client still waiting for ``100 Continue`` may never send the body (RFC 9110 10.1.1),
        and a Content-Length with more than ``max_drain`` bytes left is not worth reading:
        both close. A chunked body's size is unknown, so it is discarded, and the connection
        closes without notice if it turns out larger than ``max_drain``.
        """
        conn = self._h11
        if conn.they_are_waiting_for_100_continue:
            return False
        if self._chunks is not None:
            return True
        for name, _, value in self._headers:
            if name == "content-length":
                return int(value) - self._body_seen <= self._max_drain
        return True  # no body (h11 has not read the end of the request yet)

    def reject_timeout(self, reason: str) -> RequestRejected:
        """Give up on the request being received: a 408 if no response has started."""
        return self._reject(408, reason)

    def send_body(self, data: bytes | FileSegment) -> list[bytes | FileSegment]:
        """Return the pieces that frame ``data`` (``data`` itself among them, uncopied).

        A file segment passes through too: h11 calls only ``len()`` on what it passes
        through, so the file's bytes never pass through Python (see ``_segment.py``).
        """
        # Any: h11 annotates Data.data as bytes, yet documents passing any object with len()
        # through send_with_data_passthrough for sendfile (and the pieces then hold it).
        passthrough: Any = data
        # Any: the pieces hold ``data`` as given (see above), bytes or a file segment.
        pieces: list[Any] | None = self._h11.send_with_data_passthrough(Data(data=passthrough))
        assert pieces is not None
        return pieces

    def send_small_body(self, data: bytes) -> bytes:
        """Return ``data`` framed, as one (copied) piece: for small bodies, where a copy costs
        less than queuing and later joining several pieces."""
        # Positional: h11_mypyc's classes parse keywords from a dict, at a cost.
        return self._h11.send(Data(data))

    def end_response(self, trailers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """Return the bytes that end the response and start the next cycle if possible."""
        conn = self._h11
        data = conn.send(EndOfMessage(headers=trailers) if trailers else _END_OF_MESSAGE)
        if conn.their_state is DONE and conn.our_state is DONE:  # keep-alive was promised
            self._start_next_cycle()
        return data

    def trailing_data(self) -> tuple[bytes, bool]:
        """After ``101 Switching Protocols``: the bytes h11 holds past the request (the new
        protocol's first bytes), and whether the client closed its side."""
        data, closed = self._h11.trailing_data
        return bytes(data), closed

    def fail(self) -> None:
        """Record that the response could not be completed; the connection must close."""
        self._rejected = True
        self._h11.send_failed()
