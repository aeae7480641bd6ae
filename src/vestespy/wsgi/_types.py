"""The types of PEP 3333, as the adapter's signatures spell them.

They match ``_typeshed.wsgi``'s, which Flask and Django are annotated with, so that a type
checker accepts those applications where a ``WSGIApplication`` is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol

__all__ = ["Environ", "ExcInfo", "StartResponse", "WSGIApplication", "WriteCallable"]

#: A WSGI environ.
# Any: PEP 3333 puts str values and objects of every kind (streams, tuples, bools) in it.
Environ = dict[str, Any]
#: What ``sys.exc_info()`` returns.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
#: The ``write()`` callable ``start_response`` returns.
WriteCallable = Callable[[bytes], object]


class StartResponse(Protocol):
    """The ``start_response`` callable given to a WSGI application."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = ..., /
    ) -> WriteCallable:
        """Set the status and headers; see PEP 3333."""


#: A WSGI application.
WSGIApplication = Callable[[Environ, StartResponse], Iterable[bytes]]
