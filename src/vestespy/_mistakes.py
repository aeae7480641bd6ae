"""Warnings for application mistakes that would otherwise only show as a client left waiting.

Theory of operation:

* **A listener that returns a value.** Listeners answer through ``res``; a value they return
  is ignored. Returning the body, as a Flask view does, leaves the client waiting with nothing
  in the log, so :func:`returned` logs one warning (logger ``vestespy.error``) per function:
  per code object, so that a closure made for each request warns once, not per request.
* **A request nobody answers** (``debug=True`` only). Once a request's ``"request"``
  listeners have returned without starting a response, :class:`UnansweredWatch` remembers it;
  if no response has started ``unanswered_warning`` seconds later (and the exchange is not
  over), the server logs a warning naming the method and target. Answering later from another
  thread is legitimate, hence a delay rather than a check at return, and debug mode only.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

__all__ = ["UnansweredWatch", "describe_listener", "returned"]

logger: logging.Logger = logging.getLogger("vestespy.error")

_warned: set[object] = set()
_warned_lock = threading.Lock()


def _key(listener: object) -> object:
    """What identifies "the same function": its code, whatever closure or instance."""
    function = getattr(listener, "__func__", listener)  # a bound method: its function
    function = getattr(function, "func", function)  # functools.partial: the wrapped one
    code = getattr(function, "__code__", None)
    return code if code is not None else type(function)


def describe_listener(listener: object) -> str:
    """A name for ``listener`` in a log line: ``module.qualname``, or its repr."""
    function = getattr(listener, "__func__", listener)
    function = getattr(function, "func", function)
    qualname = getattr(function, "__qualname__", None)
    if not isinstance(qualname, str):
        return repr(listener)
    module = getattr(function, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def returned(listener: object, value: object) -> None:
    """Warn, once per function, that ``listener`` returned ``value``, which is ignored."""
    key = _key(listener)
    if key in _warned:
        return
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    logger.warning(
        "listener %s returned %s (a %s); the returned value is ignored: answer through res,"
        " such as res.send_all(...) (warned once per function)",
        describe_listener(listener),
        shown,
        type(value).__name__,
    )


def _unanswered(response: Response) -> bool:
    """Whether nothing has started ``response`` and its exchange is not over."""
    from .response import _CLOSED_CHANNEL

    return not response.headers_sent and response._channel is not _CLOSED_CHANNEL


class UnansweredWatch:
    """The requests whose listeners returned without answering, until their deadline.

    ``add`` may be called from any thread; ``due`` from one thread (the loop's). Entries are
    kept in order of their deadline, which is the order of ``add`` (one delay for all).

    Args:
        after: Seconds after which an unanswered request is reported.
    """

    def __init__(self, after: float) -> None:
        self.after = after
        self._entries: deque[tuple[float, Request, Response]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, request: Request, response: Response, now: float) -> None:
        """Watch ``request``: its listeners returned at ``now`` and ``response`` has not
        started."""
        with self._lock:
            self._entries.append((now + self.after, request, response))

    def due(self, now: float) -> list[Request]:
        """Forget the requests whose deadline has passed at ``now``; return those still
        unanswered."""
        late: list[Request] = []
        with self._lock:
            entries = self._entries
            while entries and entries[0][0] <= now:
                _, request, response = entries.popleft()
                if _unanswered(response):
                    late.append(request)
        return late

    def report(self, now: float) -> None:
        """Log a warning for each request :meth:`due` returns."""
        for request in self.due(now):
            logger.warning(
                "%s %s: no response started %g s after its listeners returned; answer"
                " through res (this warning is given in debug mode, see unanswered_warning)",
                request.method,
                request.target,
                self.after,
            )
