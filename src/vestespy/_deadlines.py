"""Every deadline of one client connection (sans-IO: the caller gives the time and the phase).

Theory of operation: a :class:`Deadlines` records what a connection tells it (a read, a request
start, a piece of body, response bytes the kernel would not take, ...), each with the time it
happened, and :meth:`Deadlines.check` answers, for a time and the connection's
:class:`~vestespy._phase.Phase`, whether the client is late: nothing, :attr:`Action.CLOSE`, or
:attr:`Action.TIME_OUT` (answer 408 if no response has started, then close), each with its
reason. The server's sweep calls it, about twice per shortest timeout; nothing here reads a
clock, so every rule is tested on a fake one. The rules, in the order they are checked (the
first that expires wins; "past" means strictly greater than the limit):

* **Head deadline** (``header_timeout``): the clock runs from the accept for the first request
  (so it covers the TLS handshake and a client that never sends a byte), and from the first
  byte of a later head; it stops when the request starts. Past it, unless the connection
  lingers: :attr:`Action.TIME_OUT` if any byte of the head came (:data:`HEAD_TIMED_OUT`), else
  a silent :attr:`Action.CLOSE` (:data:`NO_REQUEST`: nobody waits for an answer).
* **Minimum body rate** (``min_body_rate``, 0 turns it off; see :mod:`vestespy._rates`): the
  meter is reset at each request start, counts every piece of body, and runs from the read
  that brought the first body byte. It stops while the listeners are behind (the server, not
  the client, holds things up) and runs again when they catch up, if a byte came. It applies
  only while the body is still coming (:attr:`~vestespy._phase.Phase.READING_BODY`):
  :data:`BODY_TOO_SLOW`, a :attr:`Action.TIME_OUT`. Not while lingering after an early
  response: the bytes read then are discarded uncounted, so the meter would take a client
  still sending at full speed for a stalled one (``linger_timeout`` governs that end).
* **Minimum response rate** (``min_response_rate``, 0 turns it off): the meter runs from the
  send that left bytes the kernel would not take (a backlog), counts what later sends take
  from it, and is reset once the backlog is gone: :data:`RESPONSE_TOO_SLOW`, a
  :attr:`Action.CLOSE` worth a log line.
* **Silence** on :attr:`Deadlines.last_active` (the last read, the last write progress, the
  moment the queued responses were all sent, the start of lingering), with the limit that
  applies (:meth:`Deadlines.silence_limit`), first match wins: lingering, ``linger_timeout``;
  response bytes the client leaves unread (a backlog), ``client_timeout``; no request under
  way (handshaking, idle, reading a head), ``keep_alive_timeout``; listeners behind on a body,
  or the whole request received and its response not sent, none (the application owes the
  next move); otherwise (the rest of the body is late), ``client_timeout``.

Bytes of the TLS handshake and bytes discarded while lingering are not progress: the handshake
counts under ``header_timeout`` and keep-alive from the accept, ``linger_timeout`` from the
FIN. An :attr:`Action.TIME_OUT` is reported once: the deadline that expired is disarmed (until
the next head, or the next request's body), so a 408 still in the kernel's way is not timed
out again at the next sweep; the silence and the response rate rule then govern its sending.
A :attr:`Action.CLOSE` ends the connection, so it needs no disarming.

The :class:`Expiry` values are module constants: a check allocates nothing. Loop thread only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ._phase import (
    AWAITING_RESPONSE,
    CLOSED,
    HANDSHAKING,
    IDLE,
    LINGERING,
    READING_BODY,
    READING_HEAD,
    Phase,
)
from ._rates import RateMeter
from .options import ServerOptions

__all__ = [
    "BODY_LATE",
    "BODY_TOO_SLOW",
    "CLOSE",
    "HEAD_TIMED_OUT",
    "KEEP_ALIVE_OVER",
    "LINGER_OVER",
    "NO_REQUEST",
    "RESPONSE_TOO_SLOW",
    "RESPONSE_UNREAD",
    "TIME_OUT",
    "Action",
    "Deadlines",
    "Expiry",
]


class Action(enum.Enum):
    """What the connection does about a deadline that expired."""

    #: Close the connection (FIN and lingering are for responses that ended normally).
    CLOSE = "close"
    #: Answer 408 (Request Timeout) with the reason if no response has started, then close.
    TIME_OUT = "time out"


CLOSE: Final = Action.CLOSE  # the members as constants: see _phase
TIME_OUT: Final = Action.TIME_OUT


# Its field types are imported at run time: compiled by mypyc, the dataclass reads the classes
# of its annotations when the module loads.
@dataclass(frozen=True, slots=True)
class Expiry:
    """A deadline that expired: what to do, and why."""

    action: Action
    #: For :attr:`Action.TIME_OUT` the 408's reason; for :attr:`Action.CLOSE` a log line's.
    reason: str
    #: Whether the close is worth a log line (the 408s are logged as rejected requests).
    logged: bool = False


# The phases as module constants: an enum member is an attribute of its class, several times
# slower to look up than a global in pure Python (3.11), and these are read on every read.

#: The head took longer than ``header_timeout`` (some of it came).
HEAD_TIMED_OUT: Final = Expiry(Action.TIME_OUT, "request head not received within header_timeout")
#: Not one byte of a request within ``header_timeout`` (nor a TLS handshake, maybe).
NO_REQUEST: Final = Expiry(Action.CLOSE, "no request within header_timeout")
#: The request body came slower than ``min_body_rate``.
BODY_TOO_SLOW: Final = Expiry(Action.TIME_OUT, "request body slower than min_body_rate")
#: The client read its response slower than ``min_response_rate``.
RESPONSE_TOO_SLOW: Final = Expiry(
    Action.CLOSE, "response read slower than min_response_rate", logged=True
)
#: The client did not close within ``linger_timeout`` of the FIN.
LINGER_OVER: Final = Expiry(Action.CLOSE, "client silent past linger_timeout while lingering")
#: The client left response bytes unread for ``client_timeout``.
RESPONSE_UNREAD: Final = Expiry(Action.CLOSE, "response left unread past client_timeout")
#: No request came for ``keep_alive_timeout``.
KEEP_ALIVE_OVER: Final = Expiry(Action.CLOSE, "idle past keep_alive_timeout")
#: The rest of the request body did not come for ``client_timeout``.
BODY_LATE: Final = Expiry(Action.CLOSE, "request body silent past client_timeout")


def _silence_rule(phase: Phase, listeners_behind: bool, unread_output: bool) -> Expiry | None:
    """The silence rule that applies (its limit: :meth:`Deadlines._limit`), or None."""
    if phase is LINGERING:
        return LINGER_OVER
    if phase is CLOSED:
        return None
    if unread_output:
        return RESPONSE_UNREAD  # the client is not reading its response
    if phase is IDLE or phase is READING_HEAD or phase is HANDSHAKING:
        return KEEP_ALIVE_OVER
    if listeners_behind or phase is AWAITING_RESPONSE:
        return None  # the listeners are behind, or still preparing the response
    return BODY_LATE  # the rest of the request is late


class Deadlines:
    """The deadlines of one connection; every method takes the time it happened (loop thread).

    Args:
        options: The server's options (the timeouts and rates are read at each check).
        now: When the connection was accepted: the first head's clock starts here.
    """

    __slots__ = (
        "_body_meter",
        "_head_bytes",
        "_head_since",
        "_head_timing",
        "_last_active",
        "_options",
        "_response_meter",
    )

    def __init__(self, options: ServerOptions, now: float) -> None:
        self._options = options
        self._last_active = now
        # Whether a head's clock runs (not from a request's start to the next head's first
        # byte), since when, and whether any byte of that head came. A flag beside a plain
        # float rather than None: compiled, the time stays unboxed (no allocation per head).
        self._head_timing = True
        self._head_since = now
        self._head_bytes = False
        self._body_meter = RateMeter()  # the request body being received
        self._response_meter = RateMeter()  # response bytes the kernel would not take

    @property
    def last_active(self) -> float:
        """When the client last did something, or the last response went out."""
        return self._last_active

    def silent_for(self, now: float) -> float:
        """Seconds since :attr:`last_active` (a draining server closes idle connections)."""
        return now - self._last_active

    # -- input ---------------------------------------------------------------------------------

    def input_received(self, now: float, phase: Phase) -> None:
        """Bytes of a request came (read at ``now``, in ``phase``, before they were parsed).

        After a completed TLS handshake pass the phase it moved to; in
        :attr:`~vestespy._phase.Phase.HANDSHAKING`, :attr:`~vestespy._phase.Phase.LINGERING`
        and :attr:`~vestespy._phase.Phase.CLOSED` bytes are not progress and nothing changes.
        """
        if phase is IDLE or phase is READING_HEAD:
            self._last_active = now
            if not self._head_timing:
                self._head_timing = True
                self._head_since = now  # the first byte of a later head
            self._head_bytes = True
        elif phase is READING_BODY or phase is AWAITING_RESPONSE:
            self._last_active = now

    def head_age(self, now: float) -> float:
        """Seconds since the last head began: its first byte, or the accept for a
        connection's first request (the access log's duration of a refused head)."""
        return now - self._head_since

    def request_started(self) -> None:
        """A request head is complete: the head clock stops, the body meter starts anew."""
        self._head_timing = False
        self._head_bytes = False
        self._body_meter.reset()

    def body_received(self, size: int, paused: bool) -> None:
        """``size`` bytes of body were parsed; ``paused``: the listeners are behind.

        The meter runs from the read that brought the first body byte (:attr:`last_active`),
        not from when the piece is handed on.
        """
        meter = self._body_meter
        meter.add(size)
        if not paused and not meter.running:
            meter.start(self._last_active)

    def body_paused(self, now: float) -> None:
        """The listeners fell behind on the body: reading stops, and so does the meter."""
        self._body_meter.stop(now)

    def body_resumed(self, now: float) -> None:
        """The listeners caught up: the meter runs again if any body came."""
        meter = self._body_meter
        if meter.bytes:
            meter.start(now)

    # -- output --------------------------------------------------------------------------------

    def responses_sent(self, now: float) -> None:
        """The queued responses were all handed to the kernel: keep-alive counts from here."""
        self._last_active = now

    def output_backlogged(self, now: float) -> None:
        """A send left bytes the kernel would not take: the response meter runs (if not yet)."""
        self._response_meter.start(now)

    def output_progress(self, now: float, sent: int) -> None:
        """The kernel took ``sent`` bytes of the backlog (the client reads)."""
        self._last_active = now
        self._response_meter.add(sent)

    def output_drained(self) -> None:
        """The backlog is gone: the client read everything; the next backlog is a new period."""
        self._response_meter.reset()

    def lingering_started(self, now: float) -> None:
        """FIN sent after the last response: ``linger_timeout`` counts from here."""
        self._last_active = now

    # -- the rules -----------------------------------------------------------------------------

    def silence_limit(
        self, phase: Phase, listeners_behind: bool, unread_output: bool
    ) -> float | None:
        """How long the client may stay silent now; None while the application owes the move.

        Args:
            phase: The connection's phase.
            listeners_behind: Reading is paused because the listeners are behind on a body.
            unread_output: Response bytes wait for the client to read (a send backlog).
        """
        rule = _silence_rule(phase, listeners_behind, unread_output)
        return None if rule is None else self._limit(rule)

    def check(
        self, now: float, phase: Phase, listeners_behind: bool, unread_output: bool
    ) -> Expiry | None:
        """The first deadline past at ``now`` (see the module's theory of operation), or None.

        A :attr:`Action.TIME_OUT` disarms its deadline: it is reported once.

        Args:
            now: The time.
            phase: The connection's phase.
            listeners_behind: Reading is paused because the listeners are behind on a body.
            unread_output: Response bytes wait for the client to read (a send backlog).
        """
        if phase is CLOSED:
            return None
        options = self._options
        if (
            self._head_timing
            and now - self._head_since > options.header_timeout
            and phase is not LINGERING
        ):
            self._head_timing = False
            return HEAD_TIMED_OUT if self._head_bytes else NO_REQUEST
        rate = options.min_body_rate
        if (
            rate
            and phase is READING_BODY
            and self._body_meter.too_slow(now, rate, options.rate_grace_period)
        ):
            self._body_meter.reset()
            return BODY_TOO_SLOW
        rate = options.min_response_rate
        meter = self._response_meter
        if rate and meter.running and meter.too_slow(now, rate, options.rate_grace_period):
            return RESPONSE_TOO_SLOW
        rule = _silence_rule(phase, listeners_behind, unread_output)
        if rule is not None and now - self._last_active > self._limit(rule):
            return rule
        return None

    def _limit(self, rule: Expiry) -> float:
        options = self._options
        if rule is LINGER_OVER:
            return options.linger_timeout
        if rule is KEEP_ALIVE_OVER:
            return options.keep_alive_timeout
        return options.client_timeout  # RESPONSE_UNREAD, BODY_LATE
