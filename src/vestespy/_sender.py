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

The sender tells its connection (a :class:`SenderHost`) which responses are out, that
lingering began, and that an inline stream failed (abort at once).
Every method runs on the loop thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from ._deadlines import Deadlines
from ._flow import Flow
from ._stream import LoopStream, Pulled
from ._transport import Transport
from ._wire import Wire

if TYPE_CHECKING:
    from ._context import Reactor
    from ._exchange import Exchange

__all__ = ["Sender", "SenderHost"]


class SenderHost(Protocol):
    """What a sender reports to: its connection (loop thread)."""

    def on_responses_sent(self, finished: Sequence[Exchange], must_close: bool) -> None:
        """The last flush handed these exchanges' responses to the kernel (or its backlog);
        ``must_close``: the protocol allows no further request on the connection."""

    def on_lingering(self) -> None:
        """The write side is shut down: the connection lingers."""

    def abort(self) -> None:
        """An inline stream failed: close the connection now."""


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

    def flush(self) -> None:
        """Send everything queued in one ``send`` and report the responses it ends."""
        data, finished, must_close = self._wire.take()
        if self._transport.closed:
            return
        transport = self._transport
        if data:
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

    def discard(self) -> None:
        """The connection closed: forget the stream."""
        self._stream = None

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
