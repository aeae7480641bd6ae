"""Warnings for listeners that return a value and, in debug mode, requests left unanswered."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest

from vestespy import EventEmitter
from vestespy._mistakes import UnansweredWatch, describe_listener, returned
from vestespy.request import Request
from vestespy.response import Response


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "vestespy.error" and r.levelno == logging.WARNING
    ]


def test_returned_value_warns_once_per_function(caplog: pytest.LogCaptureFixture) -> None:
    def view(ev: object, n: int) -> str:
        return f"body {n}"

    emitter: EventEmitter[str] = EventEmitter()
    emitter.on("tick", view)
    with caplog.at_level(logging.WARNING, "vestespy.error"):
        emitter.emit("tick", 1)
        emitter.emit("tick", 2)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "test_mistakes.test_returned_value_warns_once_per_function.<locals>.view" in warnings[0]
    assert "returned 'body 1' (a str); the returned value is ignored" in warnings[0]


def test_none_is_silent_and_closures_share_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    def make(n: int) -> Any:
        return lambda ev: n  # a new function object per call, one code object

    emitter: EventEmitter[str] = EventEmitter()
    emitter.on("quiet", lambda ev: None)
    for n in range(3):
        emitter.on("loud", make(n))
    with caplog.at_level(logging.WARNING, "vestespy.error"):
        emitter.emit("quiet")
        emitter.emit("loud")
    assert len(_warnings(caplog)) == 1


def test_once_listener_is_named(caplog: pytest.LogCaptureFixture) -> None:
    def answer_once(ev: object) -> int:
        return 42

    emitter: EventEmitter[str] = EventEmitter()
    emitter.once("x", answer_once)
    emitter.on("x", lambda ev: None)  # two listeners: the loop path
    with caplog.at_level(logging.WARNING, "vestespy.error"):
        emitter.emit("x")
    (warning,) = _warnings(caplog)
    assert "answer_once returned 42 (a int)" in warning


def test_describe_listener() -> None:
    class Handler:
        def method(self) -> None:
            pass

    assert describe_listener(Handler().method).endswith("Handler.method")
    assert describe_listener(len) == "builtins.len"
    assert describe_listener(object()).startswith("<object object")


def test_long_values_are_shortened(caplog: pytest.LogCaptureFixture) -> None:
    def big() -> None:
        pass

    with caplog.at_level(logging.WARNING, "vestespy.error"):
        returned(big, "x" * 1000)
    (warning,) = _warnings(caplog)
    assert "'xxx" in warning
    assert "..." in warning
    assert len(warning) < 300


class _FakeResponse:
    def __init__(self) -> None:
        self.headers_sent = False
        self._channel = object()


class _FakeRequest:
    method = "GET"
    target = "/slow?x=1"


def test_unanswered_watch_on_a_fake_clock(caplog: pytest.LogCaptureFixture) -> None:
    watch = UnansweredWatch(10.0)
    request = cast(Request, _FakeRequest())
    answered_later, never, gone = (_FakeResponse() for _ in range(3))
    watch.add(request, cast(Response, answered_later), now=100.0)
    watch.add(request, cast(Response, never), now=101.0)
    watch.add(request, cast(Response, gone), now=102.0)
    assert watch.due(109.9) == []
    assert len(watch) == 3
    answered_later.headers_sent = True
    assert watch.due(110.0) == []  # answered: forgotten, not reported
    assert len(watch) == 2
    from vestespy.response import _CLOSED_CHANNEL

    gone._channel = _CLOSED_CHANNEL  # the exchange is over (the client left)
    with caplog.at_level(logging.WARNING, "vestespy.error"):
        watch.report(111.0)
        watch.report(200.0)
    assert _warnings(caplog) == [
        "GET /slow?x=1: no response started 10 s after its listeners returned; answer through"
        " res (this warning is given in debug mode, see unanswered_warning)"
    ]
    assert len(watch) == 0
