"""EventEmitter: on, once, off, emit and their ordering."""

from __future__ import annotations

import pytest

from vestespy import EventEmitter


class Emitter(EventEmitter[str]):
    pass


def test_listeners_get_the_emitter_first_then_args_in_order() -> None:
    emitter = Emitter()
    calls: list[tuple[object, ...]] = []
    emitter.on("x", lambda ev, *args: calls.append(("a", ev, *args)))
    emitter.on("x", lambda ev, *args: calls.append(("b", ev, *args)))
    assert emitter.emit("x", 1, 2) is True
    assert calls == [("a", emitter, 1, 2), ("b", emitter, 1, 2)]


def test_emit_without_listeners_returns_false() -> None:
    assert Emitter().emit("nothing") is False


def test_once_runs_once() -> None:
    emitter = Emitter()
    calls: list[int] = []
    emitter.once("x", lambda ev, n: calls.append(n))
    emitter.emit("x", 1)
    emitter.emit("x", 2)
    assert calls == [1]
    assert not emitter.has_listeners("x")


def test_off_removes_one_registration_and_once_wrappers() -> None:
    emitter = Emitter()
    calls: list[str] = []

    def listener(ev: object) -> None:
        calls.append("l")

    emitter.on("x", listener).on("x", listener)
    emitter.off("x", listener)
    emitter.emit("x")
    assert calls == ["l"]
    emitter.off("x", listener)
    emitter.once("x", listener)
    emitter.off("x", listener)  # removes the once-wrapper by its original listener
    assert emitter.emit("x") is False
    emitter.off("never", listener)  # unknown event: no error


def test_listener_removed_during_emit_still_sees_the_current_emission() -> None:
    emitter = Emitter()
    calls: list[str] = []

    def first(ev: object) -> None:
        calls.append("first")
        emitter.off("x", second)

    def second(ev: object) -> None:
        calls.append("second")

    emitter.on("x", first).on("x", second)
    emitter.emit("x")
    emitter.emit("x")
    assert calls == ["first", "second", "first"]


def test_listeners_lists_originals() -> None:
    emitter = Emitter()

    def a(ev: object) -> None: ...

    def b(ev: object) -> None: ...

    emitter.on("x", a).once("x", b)
    assert emitter.listeners("x") == [a, b]


def test_exception_propagates_from_emit() -> None:
    emitter = Emitter()

    def boom(ev: object) -> None:
        raise KeyError("boom")

    emitter.on("x", boom)
    with pytest.raises(KeyError):
        emitter.emit("x")


def test_non_callable_listener_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="callable"):
        Emitter().on("x", "not a function")  # type: ignore[arg-type]
