"""The WebSocket's deadline rules on a fake clock (the boundaries: just before, at, after)."""

from __future__ import annotations

from vestespy._ws_deadlines import CLOSE_OVER, PEER_DEAD, PING_DUE, WebSocketDeadlines


def test_ping_due_at_the_interval() -> None:
    rules = WebSocketDeadlines(20.0, 5.0, 10.0, now=100.0)
    assert rules.check(119.999) is None
    assert rules.check(120.0) is PING_DUE


def test_pong_timeout_then_a_pong_clears_it() -> None:
    rules = WebSocketDeadlines(20.0, 5.0, 10.0, now=100.0)
    rules.ping_sent(120.0)
    assert rules.check(125.0) is None  # past means strictly greater
    assert rules.check(125.001) is PEER_DEAD
    rules.pong_received()
    assert rules.check(125.001) is None
    assert rules.check(140.0) is PING_DUE


def test_close_timeout_wins_and_starts_once() -> None:
    rules = WebSocketDeadlines(20.0, 5.0, 10.0, now=0.0)
    rules.ping_sent(1.0)
    rules.close_started(2.0)
    rules.close_started(9.0)  # the clock does not restart
    assert rules.check(12.0) is None
    assert rules.check(12.001) is CLOSE_OVER


def test_none_turns_pings_and_pong_timeout_off() -> None:
    rules = WebSocketDeadlines(None, None, 10.0, now=0.0)
    assert rules.check(1e9) is None
    rules.ping_sent(0.0)
    assert rules.check(1e9) is None
    assert rules.shortest() == 10.0
