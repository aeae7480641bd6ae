"""Selector backends: the registry and each backend's readiness reporting."""

from __future__ import annotations

import selectors
import socket

import pytest

import vestespy
from vestespy._backends import (
    BACKEND_NAMES,
    EVENT_READ,
    EVENT_WRITE,
    FDLimitError,
    SelectorsBackend,
    available_backends,
    create_backend,
)


def test_available_backends_are_known_and_include_select() -> None:
    names = available_backends()
    assert "select" in names
    assert set(names) <= set(BACKEND_NAMES)
    assert vestespy.available_backends() == names
    for name in names:
        cls_name = {
            "select": "Select",
            "poll": "Poll",
            "epoll": "Epoll",
            "kqueue": "Kqueue",
            "devpoll": "Devpoll",
        }[name]
        assert hasattr(selectors, cls_name + "Selector")


def test_auto_picks_the_first_available() -> None:
    backend = create_backend("auto")
    try:
        assert backend.name == available_backends()[0]
    finally:
        backend.close()


@pytest.mark.parametrize("name", ["bogus", "", "EPOLL"])
def test_unknown_backend_is_a_value_error_naming_the_available_ones(name: str) -> None:
    with pytest.raises(ValueError, match="available: auto") as info:
        create_backend(name)
    for available in available_backends():
        assert available in str(info.value)


@pytest.mark.parametrize("name", [n for n in BACKEND_NAMES if n not in available_backends()])
def test_unavailable_backend_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="not available"):
        create_backend(name)


def test_server_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="available"):
        vestespy.Server(("127.0.0.1", 0), select="nope")


def test_backend_reports_readiness(backend: str) -> None:
    selector = create_backend(backend)
    left, right = socket.socketpair()
    try:
        seen: list[int] = []
        selector.register(left.fileno(), EVENT_READ, seen.append)
        assert selector.select(0) == []
        right.send(b"x")
        ready = selector.select(5)
        assert len(ready) == 1
        callback, events = ready[0]
        callback(events)
        assert seen == [EVENT_READ]
        selector.modify(left.fileno(), EVENT_WRITE, seen.append)
        ready = selector.select(5)
        assert [events for _, events in ready] == [EVENT_WRITE]
        selector.unregister(left.fileno())
        assert selector.select(0) == []
    finally:
        selector.close()
        left.close()
        right.close()


def test_select_refuses_a_descriptor_past_fd_setsize_when_it_is_registered() -> None:
    # select() would raise for every call once one such descriptor is registered; refusing
    # it at registration lets the server turn that one client away.
    backend = SelectorsBackend("select", selectors.SelectSelector())
    try:
        with pytest.raises(FDLimitError, match=r"file descriptor 1024.*FD_SETSIZE \(1024\)"):
            backend.register(1024, EVENT_READ, lambda events: None)
        with pytest.raises(FDLimitError):
            backend.register(5000, EVENT_READ, lambda events: None)
        a, b = socket.socketpair()
        with a, b:
            backend.register(a.fileno(), EVENT_READ, lambda events: None)  # below: accepted
            b.send(b"x")
            assert len(backend.select(1)) == 1
    finally:
        backend.close()


@pytest.mark.skipif("poll" not in vestespy.available_backends(), reason="no poll")
def test_poll_has_no_descriptor_limit() -> None:
    backend = create_backend("poll")
    try:
        backend.register(5000, EVENT_READ, lambda events: None)  # poll takes any number
        backend.unregister(5000)
    finally:
        backend.close()


def test_event_bits_are_the_selectors_modules() -> None:
    # Literals in _backends (so that mypyc inlines them) must stay the standard library's.
    assert (EVENT_READ, EVENT_WRITE) == (selectors.EVENT_READ, selectors.EVENT_WRITE)
