"""The output side of one connection: what the wire queued goes to the transport (loop thread).

Theory of operation: the wire asks the connection for a flush when the first bytes are queued
after the last one; the connection schedules :meth:`Sender.flush` on the loop (at the end of
the pass when asked on the loop thread, so that every response made ready in one pass leaves
in one ``send``). What
the kernel does not take stays in the transport's backlog and goes out on write readiness
(:meth:`Sender.on_writable`); a response stream of an inline listener (:class:`LoopStream`) is
pulled as room appears. Once the connection must close (:meth:`Sender.close_when_sent`), the
sender waits until nothing is queued, unsent or still to be pulled, then shuts down the write
side and the connection lingers.

Pipelined responses leave together (the *hold*): when a flush ends responses that a
pipelined request waits for (``Flow.for_response``), the sender reports them first, so that
the connection starts that request at once, and if it did, keeps the bytes back for the next
flush instead of sending them alone. On a pool, each pipelined request is answered on another
thread after the loop started it, so without the hold a burst of 16 requests cost 16 ``send``
calls (about a fifth of the server's time in the pipelined benchmark went to ``sendto``);
with it, one. The bytes are held at most :data:`HOLD_TIME` and :data:`HOLD_BYTES`, never past
a closing response, a file segment or a backlog, and they stay counted in the wire's ``size``,
so nothing sent later (a direct send, the high-water wait) can overtake or forget them.

The sender tells its connection (a :class:`SenderHost`) which responses are out, that
lingering began, and that an inline stream failed (abort at once).
Every method runs on the loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from ._deadlines import Deadlines
from ._flow import Flow
from ._stream import LoopStream, Pulled
from ._transport import Transport
from ._wire import Wire

if TYPE_CHECKING:
    from ._context import Cancellable, Reactor
    from ._exchange import Exchange
    from ._segment import FileSegment

__all__ = ["HOLD_BYTES", "HOLD_TIME", "Sender", "SenderHost"]

#: The longest, in seconds, responses of a pipelined burst are held back for the ones after
#: them: a listener that takes longer delays the responses before its own by this much only.
HOLD_TIME: Final = 0.01
#: The most bytes held back (the wire's high-water mark halved, if lower): a burst of large
#: responses goes out as it comes.
HOLD_BYTES: Final = 64 * 1024


class SenderHost(Protocol):
    """What a sender reports to: its connection (loop thread)."""

    def on_responses_sent(self, finished: Sequence[Exchange], must_close: bool) -> None:
        """The last flush handed these exchanges' responses to the kernel (or its backlog);
        ``must_close``: the protocol allows no further request on the connection."""

    def on_lingering(self) -> None:
        """The write side is shut down: the connection lingers."""

    def abort(self) -> None:
        """An inline stream failed: close the connection now."""

    def request_in_flight(self) -> bool:
        """Whether a request the connection started waits for its response."""


class Sender:
    """Sends one connection's output.

    Args:
        loop: The connection's loop.
        wire: Where the output is queued.
        transport: Where it goes.
        deadlines: Told of output progress (the unread-response and response-rate clocks).
        flow: The connection's flow control, whose ``closing`` says the connection closes
            once its output is sent.
        host: The connection, told what happened.
    """

    __slots__ = (
        "_deadlines",
        "_flow",
        "_held",
        "_hold_timer",
        "_host",
        "_loop",
        "_stream",
        "_transport",
        "_wire",
    )

    def __init__(
        self,
        loop: Reactor,
        wire: Wire[Exchange],
        transport: Transport,
        deadlines: Deadlines,
        flow: Flow,
        host: SenderHost,
    ) -> None:
        self._loop = loop
        self._wire = wire
        self._transport = transport
        self._deadlines = deadlines
        self._flow = flow
        self._host = host
        self._stream: LoopStream | None = None  # a response pulled by the loop (inline)
        # Responses of a pipelined burst taken from the wire and held back (see the module),
        # and the timer that sends them if nothing else does first.
        self._held = b""
        self._hold_timer: Cancellable | None = None

    def flush(self) -> None:
        """Send everything queued in one ``send`` and report the responses it ends; hold the
        bytes back instead when they let a pipelined request start (see the module)."""
        data, finished, must_close = self._wire.take()
        if self._transport.closed:
            return
        transport = self._transport
        if self._held:
            data = self._take_held(data)
        if finished and self._flow.for_response and not must_close and data and type(data) is bytes:
            # A pipelined request waits for these responses: start it before they leave, and
            # keep them for the flush of its own response if it did start. Held during the
            # report, so that a close it makes (the client's end came next) sends them first.
            self._held = data
            self._host.on_responses_sent(finished, must_close)
            if transport.closed:  # the report closed it (after sending what was held)
                return
            data, self._held = self._held, b""
            if not self._hold(data) and self._send(data) and self._flow.closing:
                self._close_if_sent()
            return
        if data:  # _send inline: the path of every response
            sent = transport.send(data)
            if transport.closed:  # the send found the connection lost (and closed it)
                return
            if sent:
                self._wire.sent(sent)
            if transport.has_backlog:
                self._deadlines.output_backlogged(time.monotonic())
        if finished:
            self._host.on_responses_sent(finished, must_close)
        if self._flow.closing and not transport.closed:
            self._close_if_sent()

    def _send(self, data: bytes | list[bytes | FileSegment]) -> bool:
        """Hand ``data`` to the transport; False if that found the connection lost."""
        transport = self._transport
        sent = transport.send(data)
        if transport.closed:  # the send found the connection lost (and closed it)
            return False
        if sent:
            self._wire.sent(sent)
        if transport.has_backlog:
            self._deadlines.output_backlogged(time.monotonic())
        return True

    def _hold(self, data: bytes) -> bool:
        """Keep ``data`` back for the next flush if the request it let start is in flight and
        nothing forbids it; True if held."""
        if (
            self._flow.closing
            or self._transport.has_backlog
            or len(data) > min(HOLD_BYTES, self._wire.high_water // 2)
            or not self._host.request_in_flight()
        ):
            return False
        self._held = data
        if self._hold_timer is None:
            # One timer for a burst, not one per response: it sends whatever is held when it
            # fires, so no byte waits longer than HOLD_TIME (some wait less).
            self._hold_timer = self._loop.call_later(HOLD_TIME, self._hold_time_up)
        return True

    def _take_held(
        self, data: bytes | list[bytes | FileSegment]
    ) -> bytes | list[bytes | FileSegment]:
        """The held bytes, then ``data``: what the next send takes, in order."""
        held, self._held = self._held, b""
        if type(data) is bytes:
            return held + data
        assert isinstance(data, list)
        return [held, *data]

    def _hold_time_up(self) -> None:
        self._hold_timer = None
        self._send_held()

    def _send_held(self) -> None:
        """Send what is held (the hold's time is up, or the connection must act on its
        output: abort, close)."""
        data, self._held = self._held, b""
        if not data or self._transport.closed:
            return
        if self._send(data) and self._flow.closing:
            self._close_if_sent()

    def on_writable(self) -> None:
        """The kernel takes more: send from the backlog, then pull the stream or close."""
        transport = self._transport
        sent = transport.send_backlog()
        if transport.closed:
            return
        if sent:
            self._wire.sent(sent)
            self._deadlines.output_progress(time.monotonic(), sent)
        if not transport.has_backlog:
            self._deadlines.output_drained()  # the client read everything: a new period
            if self._stream is not None:
                self._pull_stream()
            if self._flow.closing and not transport.closed:
                self._close_if_sent()

    def stream(self, exchange: Exchange, chunks: Iterator[bytes]) -> None:
        """Pull ``chunks`` into ``exchange``'s response as the client reads, then end it."""
        self._stream = LoopStream(exchange, chunks)
        self._loop.at_end_of_pass(self._pull_stream)

    def close_when_sent(self) -> None:
        """Close (FIN, then linger) once everything queued is sent."""
        self._flow.close()
        self._close_if_sent()

    def abort(self) -> None:
        """Hand the kernel what is already queued, without waiting for a slow client, so that
        the client sees the same truncated message whichever thread aborted; pull no more."""
        self._stream = None
        self.flush()
        self._send_held()

    def discard(self) -> None:
        """The connection closes now: forget the stream; what was held goes to the kernel
        first, as far as it takes it at once (it would have been sent, not held, before)."""
        self._stream = None
        timer = self._hold_timer
        if timer is not None:
            self._hold_timer = None
            timer.cancel()
        held, self._held = self._held, b""
        if held and not self._transport.closed:
            self._transport.send(held)  # what the kernel leaves goes with the socket

    def _pull_stream(self) -> None:
        stream = self._stream
        transport = self._transport
        if stream is None or transport.closed:
            return
        pulled = stream.pull(self._wire.has_room)
        if pulled is Pulled.FAILED:
            self._host.abort()
            return
        if pulled is Pulled.OVER:
            self._stream = None
        self.flush()
        if self._stream is not None and not transport.has_backlog and not transport.closed:
            # The kernel took everything: pull more in the next pass (other connections get
            # their turn in between). Otherwise on_writable pulls once the backlog drains.
            self._loop.at_end_of_pass(self._pull_stream)

    def _close_if_sent(self) -> None:
        if self._held:
            self._send_held()  # calls back here once sent
            return
        transport = self._transport
        if (
            transport.has_backlog
            or transport.lingering
            or self._stream is not None
            or self._wire.has_pending()
        ):
            return
        # Send FIN, then read until the client closes, so it gets the response, not a reset.
        if transport.linger():
            self._host.on_lingering()
