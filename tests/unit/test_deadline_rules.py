"""Every deadline of _deadlines.Deadlines on a fake clock (plain floats, no sockets).

Each rule at its boundary: just before, exactly at (not past: the limits are strict) and just
after; reset by progress; and against the other rules, whichever comes first. The timeouts are
distinct powers of two and fractions of them, so every sum below is exact in binary and the
rule that fired is known from its limit alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from vestespy import ServerOptions
from vestespy._deadlines import (
    BODY_LATE,
    BODY_TOO_SLOW,
    HEAD_TIMED_OUT,
    KEEP_ALIVE_OVER,
    LINGER_OVER,
    NO_REQUEST,
    RESPONSE_TOO_SLOW,
    RESPONSE_UNREAD,
    Action,
    Deadlines,
    Expiry,
)
from vestespy._phase import Phase

HEADER = 16.0
KEEP_ALIVE = 32.0
CLIENT = 64.0
LINGER = 2.0
GRACE = 4.0
RATE = 100.0  # bytes per second, both directions
JUST = 0.25  # "just before" and "just after" a boundary

ACCEPT = 1000.0

IDLE, HEAD, BODY, AWAITING = (
    Phase.IDLE,
    Phase.READING_HEAD,
    Phase.READING_BODY,
    Phase.AWAITING_RESPONSE,
)


def options(**overrides: Any) -> ServerOptions:
    values: dict[str, Any] = {
        "header_timeout": HEADER,
        "keep_alive_timeout": KEEP_ALIVE,
        "client_timeout": CLIENT,
        "linger_timeout": LINGER,
        "min_body_rate": RATE,
        "min_response_rate": RATE,
        "rate_grace_period": GRACE,
        **overrides,
    }
    return ServerOptions(**values)


def deadlines(**overrides: Any) -> Deadlines:
    return Deadlines(options(**overrides), ACCEPT)


def check(
    d: Deadlines, now: float, phase: Phase, behind: bool = False, unread: bool = False
) -> Expiry | None:
    return d.check(now, phase, behind, unread)


def boundary(
    d: Deadlines,
    at: float,
    phase: Phase,
    expected: Expiry,
    behind: bool = False,
    unread: bool = False,
) -> None:
    """Nothing just before ``at`` nor exactly at it; ``expected`` just after."""
    assert check(d, at - JUST, phase, behind, unread) is None
    assert check(d, at, phase, behind, unread) is None
    assert check(d, at + JUST, phase, behind, unread) is expected


def in_body(d: Deadlines, read_at: float, size: int = 0) -> None:
    """A head read at ``read_at`` completes; ``size`` bytes of body come with it."""
    d.input_received(read_at, IDLE)
    d.request_started()
    if size:
        d.body_received(size, paused=False)


# == the expiries ===============================================================================


def test_the_408_reasons_are_those_connection_sends() -> None:
    for expiry, action, reason, logged in (
        (HEAD_TIMED_OUT, Action.TIME_OUT, "request head not received within header_timeout", False),
        (BODY_TOO_SLOW, Action.TIME_OUT, "request body slower than min_body_rate", False),
        (RESPONSE_TOO_SLOW, Action.CLOSE, "response read slower than min_response_rate", True),
    ):
        assert (expiry.action, expiry.reason, expiry.logged) == (action, reason, logged)
    # Every silent close is a plain close, not logged (as before).
    for expiry in (NO_REQUEST, LINGER_OVER, RESPONSE_UNREAD, KEEP_ALIVE_OVER, BODY_LATE):
        assert (expiry.action, expiry.logged) == (Action.CLOSE, False)


def test_nothing_expires_on_a_closed_connection() -> None:
    d = deadlines()
    d.input_received(ACCEPT, IDLE)
    assert check(d, ACCEPT + 10 * CLIENT, Phase.CLOSED, unread=True) is None
    assert d.silence_limit(Phase.CLOSED, False, True) is None


# == the head deadline ==========================================================================


def test_a_silent_new_connection_is_closed_at_header_timeout_without_a_408() -> None:
    boundary(deadlines(), ACCEPT + HEADER, IDLE, NO_REQUEST)


def test_the_first_head_counts_from_the_accept_not_from_its_first_byte() -> None:
    d = deadlines()
    d.input_received(ACCEPT + 10, IDLE)
    d.input_received(ACCEPT + 15, HEAD)  # the silence is refreshed; the head clock is not
    boundary(d, ACCEPT + HEADER, HEAD, HEAD_TIMED_OUT)


def test_a_stalled_tls_handshake_meets_header_timeout_silently() -> None:
    d = deadlines()
    # Handshake records are not request bytes: no 408 (it could not be sent anyway), and
    # they are not progress either.
    d.input_received(ACCEPT + 5, Phase.HANDSHAKING)
    assert d.last_active == ACCEPT
    boundary(d, ACCEPT + HEADER, Phase.HANDSHAKING, NO_REQUEST)


def test_the_handshake_counts_under_the_first_heads_deadline() -> None:
    d = deadlines()
    d.input_received(ACCEPT + 12, IDLE)  # the handshake ended, the first request bytes came
    boundary(d, ACCEPT + HEADER, HEAD, HEAD_TIMED_OUT)


def test_a_head_completed_in_time_stops_the_clock() -> None:
    d = deadlines(min_body_rate=0)
    d.input_received(ACCEPT + HEADER - JUST, HEAD)
    d.request_started()
    assert check(d, ACCEPT + HEADER + 1, BODY) is None
    assert check(d, ACCEPT + HEADER + 1, AWAITING) is None


def test_a_later_head_counts_from_its_first_byte() -> None:
    d = deadlines()
    in_body(d, ACCEPT + 1)
    d.responses_sent(ACCEPT + 2)
    # Idle between requests past header_timeout: only keep-alive applies.
    assert check(d, ACCEPT + 2 + HEADER + 1, IDLE) is None
    first_byte = ACCEPT + 20
    d.input_received(first_byte, IDLE)
    d.input_received(first_byte + 10, HEAD)  # later bytes of the same head: the clock runs on
    boundary(d, first_byte + HEADER, HEAD, HEAD_TIMED_OUT)


def test_bytes_read_while_a_request_is_under_way_do_not_start_the_head_clock() -> None:
    # A pipelined head read while the response is owed starts its clock only with a read
    # once the connection is idle again.
    d = deadlines(keep_alive_timeout=1000.0)
    in_body(d, ACCEPT + 1)
    d.input_received(ACCEPT + 2, AWAITING)
    d.input_received(ACCEPT + 3, BODY)
    assert d.last_active == ACCEPT + 3
    d.responses_sent(ACCEPT + 4)
    assert check(d, ACCEPT + 4 + HEADER * 2, HEAD) is None


def test_the_head_408_is_reported_once() -> None:
    d = deadlines()
    d.input_received(ACCEPT + 1, IDLE)
    assert check(d, ACCEPT + HEADER + JUST, HEAD) is HEAD_TIMED_OUT
    assert check(d, ACCEPT + HEADER + 2 * JUST, HEAD) is None
    # A new head after it starts a new clock.
    d.input_received(ACCEPT + 20, HEAD)
    boundary(d, ACCEPT + 20 + HEADER, HEAD, HEAD_TIMED_OUT)


def test_lingering_overrides_the_head_deadline() -> None:
    d = deadlines()
    d.input_received(ACCEPT + 1, IDLE)  # a head that was rejected, say
    d.lingering_started(ACCEPT + HEADER - 1)
    boundary(d, ACCEPT + HEADER - 1 + LINGER, Phase.LINGERING, LINGER_OVER)


@pytest.mark.parametrize(
    ("header", "keep_alive", "trickle", "expected", "at"),
    [
        # A silent client: whichever timeout is shorter.
        (HEADER, KEEP_ALIVE, False, NO_REQUEST, HEADER),
        (KEEP_ALIVE, HEADER, False, KEEP_ALIVE_OVER, HEADER),
        # A byte a second keeps the silence away: the head deadline trips, whatever its length.
        (HEADER, 2.0, True, HEAD_TIMED_OUT, HEADER),
        (KEEP_ALIVE, 2.0, True, HEAD_TIMED_OUT, KEEP_ALIVE),
    ],
    ids=["silent-head-first", "silent-keep-alive-first", "trickle-head", "trickle-long-head"],
)
def test_head_deadline_against_keep_alive(
    header: float, keep_alive: float, trickle: bool, expected: Expiry, at: float
) -> None:
    d = deadlines(header_timeout=header, keep_alive_timeout=keep_alive)
    phase = IDLE
    if trickle:
        for second in range(1, int(at) + 1):
            assert check(d, ACCEPT + second - JUST, phase) is None
            d.input_received(ACCEPT + second, phase)
            phase = HEAD
    boundary(d, ACCEPT + at, phase, expected)


# == the minimum body rate ======================================================================


def test_a_body_below_min_body_rate_gets_a_408_after_the_grace_period() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 50)  # 50 B cover half a second at 100 B/s: the grace period decides
    boundary(d, ACCEPT + GRACE, BODY, BODY_TOO_SLOW)


def test_the_average_rate_boundary() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 800)  # 800 B at 100 B/s: 8 s
    assert check(d, ACCEPT + 8 - JUST, BODY) is None
    assert check(d, ACCEPT + 8, BODY) is None  # exactly the rate
    assert check(d, ACCEPT + 8 + JUST, BODY) is BODY_TOO_SLOW


def test_body_progress_keeps_the_rate_up() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 400)
    for second in range(4, 40, 2):  # 200 B every 2 s, as read
        assert check(d, ACCEPT + second, BODY) is None
        d.input_received(ACCEPT + second, BODY)
        d.body_received(200, paused=False)
    boundary(d, ACCEPT + 40, BODY, BODY_TOO_SLOW)  # 4,000 B: 40 s worth


def test_the_body_meter_runs_from_the_read_of_its_first_byte() -> None:
    d = deadlines()
    d.input_received(ACCEPT, IDLE)
    d.request_started()
    # The head came alone; the first body byte is read 10 s later and handed on later still.
    d.input_received(ACCEPT + 10, BODY)
    d.body_received(100, paused=False)  # 1 s worth
    boundary(d, ACCEPT + 10 + GRACE, BODY, BODY_TOO_SLOW)


def test_min_body_rate_applies_only_while_the_body_is_coming() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 1)
    for phase in (IDLE, HEAD, AWAITING, Phase.LINGERING, Phase.HANDSHAKING):
        assert check(d, ACCEPT + GRACE + 1, phase) is not BODY_TOO_SLOW
    assert check(d, ACCEPT + GRACE + 1, BODY) is BODY_TOO_SLOW


def test_zero_turns_min_body_rate_off() -> None:
    d = deadlines(min_body_rate=0)
    in_body(d, ACCEPT, 1)
    boundary(d, ACCEPT + CLIENT, BODY, BODY_LATE)  # only the silence is left


def test_a_new_request_resets_the_body_meter() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 1)
    d.responses_sent(ACCEPT + 3)
    in_body(d, ACCEPT + 3, 500)  # the next request: 5 s worth from here
    boundary(d, ACCEPT + 8, BODY, BODY_TOO_SLOW)


def test_the_body_408_is_reported_once() -> None:
    d = deadlines()
    in_body(d, ACCEPT, 1)
    assert check(d, ACCEPT + GRACE + JUST, BODY) is BODY_TOO_SLOW
    # The 408 may wait in the kernel's way: the silence governs it now, not the rate again.
    assert check(d, ACCEPT + GRACE + 1, BODY, unread=True) is None
    boundary(d, ACCEPT + CLIENT, BODY, RESPONSE_UNREAD, unread=True)


def test_listeners_behind_stop_the_meter_and_the_silence() -> None:
    # (The silence counts from the last read, not from the resume: the bytes that waited in
    # the kernel meanwhile are read at once, and they refresh it.)
    d = deadlines(client_timeout=2000.0)
    in_body(d, ACCEPT, 200)  # 2 s worth
    d.body_paused(ACCEPT + 1)  # the listeners fall behind; 1 s of running time so far
    assert d.silence_limit(BODY, True, False) is None
    assert check(d, ACCEPT + 1000, BODY, behind=True) is None
    d.body_resumed(ACCEPT + 1000)
    # 200 B over 1 s before the pause and what runs from the resume: 2 s in all.
    assert check(d, ACCEPT + 1000 + GRACE - 1, BODY) is None
    assert check(d, ACCEPT + 1000 + GRACE - 1 + JUST, BODY) is BODY_TOO_SLOW


def test_a_piece_parsed_while_paused_does_not_start_the_meter() -> None:
    d = deadlines(client_timeout=1000.0)
    in_body(d, ACCEPT)
    d.body_received(10, paused=True)
    assert check(d, ACCEPT + 100, BODY, behind=True) is None
    d.body_resumed(ACCEPT + 100)  # it has bytes: it runs from the resume
    boundary(d, ACCEPT + 100 + GRACE, BODY, BODY_TOO_SLOW)


def test_a_resume_before_any_body_leaves_the_meter_stopped() -> None:
    d = deadlines(client_timeout=1000.0)
    in_body(d, ACCEPT)
    d.body_resumed(ACCEPT + 1)
    assert check(d, ACCEPT + 100, BODY) is None
    d.input_received(ACCEPT + 100, BODY)
    d.body_received(1, paused=False)  # the first byte starts it
    boundary(d, ACCEPT + 100 + GRACE, BODY, BODY_TOO_SLOW)


@pytest.mark.parametrize(
    ("client", "trickle", "expected", "at"),
    [
        # Silent mid-body: client_timeout when shorter than the grace period.
        (2.0, False, BODY_LATE, 2.0),
        # Silent, client_timeout longer: the rate rule after the grace period.
        (CLIENT, False, BODY_TOO_SLOW, GRACE),
        # A byte a second: the silence never trips, the rate rule does.
        (2.0, True, BODY_TOO_SLOW, GRACE),
    ],
    ids=["silence-first", "rate-first", "trickle"],
)
def test_min_body_rate_against_client_timeout(
    client: float, trickle: bool, expected: Expiry, at: float
) -> None:
    d = deadlines(client_timeout=client)
    in_body(d, ACCEPT, 1)
    if trickle:
        for second in range(1, int(at) + 1):
            assert check(d, ACCEPT + second - JUST, BODY) is None
            d.input_received(ACCEPT + second, BODY)
            d.body_received(1, paused=False)
    boundary(d, ACCEPT + at, BODY, expected)


# == the minimum response rate ==================================================================


def test_a_response_left_unread_is_closed_at_min_response_rate() -> None:
    d = deadlines()
    in_body(d, ACCEPT)
    d.output_backlogged(ACCEPT + 1)
    boundary(d, ACCEPT + 1 + GRACE, AWAITING, RESPONSE_TOO_SLOW, unread=True)


def test_a_backlog_already_metered_keeps_its_start() -> None:
    d = deadlines()
    d.output_backlogged(ACCEPT + 1)
    d.output_backlogged(ACCEPT + 3)  # another send that left a backlog
    boundary(d, ACCEPT + 1 + GRACE, IDLE, RESPONSE_TOO_SLOW, unread=True)


def test_write_progress_counts_for_the_response_rate() -> None:
    d = deadlines()
    d.output_backlogged(ACCEPT)
    for second in range(1, 10):
        d.output_progress(ACCEPT + second, 100)  # exactly the rate
        assert check(d, ACCEPT + second, IDLE, unread=True) is None
    assert d.last_active == ACCEPT + 9
    assert check(d, ACCEPT + 9 + JUST, IDLE, unread=True) is RESPONSE_TOO_SLOW


def test_a_drained_backlog_resets_the_response_meter() -> None:
    d = deadlines()
    d.output_backlogged(ACCEPT)
    d.output_progress(ACCEPT + 3, 10)
    d.output_drained()  # the client read everything
    assert check(d, ACCEPT + 3 + GRACE + 1, IDLE) is None
    d.output_backlogged(ACCEPT + 10)  # a new period
    boundary(d, ACCEPT + 10 + GRACE, IDLE, RESPONSE_TOO_SLOW, unread=True)


def test_zero_turns_min_response_rate_off() -> None:
    d = deadlines(min_response_rate=0, header_timeout=1000.0)
    d.output_backlogged(ACCEPT)
    boundary(d, ACCEPT + CLIENT, IDLE, RESPONSE_UNREAD, unread=True)


@pytest.mark.parametrize(
    ("client", "expected", "at"),
    [(2.0, RESPONSE_UNREAD, 2.0), (CLIENT, RESPONSE_TOO_SLOW, GRACE)],
    ids=["silence-first", "rate-first"],
)
def test_min_response_rate_against_client_timeout(
    client: float, expected: Expiry, at: float
) -> None:
    d = deadlines(client_timeout=client)
    d.responses_sent(ACCEPT)
    d.output_backlogged(ACCEPT)
    boundary(d, ACCEPT + at, IDLE, expected, unread=True)


# == silence ====================================================================================


@pytest.mark.parametrize(
    ("phase", "behind", "unread", "limit", "expected"),
    [
        (Phase.LINGERING, False, False, LINGER, LINGER_OVER),
        (Phase.LINGERING, True, True, LINGER, LINGER_OVER),  # lingering overrides
        (Phase.HANDSHAKING, False, False, KEEP_ALIVE, KEEP_ALIVE_OVER),
        (IDLE, False, False, KEEP_ALIVE, KEEP_ALIVE_OVER),
        (HEAD, False, False, KEEP_ALIVE, KEEP_ALIVE_OVER),
        # Response bytes the client does not read: client_timeout, in every other phase.
        (IDLE, False, True, CLIENT, RESPONSE_UNREAD),
        (HEAD, False, True, CLIENT, RESPONSE_UNREAD),
        (BODY, True, True, CLIENT, RESPONSE_UNREAD),
        (AWAITING, False, True, CLIENT, RESPONSE_UNREAD),
        # The application owes the next move: no limit.
        (BODY, True, False, None, None),
        (AWAITING, False, False, None, None),
        (AWAITING, True, False, None, None),
        # The rest of the body is late (also when the response went out before it).
        (BODY, False, False, CLIENT, BODY_LATE),
        (Phase.CLOSED, False, True, None, None),
    ],
)
def test_the_silence_limit_of_each_phase(
    phase: Phase, behind: bool, unread: bool, limit: float | None, expected: Expiry | None
) -> None:
    d = deadlines(header_timeout=1000.0, min_body_rate=0, min_response_rate=0)
    assert d.silence_limit(phase, behind, unread) == limit
    if limit is None:
        assert check(d, ACCEPT + 10 * CLIENT, phase, behind, unread) is None
    else:
        assert expected is not None
        boundary(d, ACCEPT + limit, phase, expected, behind, unread)


@pytest.mark.parametrize(
    ("progress", "phase"),
    [
        (lambda d, now: d.input_received(now, IDLE), IDLE),
        (lambda d, now: d.input_received(now, HEAD), HEAD),
        (lambda d, now: d.input_received(now, BODY), BODY),
        (lambda d, now: d.responses_sent(now), IDLE),
        (lambda d, now: d.output_progress(now, 1), IDLE),
        (lambda d, now: d.lingering_started(now), Phase.LINGERING),
    ],
    ids=["read-idle", "read-head", "read-body", "responses-sent", "write-progress", "linger"],
)
def test_progress_restarts_the_silence(progress: Any, phase: Phase) -> None:
    d = deadlines(header_timeout=1000.0, min_body_rate=0)
    if phase is BODY:
        in_body(d, ACCEPT)
    limit = d.silence_limit(phase, False, False)
    assert limit is not None
    progress(d, ACCEPT + limit - JUST)
    assert d.last_active == ACCEPT + limit - JUST
    assert d.silent_for(ACCEPT + limit) == JUST
    rule = check(d, ACCEPT + 10 * CLIENT, phase)
    assert rule is not None
    boundary(d, ACCEPT + 2 * limit - JUST, phase, rule)


@pytest.mark.parametrize("phase", [Phase.HANDSHAKING, Phase.LINGERING, Phase.CLOSED])
def test_bytes_that_are_no_request_are_no_progress(phase: Phase) -> None:
    d = deadlines()
    d.input_received(ACCEPT + 1, phase)
    assert d.last_active == ACCEPT
    assert check(d, ACCEPT + HEADER + JUST, IDLE) is NO_REQUEST  # no byte of a head came


def test_keep_alive_counts_from_the_responses_sent_not_from_the_request() -> None:
    d = deadlines()
    in_body(d, ACCEPT)
    # The application takes 30 s; the silence is suspended meanwhile.
    assert check(d, ACCEPT + 30, AWAITING) is None
    d.responses_sent(ACCEPT + 30)
    boundary(d, ACCEPT + 30 + KEEP_ALIVE, IDLE, KEEP_ALIVE_OVER)


def test_a_backlog_switches_keep_alive_to_client_timeout() -> None:
    d = deadlines(min_response_rate=0, keep_alive_timeout=CLIENT * 2)
    in_body(d, ACCEPT)
    d.responses_sent(ACCEPT)
    d.output_backlogged(ACCEPT)
    boundary(d, ACCEPT + CLIENT, IDLE, RESPONSE_UNREAD, unread=True)
    d.output_drained()
    assert check(d, ACCEPT + CLIENT + JUST, IDLE) is None  # keep-alive again


def test_silent_for_measures_from_the_last_activity() -> None:
    # A draining server closes connections silent for its idle time (close_if_idle).
    d = deadlines()
    assert d.silent_for(ACCEPT) == 0
    assert d.silent_for(ACCEPT + 3) == 3
    d.responses_sent(ACCEPT + 2)
    assert d.silent_for(ACCEPT + 3) == 1
