"""What kind of application the command was given: VestesPy's own, or WSGI.

``--interface auto`` (the default) decides from the object itself, by this rule:

1. an instance of :class:`~vestespy.tools.Dispatcher` (or anything with ``as_handler()``) is
   served natively;
2. a coroutine function, or an object whose ``__call__`` is one, is an ASGI application:
   refused, VestesPy serves neither;
3. otherwise the callable's signature decides, counting the positional parameters without a
   default (``self`` excluded, as Python binds it): two (``environ, start_response``: a Flask
   or Django application, a plain WSGI function) is WSGI; three (``server, req, res``) is a
   ``"request"`` listener;
4. anything else (``*args``, a signature Python cannot inspect, another count) is refused in
   one line that asks for ``--interface vestespy`` or ``--interface wsgi``.

``--interface vestespy`` and ``--interface wsgi`` (``--wsgi``) skip the guess, but are still
checked where the answer is certain: a Dispatcher, or a function of exactly three positional
parameters, is not a WSGI application.
"""

from __future__ import annotations

import inspect
from typing import Literal

from ._config import StartupError, UsageError

__all__ = ["INTERFACES", "Kind", "classify"]

Kind = Literal["vestespy", "wsgi"]
#: The choices of ``--interface``.
INTERFACES = ("auto", "vestespy", "wsgi")


def _is_dispatcher(value: object) -> bool:
    from .tools import Dispatcher

    return isinstance(value, Dispatcher) or callable(getattr(value, "as_handler", None))


def _is_async(value: object) -> bool:
    if inspect.iscoroutinefunction(value):
        return True
    # An instance whose class defines ``async def __call__``.
    call = None if inspect.isroutine(value) else vars(type(value)).get("__call__")
    return call is not None and inspect.iscoroutinefunction(call)


def _required_positional(value: object) -> int | None:
    """The positional parameters without a default, or None when that says nothing."""
    if not callable(value):
        return None  # as inspect.signature would say: it has no signature
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            if parameter.default is inspect.Parameter.empty:
                count += 1
        elif (
            parameter.kind is inspect.Parameter.KEYWORD_ONLY
            and parameter.default is inspect.Parameter.empty
        ):
            return None  # a required keyword: neither interface passes it
    return count


def classify(value: object, interface: str, spec: str) -> Kind:
    """Decide how to serve ``value``, the object ``spec`` (``MODULE:ATTR``) names.

    Args:
        value: The application object (after ``--factory``, if given).
        interface: ``auto``, ``vestespy`` or ``wsgi``.
        spec: How the user named it, for messages.

    Returns:
        ``"vestespy"`` (a Dispatcher or a ``"request"`` listener) or ``"wsgi"``.

    Raises:
        StartupError: ``value`` cannot be served at all.
        UsageError: ``--interface`` does not fit ``value``, or auto cannot tell.
    """
    dispatcher = _is_dispatcher(value)
    if not dispatcher and not callable(value):
        raise StartupError(
            f"{spec} is a {type(value).__name__}, not a 'request' listener, a Dispatcher"
            " or a WSGI application"
        )
    if not dispatcher and _is_async(value):
        raise StartupError(
            f"{spec} is a coroutine function (an ASGI application?): VestesPy serves"
            " 'request' listeners, Dispatchers and WSGI applications"
        )
    if interface == "vestespy":
        return "vestespy"
    if dispatcher:
        if interface == "wsgi":
            raise UsageError(
                f"--interface wsgi: {spec} is a vestespy Dispatcher, not a WSGI application;"
                " serve it with --interface vestespy (or auto)"
            )
        return "vestespy"
    required = _required_positional(value)
    if interface == "wsgi":
        if required == 3 and inspect.isfunction(value):
            raise UsageError(
                f"--interface wsgi: {spec} takes 3 arguments, as a 'request' listener"
                " (server, req, res) does; a WSGI application takes (environ, start_response)"
            )
        return "wsgi"
    if required == 2:
        return "wsgi"
    if required == 3:
        return "vestespy"
    shown = "an unknown number of" if required is None else str(required)
    raise UsageError(
        f"cannot tell what kind of application {spec} is (it takes {shown} positional"
        " arguments): give --interface vestespy for a 'request' listener (server, req, res)"
        " or --interface wsgi for a WSGI application (environ, start_response)"
    )
