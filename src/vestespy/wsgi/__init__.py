"""Serve WSGI (PEP 3333) applications, such as Flask or Django, on VestesPy.

Example:
    .. code-block:: python

        import vestespy
        from myproject import app

        vestespy.serve(app, host="127.0.0.1", port=8080)

:class:`WSGIAdapter` is the ``"request"`` listener underneath, for a :class:`~vestespy.Server`
you build yourself; :func:`vestespy.serve` builds one and serves until interrupted.
"""

from ._adapter import WSGIAdapter
from ._response import FileWrapper
from ._serve import serve
from ._types import Environ, ExcInfo, StartResponse, WriteCallable, WSGIApplication

__all__ = [
    "Environ",
    "ExcInfo",
    "FileWrapper",
    "StartResponse",
    "WSGIAdapter",
    "WSGIApplication",
    "WriteCallable",
    "serve",
]
