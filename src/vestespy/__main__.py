"""Command line: ``python -m vestespy [module:listener]`` serves an application or the demo.

``python -m vestespy --wsgi module:app`` serves a WSGI application instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from ._backends import available_backends
from ._core import version_line
from .server import RequestListener, Server

__all__ = ["main"]


def _load(spec: str) -> RequestListener:
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"application {spec!r} must be given as module:listener")
    sys.path.insert(0, "")
    listener = getattr(importlib.import_module(module_name), attribute)
    if hasattr(listener, "as_handler"):
        listener = listener.as_handler()
    if not callable(listener):
        raise SystemExit(f"{spec} is not callable")
    return listener  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, then serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m vestespy", description="Serve a VestesPy application (default: a demo)."
    )
    parser.add_argument(
        "app", nargs="?", help="module:listener, a 'request' listener or a Dispatcher"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--select", default="auto", choices=["auto", *available_backends()])
    parser.add_argument("--workers", type=int, default=50, help="listener threads; 0: inline")
    parser.add_argument("--debug", action="store_true", help="tracebacks in 500 responses")
    parser.add_argument("--wsgi", metavar="MODULE:APP", help="serve a WSGI application")
    parser.add_argument(
        "--root-path", default="", help="the URL prefix a WSGI app is mounted at (SCRIPT_NAME)"
    )
    parser.add_argument(
        "--version", action="version", version=version_line(), help="the build and core in use"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.wsgi:
        if args.app:
            parser.error("give either an application or --wsgi, not both")
        if args.workers < 1:
            parser.error("--wsgi needs --workers >= 1")
        from .wsgi import WSGIAdapter

        module_name, _, attribute = args.wsgi.partition(":")
        if not attribute:
            parser.error(f"--wsgi {args.wsgi!r} must be given as module:app")
        sys.path.insert(0, "")
        app = getattr(importlib.import_module(module_name), attribute)
        listener: RequestListener = WSGIAdapter(app, script_name=args.root_path)
        args.app = args.wsgi
    elif args.app:
        listener = _load(args.app)
    else:
        from .demo import build_demo

        listener = build_demo().as_handler()
    with Server(
        (args.host, args.port), debug=args.debug, select=args.select, max_workers=args.workers
    ) as server:
        server.on("request", listener)
        signal.signal(signal.SIGTERM, lambda signum, frame: server.shutdown())
        host, port = server.address
        logging.getLogger("vestespy").info(
            "serving %s on http://%s:%d/ (backend %s, %d workers)",
            args.app or "the demo",
            host,
            port,
            server.backend,
            args.workers,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
