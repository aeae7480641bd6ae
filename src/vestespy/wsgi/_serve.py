"""``vestespy.serve``: run a WSGI application on a new server until interrupted."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from .._banner import announce, build_notes
from ..server import Server
from ._adapter import WSGIAdapter
from ._types import WSGIApplication

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import ServerOptionsKwargs

__all__ = ["serve"]

logger: logging.Logger = logging.getLogger("vestespy.wsgi")


def serve(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    script_name: str = "",
    url_scheme: str | None = None,
    select: str = "auto",
    max_workers: int = 50,
    debug: bool = False,
    **options: Unpack[ServerOptionsKwargs],
) -> None:
    """Serve the WSGI application ``app`` until Ctrl-C or SIGTERM, in the spirit of
    ``waitress.serve``.

    Example:
        .. code-block:: python

            import vestespy
            from flask import Flask

            app = Flask(__name__)

            @app.get("/")
            def index():
                return "Hello from Flask on VestesPy"

            vestespy.serve(app, port=8080)

    Args:
        app: The WSGI application.
        host: The address to bind.
        port: The port to bind; 0 picks a free one. Where it serves is logged (logger
            ``vestespy.wsgi``), or printed on stderr if logging would not show it.
        script_name: See :class:`~vestespy.wsgi.WSGIAdapter`.
        url_scheme: See :class:`~vestespy.wsgi.WSGIAdapter`.
        select: The selector backend, as for :class:`~vestespy.Server`.
        max_workers: Listener threads; WSGI needs at least one.
        debug: Put tracebacks in 500 responses.
        **options: Fields of :class:`~vestespy.ServerOptions`. The application's environ
            follows what the server resolves: ``https`` with ``certfile``, and the client,
            scheme and host reported by the ``trusted_proxies``.

    Raises:
        ValueError: ``max_workers`` is below 1, or an option has a bad value.
        TypeError: An option is unknown.
        OSError: The address cannot be bound.
    """
    if max_workers < 1:
        raise ValueError(f"WSGI applications need max_workers >= 1, not {max_workers}")
    adapter = WSGIAdapter(app, script_name=script_name, url_scheme=url_scheme)
    with Server(
        (host, port), debug=debug, select=select, max_workers=max_workers, **options
    ) as server:
        server.on("request", adapter)
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda signum, frame: server.shutdown())
        bound_host, bound_port = server.address
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        build, notes = build_notes()
        # Printed when logging is not configured: the port 0 picked must be findable.
        announce(
            logger,
            f"serving {app!r} on {'https' if server.tls else 'http'}://{shown_host}:{bound_port}/"
            f" (backend {server.backend}, {max_workers} threads; {build})",
        )
        for note in notes:
            announce(logger, note)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
