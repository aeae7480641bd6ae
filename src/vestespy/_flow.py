"""Whether a connection reads: its flow-control state and its fair share of the loop.

Theory of operation: a connection stops reading for four reasons, each a flag here, and reads
again only once none holds:

* ``for_response``: the driver holds a pipelined request that waits for the current response;
* ``for_body``: the listeners are more than ``max_body_buffer`` bytes of body behind;
* ``yielded``: the connection started its slice of requests in this pass of the loop and more
  are buffered (fairness, below);
* ``closing``: the connection closes once its output is sent (set through :meth:`Flow.close`).

Fairness: a connection may start ``REQUESTS_PER_SLICE`` requests per pass. When one more is
there, :meth:`Flow.yield_slice` holds it, stops reading, and resumes in the next pass, after the
other ready connections had their turn; so a pipelining flood delays other clients by a slice,
not by its whole read.

Every change goes through :meth:`Flow.update`, the one place that sets the transport's read
interest. Loop thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._driver import RequestStarted

if TYPE_CHECKING:
    from ._context import Reactor

__all__ = ["REQUESTS_PER_SLICE", "Flow"]

# Requests one connection may start per pass of the loop. 8 keeps a slice inline near half a
# millisecond. With 20 connections flooding, a normal client waited up to 5.5 s without
# slices; with slices of 8, one per pass, its p99 was 47 ms inline and 35 ms on a pool on a
# loaded 2-core machine. A connection yields only when a ninth request is there, so a batch of
# 16 pipelined requests costs one extra pass, and a batch of 8 none.
REQUESTS_PER_SLICE = 8


class Flow:
    """The read decision of one connection.

    Args:
        loop: The connection's loop (for the next pass).
        set_reading: Turns the transport's read interest on or off.
        resume: Called in the next pass after :meth:`yield_slice`, with the request held.
    """

    __slots__ = (
        "_loop",
        "_resume",
        "_set_reading",
        "closing",
        "for_body",
        "for_response",
        "held",
        "yielded",
    )

    def __init__(
        self,
        loop: Reactor,
        set_reading: Callable[[bool], None],
        resume: Callable[[RequestStarted | None], None],
    ) -> None:
        self._loop = loop
        self._set_reading = set_reading
        self._resume = resume
        self.for_response = False
        self.for_body = False
        self.yielded = False
        #: Set once the connection closes when its output is sent.
        self.closing = False
        #: The request that would have gone past the slice, started on the next turn.
        self.held: RequestStarted | None = None

    def update(self) -> None:
        """Read unless something holds reading (lingering reads whatever is asked)."""
        self._set_reading(not (self.for_response or self.for_body or self.yielded or self.closing))

    def pause_for_response(self, paused: bool) -> None:
        """A pipelined request waits for the current response (or no longer does)."""
        if paused is not self.for_response:
            self.for_response = paused
            self.update()

    def pause_for_body(self) -> bool:
        """The listeners are behind on the body: stop; True if reading was not paused yet."""
        if self.for_body:
            return False
        self.for_body = True
        self.update()
        return True

    def resume_for_body(self) -> bool:
        """The listeners caught up: read again; True if reading was paused for them."""
        if not self.for_body:
            return False
        self.for_body = False
        self.update()
        return True

    def close(self) -> None:
        """Read no more: the connection closes once its output is sent."""
        self.closing = True
        self.update()

    def hold_slice(self, holding: bool) -> None:
        """A WebSocket used its slice of messages in this pass: stop reading until it has
        handed over the rest (``holding``), or read again."""
        if holding is not self.yielded:
            self.yielded = holding
            self.update()

    def yield_slice(self, held: RequestStarted) -> None:
        """Hold ``held`` and go on in the next pass, after the other ready connections."""
        self.held = held
        if not self.yielded:
            self.yielded = True
            self.update()  # nothing more is read until the buffered requests are in
            # Queued at the end of this pass, the call runs in the next one: one slice per
            # pass, where a call queued now would give a second slice in this pass.
            self._loop.at_end_of_pass(self._queue_resume)

    def _queue_resume(self) -> None:
        self._loop.call_soon(self._resume_slice)

    def _resume_slice(self) -> None:
        self.yielded = False
        held, self.held = self.held, None
        self.update()
        self._resume(held)
