"""Selector backends: one typed interface over the standard library's ``selectors`` classes.

Private: the public face of this module is :func:`vestespy.available_backends` and the
``select=`` argument of :class:`~vestespy.Server`.

A backend is chosen once, by name, when a :class:`~vestespy.Server` is created. The registry
maps each name to the ``selectors`` class that implements it; a name is *available* when this
platform's ``selectors`` module has the class and an instance can be created.
"""

from __future__ import annotations

import selectors
import sys
from collections.abc import Callable
from typing import Final, Protocol

__all__ = [
    "BACKEND_NAMES",
    "EVENT_READ",
    "EVENT_WRITE",
    "Backend",
    "FDLimitError",
    "SelectorsBackend",
    "available_backends",
    "create_backend",
]

#: The file object is ready for reading.
EVENT_READ: Final = 1  # selectors.EVENT_READ, as a literal mypyc inlines
#: The file object is ready for writing.
EVENT_WRITE: Final = 2  # selectors.EVENT_WRITE

#: What a backend calls back with the ready events (``EVENT_READ | EVENT_WRITE`` bits).
ReadyCallback = Callable[[int], object]

#: Every backend name VestesPy knows, best first; ``"auto"`` picks the first available.
BACKEND_NAMES: tuple[str, ...] = ("epoll", "kqueue", "devpoll", "poll", "select")

_SELECTOR_CLASS_NAMES: dict[str, str] = {
    "select": "SelectSelector",
    "poll": "PollSelector",
    "epoll": "EpollSelector",
    "kqueue": "KqueueSelector",
    "devpoll": "DevpollSelector",
}


#: The file descriptors ``select()`` can watch: below FD_SETSIZE, which is 1024 with glibc and
#: on macOS and BSD (Python checks it and raises ``ValueError`` past it, from inside
#: ``select()``). Windows counts sockets instead (512 per call in CPython's build).
SELECT_FD_SETSIZE = 1024
_SELECT_MAX_SOCKETS_WINDOWS = 512


class FDLimitError(ValueError):
    """The backend cannot watch this file descriptor (``select`` past FD_SETSIZE)."""


class Backend(Protocol):
    """What the event loop needs from an I/O readiness backend."""

    #: The backend's registry name, such as ``"epoll"``.
    name: str

    def register(self, fd: int, events: int, callback: ReadyCallback) -> None:
        """Watch ``fd`` for ``events`` and call ``callback(ready_events)`` when ready.

        Raises:
            FDLimitError: The backend cannot watch ``fd`` (``select`` past FD_SETSIZE).
        """

    def modify(self, fd: int, events: int, callback: ReadyCallback) -> None:
        """Change what ``fd`` is watched for."""

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``."""

    def select(self, timeout: float | None) -> list[tuple[ReadyCallback, int]]:
        """Wait up to ``timeout`` seconds (forever if None) and return the ready callbacks."""

    def close(self) -> None:
        """Release the backend's resources."""


class SelectorsBackend:
    """A :class:`Backend` over one ``selectors.BaseSelector`` instance.

    Args:
        name: The registry name.
        selector: The selector to adapt.
    """

    __slots__ = ("_count_limit", "_fd_limit", "_selector", "name")

    def __init__(self, name: str, selector: selectors.BaseSelector) -> None:
        self.name: str = name
        self._selector = selector
        # select() fails as a whole, in the loop, when one fd is past its limit: refuse such
        # an fd when it is registered instead, where the caller can turn the client away.
        self._fd_limit: int | None = None
        self._count_limit: int | None = None
        if isinstance(selector, selectors.SelectSelector):
            if sys.platform == "win32":
                self._count_limit = _SELECT_MAX_SOCKETS_WINDOWS
            else:
                self._fd_limit = SELECT_FD_SETSIZE

    def register(self, fd: int, events: int, callback: ReadyCallback) -> None:
        """Watch ``fd`` for ``events`` and call ``callback(ready_events)`` when ready.

        Raises:
            FDLimitError: The backend cannot watch ``fd`` (``select`` past FD_SETSIZE).
        """
        if self._fd_limit is not None and fd >= self._fd_limit:
            raise FDLimitError(
                f"the {self.name} backend cannot watch file descriptor {fd}: select() only "
                f"takes descriptors below FD_SETSIZE ({self._fd_limit}); use another backend "
                f"(poll, epoll) or a lower max_connections"
            )
        if self._count_limit is not None and len(self._selector.get_map()) >= self._count_limit:
            raise FDLimitError(
                f"the {self.name} backend cannot watch more than {self._count_limit} sockets; "
                f"use a lower max_connections"
            )
        self._selector.register(fd, events, callback)

    def modify(self, fd: int, events: int, callback: ReadyCallback) -> None:
        """Change what ``fd`` is watched for."""
        self._selector.modify(fd, events, callback)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``."""
        self._selector.unregister(fd)

    def select(self, timeout: float | None) -> list[tuple[ReadyCallback, int]]:
        """Wait up to ``timeout`` seconds (forever if None) and return the ready callbacks."""
        return [(key.data, events) for key, events in self._selector.select(timeout)]

    def close(self) -> None:
        """Release the backend's resources."""
        self._selector.close()

    def __repr__(self) -> str:
        return f"<SelectorsBackend {self.name}>"


def _selector_class(name: str) -> type[selectors.BaseSelector] | None:
    cls: type[selectors.BaseSelector] | None = getattr(selectors, _SELECTOR_CLASS_NAMES[name], None)
    return cls


def _works(cls: type[selectors.BaseSelector]) -> bool:
    # A class may exist but fail at run time (a kernel without epoll, a sandbox without
    # /dev/poll): only count what can actually be created.
    try:
        cls().close()
    except OSError:
        return False
    return True


def available_backends() -> list[str]:
    """Return the backend names this platform supports, best first.

    Example:
        >>> import vestespy
        >>> "select" in vestespy.available_backends()
        True
    """
    names = []
    for name in BACKEND_NAMES:
        cls = _selector_class(name)
        if cls is not None and _works(cls):
            names.append(name)
    return names


def create_backend(name: str = "auto") -> SelectorsBackend:
    """Create the backend called ``name``, or the best available one for ``"auto"``.

    Args:
        name: ``"auto"`` or one of :data:`BACKEND_NAMES`.

    Returns:
        A new backend.

    Raises:
        ValueError: ``name`` is unknown or not available on this platform; the message
            names the available ones.
    """
    available = available_backends()
    if name == "auto":
        name = available[0]
    if name not in available:
        known = "unknown" if name not in _SELECTOR_CLASS_NAMES else "not available"
        raise ValueError(
            f"selector backend {name!r} is {known} on {sys.platform}; "
            f"available: {', '.join(['auto', *available])}"
        )
    cls = _selector_class(name)
    assert cls is not None
    return SelectorsBackend(name, cls())
