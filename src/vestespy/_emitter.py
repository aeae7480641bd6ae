"""The event emitter shared by :class:`~vestespy.Server` and :class:`~vestespy.Request`.

Theory of operation: listeners are kept per event name in registration order. ``emit`` copies
the list before calling so that a listener may add or remove listeners (``once`` does) without
disturbing the current emission. An emitter does no locking of its own: the server only emits a
request's events from that request's serial queue, one at a time, so a listener list is only
changed concurrently by user code that registers listeners from several threads at once.

The class is generic in the event names it accepts, so subclasses can spell out each event's
listener signature with ``@overload`` and a type checker checks users' listeners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from ._mistakes import returned
from ._mypyc import mypyc_attr

if TYPE_CHECKING:
    # typing.Self is 3.11+; the annotation is never evaluated at run time.
    from typing_extensions import Self

__all__ = ["EventEmitter", "Listener", "drop_listeners"]

#: A listener: called with the emitter first, then the event's own arguments. It returns
#: None: a value it returns is ignored (and logged once per function as a likely mistake).
Listener = Callable[..., None]
# What is stored and called: typed as returning anything, because at run time it may (the
# type checker only sees the listeners of typed programs), and emit looks at it.
_Callback = Callable[..., object]

EventName = TypeVar("EventName", bound=str)


class _Once:
    """Wraps a listener registered with :meth:`EventEmitter.once`."""

    __slots__ = ("emitter", "event", "listener")

    # Any: any emitter (EventName is invariant: no one parameter covers them all).
    def __init__(self, emitter: EventEmitter[Any], event: str, listener: _Callback) -> None:
        self.emitter = emitter
        self.event = event
        self.listener = listener

    def __call__(self, *args: object) -> None:
        self.emitter.off(self.event, self)
        result = self.listener(*args)
        if result is not None:
            returned(self.listener, result)


# Users and interpreted modules (Server) subclass it: mypyc must allow that when compiled.
@mypyc_attr(allow_interpreted_subclasses=True)
class EventEmitter(Generic[EventName]):
    """A minimal Node.js-style event emitter.

    Every listener receives the emitter itself as its first argument, followed by the
    arguments given to :meth:`emit`.

    Example:
        >>> from vestespy import EventEmitter
        >>> class Clock(EventEmitter[str]):
        ...     pass
        >>> clock = Clock()
        >>> _ = clock.on("tick", lambda ev, n: print("tick", n))
        >>> clock.emit("tick", 1)
        tick 1
        True
    """

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: dict[str, list[_Callback]] = {}

    def on(self, event: EventName, listener: Listener) -> Self:
        """Call ``listener`` each time ``event`` is emitted.

        Args:
            event: The event name.
            listener: Called as ``listener(emitter, *args)``.

        Returns:
            The emitter, so that calls can be chained.

        Raises:
            TypeError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError(f"listener for {event!r} must be callable, not {listener!r}")
        self._listeners.setdefault(event, []).append(listener)
        self._listener_added(event)
        return self

    def once(self, event: EventName, listener: Listener) -> Self:
        """Call ``listener`` the next time ``event`` is emitted, then forget it.

        Args:
            event: The event name.
            listener: Called as ``listener(emitter, *args)``.

        Returns:
            The emitter, so that calls can be chained.

        Raises:
            TypeError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError(f"listener for {event!r} must be callable, not {listener!r}")
        # EventEmitter.on, not self.on: a subclass may narrow on()'s signature for typing.
        return EventEmitter.on(self, event, _Once(self, event, listener))

    def _listener_added(self, event: str) -> None:
        """Hook run after each listener is added (by :meth:`on` or :meth:`once`).

        Subclasses override it to act on new listeners (a request sends ``100 Continue``
        once its body has a reader); the default does nothing.
        """

    def off(self, event: str, listener: Listener) -> Self:
        """Remove a listener added with :meth:`on` or :meth:`once`.

        Removing a listener that is not registered does nothing.

        Args:
            event: The event name.
            listener: The listener as it was given to :meth:`on` or :meth:`once`.

        Returns:
            The emitter, so that calls can be chained.
        """
        listeners = self._listeners.get(event)
        if not listeners:
            return self
        for index, registered in enumerate(listeners):
            if registered is listener or (
                type(registered) is _Once and registered.listener is listener
            ):
                del listeners[index]
                break
        if not listeners:
            del self._listeners[event]
        return self

    def listeners(self, event: str) -> list[Listener]:
        """Return a copy of the listeners registered for ``event``, in order."""
        return [
            cast(Listener, registered.listener if type(registered) is _Once else registered)
            for registered in self._listeners.get(event, ())
        ]

    def has_listeners(self, event: str) -> bool:
        """Return whether at least one listener is registered for ``event``."""
        return event in self._listeners

    def emit(self, event: str, *args: object) -> bool:
        """Call every listener of ``event`` in registration order.

        A listener that raises stops the emission and the exception propagates to the caller.
        A value a listener returns is ignored, with a warning in the log the first time a
        function returns one (logger ``vestespy.error``).

        Args:
            event: The event name.
            *args: Passed to each listener after the emitter.

        Returns:
            Whether any listener was registered.
        """
        listeners = self._listeners.get(event)
        if not listeners:
            return False
        if len(listeners) == 1:
            listener = listeners[0]
            result = listener(self, *args)
            if result is not None:
                returned(listener, result)
        else:
            for listener in tuple(listeners):
                result = listener(self, *args)
                if result is not None:
                    returned(listener, result)
        return True


# Any: any emitter (EventName is invariant: no one parameter covers them all).
def drop_listeners(emitter: EventEmitter[Any]) -> None:
    """Forget every listener of ``emitter`` (for the server, once an emitter is done).

    A request's listeners often hold what they gathered (a body's pieces); once its last
    event is delivered, dropping them frees that memory now instead of at the next cyclic
    garbage collection, which an idle server may not run for a long time.
    """
    emitter._listeners.clear()
